"""The WebSocket wire, read passively: a sans-I/O parser of one connection's two byte streams.

``WireParser`` is fed the bytes that pass each way (``from_client``, ``from_server``) and tells a
``WireObserver`` what they were: the client's HTTP request, the server's answer (a 101 or a refusal),
then frames both ways — whole messages, pings and pongs, close frames with their code and reason — and
the moments it stops: a protocol error, or a parser that would have to hold more than its bound. It does
no I/O, no asyncio and emits no events: the tap (``tap.py``, ``tap_relay.py``) forwards the bytes and
turns the observations into events. The HTTP heads are read with websockets' ``http11`` and the frames
with its ``Frame.parse``, both on its ``StreamReader``; compressed messages (permessage-deflate) are
inflated only when their text is wanted (``payloads``), with the parameters the server chose.

A parser that fails stops reading that direction and says why once; what it was fed is still the
caller's to forward.

``observations.py``: what is reported, and the ``WireObserver`` interface; ``http.py``: the two heads;
``parser.py``: ``WireParser`` and the frame reader of each direction.
"""

from wsmon.sources.wire.http import MAX_HTTP_HEAD
from wsmon.sources.wire.observations import (
    SENDER,
    CloseFrame,
    ControlFrame,
    DataFrame,
    Direction,
    Message,
    ParseError,
    ParserFull,
    RequestHead,
    ResponseHead,
    WireObserver,
    close_frame,
)
from wsmon.sources.wire.parser import (
    MAX_HELD_FRAMES,
    MAX_HELD_HANDSHAKE,
    MAX_PAIRED_MESSAGE,
    MAX_PARSED_FRAME,
    WireParser,
)

__all__ = [
    "MAX_HELD_FRAMES",
    "MAX_HELD_HANDSHAKE",
    "MAX_HTTP_HEAD",
    "MAX_PAIRED_MESSAGE",
    "MAX_PARSED_FRAME",
    "SENDER",
    "CloseFrame",
    "ControlFrame",
    "DataFrame",
    "Direction",
    "Message",
    "ParseError",
    "ParserFull",
    "RequestHead",
    "ResponseHead",
    "WireObserver",
    "WireParser",
    "close_frame",
]
