"""The HTTP upgrade's two heads, read with websockets' ``http11`` once the parser has cut them out."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

from websockets.exceptions import SecurityError
from websockets.http11 import Request, Response
from websockets.streams import StreamReader

from wsmon.sources.wire.observations import RequestHead, ResponseHead

MAX_HTTP_HEAD = 64 * 1024  # bytes up to \r\n\r\n; longer is not an upgrade the tap understands

_T = TypeVar("_T")
LineReader = Callable[[int, type[Exception]], Generator[None, None, bytearray]]


def _complete(parser: Generator[None, None, _T]) -> _T:
    """Run a websockets parser over a reader that holds the whole head and its end: it cannot wait."""
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise EOFError("the head ended early")


def _head_reader(head: bytes) -> tuple[StreamReader, LineReader]:
    """A reader holding one whole head, and a line reader whose bound is the head's: the head is already
    within MAX_HTTP_HEAD, and websockets' own 8 KiB a line would refuse long cookies a server accepts."""
    reader = StreamReader()
    reader.feed_data(head)
    reader.feed_eof()

    def read_line(_limit: int, too_long: type[Exception]) -> Generator[None, None, bytearray]:
        return reader.read_line(MAX_HTTP_HEAD, too_long)

    return reader, read_line


_HEAD_ERRORS = (EOFError, LookupError, ValueError, NotImplementedError, SecurityError)


def parse_request(head: bytes) -> RequestHead:
    """The request's path and whether it asks for an upgrade; a head websockets refuses asks for none."""
    _reader, read_line = _head_reader(head)
    try:
        request = _complete(Request.parse(read_line))
    except _HEAD_ERRORS:
        return RequestHead(path="", upgrade=False)
    upgrade = ", ".join(request.headers.get_all("Upgrade")).lower()
    return RequestHead(path=request.path, upgrade="websocket" in upgrade)


def parse_response(head: bytes) -> ResponseHead:
    """The answer's status, reason and negotiated headers; status 0 for a head that is not HTTP."""
    reader, read_line = _head_reader(head)
    try:
        # proxy=True: any body is not read (the head is all there is here), and HTTP/1.0 is accepted.
        response = _complete(Response.parse(read_line, reader.read_exact, reader.read_to_eof, proxy=True))
    except _HEAD_ERRORS:
        return ResponseHead(status=0, reason="")
    headers = response.headers
    return ResponseHead(
        status=response.status_code,
        reason=response.reason_phrase,
        # Repeated headers (extensions may be split over several) join with commas, as HTTP allows.
        subprotocol=", ".join(headers.get_all("Sec-WebSocket-Protocol")),
        extensions=", ".join(headers.get_all("Sec-WebSocket-Extensions")),
    )
