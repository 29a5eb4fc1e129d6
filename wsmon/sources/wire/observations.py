"""What the wire parser reports, and to whom: typed observations and the ``WireObserver`` interface.

Also the meaning of a close frame (``close_frame``): its code and reason, with RFC 6455's illegal codes
turned into the sender's protocol error (1002).

The observations are values, but slotted dataclasses that are not frozen: a frozen one costs over twice
as much to make (its fields are set through ``object.__setattr__``), which showed in the tap's CPU time
per message. A message in one frame, the common case, is told without any (``on_frame_message``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Protocol

from websockets.exceptions import ProtocolError

Direction = Literal["in", "out"]  # "in": client to server
SENDER: dict[Direction, Literal["client", "server"]] = {"in": "client", "out": "server"}


# --- what the parser reports ---------------------------------------------------------------------------


@dataclass(slots=True)
class RequestHead:
    """The client's HTTP request: its path as sent, and whether it asks for a WebSocket upgrade (a
    request websockets cannot parse is not one the parser follows)."""

    path: str
    upgrade: bool


@dataclass(slots=True)
class ResponseHead:
    """The server's answer to an upgrade request: 101, after which frames follow, or a refusal. A head
    that is not HTTP has status 0."""

    status: int
    reason: str
    subprotocol: str = ""
    extensions: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 101


@dataclass(slots=True)
class DataFrame:
    """A text, binary or continuation frame went by: its payload's size on the wire (compressed if it
    was), reported per frame so that traffic is counted when it passes, not when its message ends."""

    direction: Direction
    size: int


@dataclass(slots=True)
class Message:
    """A whole message: its kind, its payload's size on the wire over all its frames, and its text when
    it was read for pairing (``payloads`` on, a text message, readable, up to MAX_PAIRED_MESSAGE)."""

    direction: Direction
    kind: Literal["text", "binary"]
    size: int
    payload: bytes | bytearray | None


@dataclass(slots=True)
class ControlFrame:
    direction: Direction
    kind: Literal["ping", "pong"]


@dataclass(slots=True)
class CloseFrame:
    """A close frame. ``code`` and ``reason`` are what it means: 1005 and "" for an empty one, and for an
    illegal one (RFC 6455 §7.4: a reserved or unassigned code, one byte, a reason that is not UTF-8) 1002
    and a reason naming the sender's protocol error. ``sent_code`` is the code on the wire, if any."""

    direction: Direction
    code: int
    reason: str
    illegal: bool
    sent_code: int | None


@dataclass(slots=True)
class ParseError:
    """The parser of one direction stopped on bytes it could not read; forwarding is not its business."""

    direction: Direction
    error: Exception

    @property
    def description(self) -> str:
        if isinstance(self.error, ProtocolError):
            return f"protocol error by the {SENDER[self.direction]}: {self.error}"
        return repr(self.error)


@dataclass(slots=True)
class ParserFull:
    """A direction's parser would have held more than its bound, and stopped; before the server's answer
    both directions stop, since the client's side can never go on without it."""

    direction: Direction
    why: str


class WireObserver(Protocol):
    """Told what the parser sees, in the order the bytes were fed."""

    def on_request(self, request: RequestHead) -> None: ...

    def on_response(self, response: ResponseHead) -> None:
        """Only for an upgrade request: the answer to anything else is not the parser's concern."""

    def on_data_frame(self, frame: DataFrame) -> None: ...

    def on_message(self, message: Message) -> None: ...

    def on_frame_message(
        self, direction: Direction, kind: Literal["text", "binary"], size: int, payload: bytes | None
    ) -> None:
        """A message in one frame, most messages: what ``on_data_frame(DataFrame(direction, size))`` then
        ``on_message(Message(direction, kind, size, payload))`` would say, in one call that makes neither
        object (a tap sees thousands a second). Fragmented messages still come as the two observations."""

    def on_control(self, control: ControlFrame) -> None: ...

    def on_close(self, close: CloseFrame) -> None: ...

    def on_parse_error(self, error: ParseError) -> None: ...

    def on_parser_full(self, full: ParserFull) -> None: ...


# --- close frames --------------------------------------------------------------------------------------

_ILLEGAL_ON_THE_WIRE = frozenset({1004, 1005, 1006, 1015})


def _legal_close_code(code: int) -> bool:
    """Codes a close frame may carry (RFC 6455 §7.4, and the IANA registry's later 1012-1014)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def close_frame(direction: Direction, data: bytes | bytearray) -> CloseFrame:
    """A close frame's meaning (see ``CloseFrame``)."""
    if not data:
        return CloseFrame(direction, 1005, "", illegal=False, sent_code=None)
    if len(data) < 2:
        reason = f"protocol error: the {SENDER[direction]} sent a malformed close frame"
        return CloseFrame(direction, 1002, reason, illegal=True, sent_code=None)
    code = struct.unpack("!H", data[:2])[0]
    try:
        text = bytes(data[2:]).decode("utf-8")
    except UnicodeDecodeError:
        reason = f"protocol error: the {SENDER[direction]} sent a malformed close frame"
        return CloseFrame(direction, 1002, reason, illegal=True, sent_code=code)
    if code in _ILLEGAL_ON_THE_WIRE or not _legal_close_code(code):
        # 1005, 1006 and 1015 (and unassigned codes) must never be sent: a frame that carries one is a
        # protocol error by its sender, not a close with that meaning.
        reason = f"protocol error: the {SENDER[direction]} sent close code {code}"
        return CloseFrame(direction, 1002, reason, illegal=True, sent_code=code)
    return CloseFrame(direction, code, text, illegal=False, sent_code=code)
