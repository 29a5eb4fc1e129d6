"""The wire parser, byte by byte (in the manner of websockets' own tests/test_frames.py): no sockets.

Every case is a conversation of byte strings written out by hand (RFC 6455 §5.7 and RFC 7692 §7.2.3
give most of them). Each is fed whole, one byte at a time, and split in two at every byte of the part
under test, and must give the same observations each way.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import pytest

from wsmon.sources.wire import (
    MAX_HELD_FRAMES,
    MAX_HELD_HANDSHAKE,
    MAX_HTTP_HEAD,
    MAX_PARSED_FRAME,
    CloseFrame,
    ControlFrame,
    DataFrame,
    Direction,
    Message,
    ParseError,
    ParserFull,
    RequestHead,
    ResponseHead,
    WireParser,
)

REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
ACCEPT = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)
RESPONSE = ACCEPT + b"\r\n"
DEFLATE = ACCEPT + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
DEFLATE_NO_TAKEOVER = (
    ACCEPT
    + b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
    + b"client_no_context_takeover\r\n\r\n"
)
OPENED = [RequestHead("/chat", upgrade=True), ResponseHead(101, "Switching Protocols")]

Chunk = tuple[Direction, bytes]


class Recorder:
    """A WireObserver that keeps what it is told; a parse error as its text (exceptions do not compare)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_request(self, request: RequestHead) -> None:
        self.seen.append(request)

    def on_response(self, response: ResponseHead) -> None:
        self.seen.append(response)

    def on_data_frame(self, frame: DataFrame) -> None:
        self.seen.append(frame)

    def on_message(self, message: Message) -> None:
        payload = None if message.payload is None else bytes(message.payload)
        self.seen.append(Message(message.direction, message.kind, message.size, payload))

    def on_frame_message(
        self, direction: Direction, kind: Literal["text", "binary"], size: int, payload: bytes | None
    ) -> None:
        """Kept as the two observations it stands for, so every case reads the same either way."""
        self.on_data_frame(DataFrame(direction, size))
        self.on_message(Message(direction, kind, size, payload))

    def on_control(self, control: ControlFrame) -> None:
        self.seen.append(control)

    def on_close(self, close: CloseFrame) -> None:
        self.seen.append(close)

    def on_parse_error(self, error: ParseError) -> None:
        self.seen.append(("parse error", error.direction, error.description))

    def on_parser_full(self, full: ParserFull) -> None:
        self.seen.append(full)


def feed(chunks: Sequence[Chunk], *, payloads: bool = True) -> tuple[WireParser, list[Any]]:
    recorder = Recorder()
    wire = WireParser(recorder, payloads=payloads)
    for direction, data in chunks:
        if direction == "in":
            wire.from_client(data)
        else:
            wire.from_server(data)
    return wire, recorder.seen


def observe(chunks: Sequence[Chunk], *, payloads: bool = True) -> list[Any]:
    return feed(chunks, payloads=payloads)[1]


def splits(chunks: Sequence[Chunk]) -> Iterator[list[Chunk]]:
    """The conversation byte by byte, then with each of its chunks in turn cut in two at every byte."""
    yield [(d, data[i : i + 1]) for d, data in chunks for i in range(len(data))]
    for part, (direction, data) in enumerate(chunks):
        for cut in range(1, len(data)):
            yield [*chunks[:part], (direction, data[:cut]), (direction, data[cut:]), *chunks[part + 1 :]]


def assert_split_anywhere(chunks: Sequence[Chunk], expected: list[Any], *, payloads: bool = True) -> None:
    assert observe(chunks, payloads=payloads) == expected
    for variant in splits(chunks):
        assert observe(variant, payloads=payloads) == expected, variant


def opened(*frames: Chunk, response: bytes = RESPONSE) -> list[Chunk]:
    return [("in", REQUEST), ("out", response), *frames]


# --- the upgrade ----------------------------------------------------------------------------------------


def test_the_upgrade_request_and_its_101_split_anywhere() -> None:
    assert_split_anywhere([("in", REQUEST), ("out", RESPONSE)], OPENED)


def test_a_refusal_is_reported_with_its_status_and_the_client_is_not_read_further() -> None:
    refusal = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nNope!"
    chunks: list[Chunk] = [("in", REQUEST), ("out", refusal), ("in", b"\x81\x85\x37\xfa\x21\x3d\x7f")]
    assert_split_anywhere(chunks, [RequestHead("/chat", upgrade=True), ResponseHead(403, "Forbidden")])


def test_the_negotiated_subprotocol_and_extensions_repeated_headers_joined() -> None:
    response = (
        ACCEPT + b"Sec-WebSocket-Protocol: chat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: x-other\r\n\r\n"
    )
    assert observe([("in", REQUEST), ("out", response)])[1] == ResponseHead(
        101, "Switching Protocols", subprotocol="chat", extensions="permessage-deflate, x-other"
    )


def test_a_response_that_is_not_http_has_status_0() -> None:
    for head in (
        b"HTTP/1.1 1_01 Nope\r\n\r\n",
        b"HTTP/1.1 99999999999999999999999 Nope\r\n\r\n",
        b"SSH-2.0\r\n\r\n",
    ):
        assert observe([("in", REQUEST), ("out", head)])[1] == ResponseHead(0, ""), head


def test_a_plain_http_request_is_not_followed() -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    wire, seen = feed([("in", request), ("out", response)])
    assert seen == [RequestHead("/health", upgrade=False)]  # the answer to it is none of the parser's concern
    assert (wire.status, wire.accepted) == (200, False)


def test_a_long_header_line_within_the_head_bound_is_read() -> None:
    """websockets allows 8 KiB a line; servers take longer cookies, and the head's own bound is 64 KiB."""
    request = REQUEST.replace(b"\r\n\r\n", b"\r\nCookie: " + b"c" * 20_000 + b"\r\n\r\n")
    assert observe([("in", request), ("out", RESPONSE)]) == OPENED


def test_the_client_frames_wait_for_the_101() -> None:
    hello = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    chunks: list[Chunk] = [("in", REQUEST + hello), ("out", RESPONSE)]
    expected = [*OPENED, DataFrame("in", 5), Message("in", "text", 5, b"Hello")]
    assert_split_anywhere(chunks, expected)


# --- frames (RFC 6455 §5.7), both directions ------------------------------------------------------------


def test_a_masked_text_frame_from_the_client() -> None:
    hello = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert_split_anywhere(
        opened(("in", hello)), [*OPENED, DataFrame("in", 5), Message("in", "text", 5, b"Hello")]
    )


def test_an_unmasked_text_frame_from_the_server() -> None:
    hello = b"\x81\x05Hello"
    expected = [*OPENED, DataFrame("out", 5), Message("out", "text", 5, b"Hello")]
    assert_split_anywhere(opened(("out", hello)), expected)


def test_binary_frames_with_16_and_64_bit_lengths() -> None:
    short = b"\x82\x7e\x01\x00" + bytes(256)
    long = b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + bytes(65536)
    expected = [*OPENED, DataFrame("out", 256), Message("out", "binary", 256, None)]
    expected += [DataFrame("out", 65536), Message("out", "binary", 65536, None)]
    wire_bytes = opened(("out", short + long))
    assert observe(wire_bytes) == expected
    for cut in (1, 2, 3, 4, 5, 260, 261, 265, 270, 40_000):  # every header byte; the payloads in bulk
        assert (
            observe([*wire_bytes[:2], ("out", (short + long)[:cut]), ("out", (short + long)[cut:])])
            == expected
        )


def test_a_masked_binary_frame_from_the_client() -> None:
    eggs = b"\x82\x84\x53\xcd\xe2\x89\x16\xaa\x85\xfa"
    assert_split_anywhere(
        opened(("in", eggs)), [*OPENED, DataFrame("in", 4), Message("in", "binary", 4, None)]
    )


def test_a_fragmented_text_message() -> None:
    hel, lo = b"\x01\x03Hel", b"\x80\x02lo"
    expected = [*OPENED, DataFrame("out", 3), DataFrame("out", 2), Message("out", "text", 5, b"Hello")]
    assert_split_anywhere(opened(("out", hel), ("out", lo)), expected)


def test_a_ping_between_fragments_and_its_pong() -> None:
    ping, pong = b"\x89\x05Hello", b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    chunks = opened(("out", b"\x01\x03Hel" + ping + b"\x80\x02lo"), ("in", pong))
    expected = [
        *OPENED,
        DataFrame("out", 3),
        ControlFrame("out", "ping"),
        DataFrame("out", 2),
        Message("out", "text", 5, b"Hello"),
        ControlFrame("in", "pong"),
    ]
    assert_split_anywhere(chunks, expected)


def test_a_utf8_character_split_across_fragments_is_valid() -> None:
    chunks = opened(("out", b"\x01\x04caf\xc3"), ("out", b"\x80\x01\xa9"))
    expected = [
        *OPENED,
        DataFrame("out", 4),
        DataFrame("out", 1),
        Message("out", "text", 5, "café".encode()),
    ]
    assert_split_anywhere(chunks, expected)


@pytest.mark.parametrize(
    ("frames", "counted"),
    [
        (b"\x81\x02\xc3\x28", [DataFrame("out", 2)]),  # one frame: its bytes passed all the same
        (b"\x01\x01\xc3\x80\x01\x28", [DataFrame("out", 1)]),  # the bad byte in the last fragment
    ],
)
def test_bad_utf8_in_a_text_message_is_a_protocol_error(frames: bytes, counted: list[Any]) -> None:
    error = ("parse error", "out", "protocol error by the server: invalid UTF-8 in a text message")
    assert_split_anywhere(opened(("out", frames)), [*OPENED, *counted, error])


def test_bad_utf8_is_not_looked_for_in_binary_messages() -> None:
    expected = [*OPENED, DataFrame("out", 2), Message("out", "binary", 2, None)]
    assert_split_anywhere(opened(("out", b"\x82\x02\xc3\x28")), expected)


def test_masking_is_required_of_the_client_and_refused_from_the_server() -> None:
    unmasked = observe(opened(("in", b"\x81\x05Hello")))
    assert unmasked == [*OPENED, ("parse error", "in", "protocol error by the client: incorrect masking")]
    masked = observe(opened(("out", b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")))
    assert masked == [*OPENED, ("parse error", "out", "protocol error by the server: incorrect masking")]


def test_a_parse_error_stops_that_direction_only() -> None:
    wire, seen = feed(opened(("in", b"\x81\x05Hello"), ("out", b"\x81\x02hi"), ("in", b"\x81\x82\0\0\0\0hi")))
    assert seen[-2:] == [DataFrame("out", 2), Message("out", "text", 2, b"hi")]
    assert (wire.inbound.alive, wire.outbound.alive) == (False, True)


# --- close frames ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "close"),
    [
        (b"\x88\x00", CloseFrame("out", 1005, "", illegal=False, sent_code=None)),
        (b"\x88\x02\x03\xe8", CloseFrame("out", 1000, "", illegal=False, sent_code=1000)),
        (b"\x88\x06\x03\xe9Bye!", CloseFrame("out", 1001, "Bye!", illegal=False, sent_code=1001)),
        (b"\x88\x02\x0f\xa0", CloseFrame("out", 4000, "", illegal=False, sent_code=4000)),
    ],
)
def test_a_close_frame_code_and_reason(frame: bytes, close: CloseFrame) -> None:
    assert_split_anywhere(opened(("out", frame)), [*OPENED, close])


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_an_illegal_close_code_is_the_senders_protocol_error(code: int) -> None:
    frame = b"\x88\x82\0\0\0\0" + code.to_bytes(2, "big")  # masked with a zero mask: the client's
    reason = f"protocol error: the client sent close code {code}"
    assert_split_anywhere(opened(("in", frame)), [*OPENED, CloseFrame("in", 1002, reason, True, code)])


def test_a_malformed_close_frame_is_the_senders_protocol_error() -> None:
    reason = "protocol error: the server sent a malformed close frame"
    one_byte = CloseFrame("out", 1002, reason, illegal=True, sent_code=None)
    bad_reason = CloseFrame("out", 1002, reason, illegal=True, sent_code=1000)
    assert_split_anywhere(opened(("out", b"\x88\x01\x03")), [*OPENED, one_byte])
    assert_split_anywhere(opened(("out", b"\x88\x04\x03\xe8\xff\xfe")), [*OPENED, bad_reason])


# --- permessage-deflate (RFC 7692 §7.2.3) ---------------------------------------------------------------

HELLO_DEFLATED = b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00"  # "Hello", compressed, no prior window
HELLO_AGAIN = b"\xc1\x05\xf2\x00\x11\x00\x00"  # "Hello" again, referring to the first in the window


def test_compressed_messages_with_context_takeover() -> None:
    chunks = opened(("out", HELLO_DEFLATED), ("out", HELLO_AGAIN), response=DEFLATE)
    expected = [
        RequestHead("/chat", upgrade=True),
        ResponseHead(101, "Switching Protocols", extensions="permessage-deflate"),
        DataFrame("out", 7),
        Message("out", "text", 7, b"Hello"),  # the size is the wire's; the payload is inflated
        DataFrame("out", 5),
        Message("out", "text", 5, b"Hello"),
    ]
    assert_split_anywhere(chunks, expected)


def test_compressed_messages_without_context_takeover() -> None:
    chunks = opened(("out", HELLO_DEFLATED), ("out", HELLO_DEFLATED), response=DEFLATE_NO_TAKEOVER)
    extensions = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    message = [DataFrame("out", 7), Message("out", "text", 7, b"Hello")]
    expected = [
        RequestHead("/chat", upgrade=True),
        ResponseHead(101, "Switching Protocols", extensions=extensions),
        *message,
        *message,
    ]
    assert_split_anywhere(chunks, expected)


def test_a_fragmented_compressed_message() -> None:
    chunks = opened(("out", b"\x41\x03\xf2\x48\xcd"), ("out", b"\x80\x04\xc9\xc9\x07\x00"), response=DEFLATE)
    expected = [*observe(opened(response=DEFLATE)), DataFrame("out", 3), DataFrame("out", 4)]
    expected.append(Message("out", "text", 7, b"Hello"))
    assert_split_anywhere(chunks, expected)


def test_a_compressed_client_message_is_masked_and_inflated() -> None:
    masked = b"\xc1\x87\0\0\0\0\xf2\x48\xcd\xc9\xc9\x07\x00"  # a zero mask leaves the payload as it is
    expected = [*observe(opened(response=DEFLATE)), DataFrame("in", 7), Message("in", "text", 7, b"Hello")]
    assert_split_anywhere(opened(("in", masked), response=DEFLATE), expected)


def test_without_payloads_compressed_messages_are_counted_not_inflated() -> None:
    chunks = opened(("out", HELLO_DEFLATED), ("out", HELLO_AGAIN), response=DEFLATE)
    seen = observe(chunks, payloads=False)
    assert seen[2:] == [
        DataFrame("out", 7),
        Message("out", "text", 7, None),
        DataFrame("out", 5),
        Message("out", "text", 5, None),
    ]


def test_a_compressed_frame_without_the_extension_is_a_protocol_error() -> None:
    error = ("parse error", "out", "protocol error by the server: reserved bits must be 0")
    assert observe(opened(("out", HELLO_DEFLATED))) == [*OPENED, error]


# --- the bounds -----------------------------------------------------------------------------------------


def test_a_head_at_the_bound_is_read_and_one_byte_over_is_not() -> None:
    pad = MAX_HTTP_HEAD - len(REQUEST) - len(b"X-Pad: \r\n")
    at_bound = REQUEST.replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * pad + b"\r\n\r\n")
    assert len(at_bound) == MAX_HTTP_HEAD
    assert observe([("in", at_bound), ("out", RESPONSE)]) == OPENED
    over = at_bound.replace(b"X-Pad: ", b"X-Pad: a")
    full = ParserFull("in", "the client's request head is over 64 KiB")
    whole_and_split: list[list[Chunk]] = [[("in", over)], [("in", over[:1000]), ("in", over[1000:])]]
    for chunks in whole_and_split:
        wire, seen = feed([*chunks, ("out", RESPONSE)])
        assert seen == [full]  # and the server's side stopped too: without the request, nothing follows
        assert not wire.inbound.alive and not wire.outbound.alive
        assert len(wire.inbound.reader.buffer) == len(wire.outbound.reader.buffer) == 0


def test_a_response_head_over_the_bound() -> None:
    endless = b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: " + b"a" * MAX_HELD_HANDSHAKE
    seen = observe([("in", REQUEST), ("out", endless)])
    assert seen == [
        RequestHead("/chat", upgrade=True),
        ParserFull("out", "the upstream's response head is over 64 KiB"),
    ]


def test_a_client_that_sends_on_while_the_server_is_silent() -> None:
    seen = observe([("in", REQUEST), ("in", bytes(MAX_HELD_HANDSHAKE)), ("in", b"\0")])
    why = "the upstream has not answered the handshake and the client sent over 64 KiB more"
    assert seen == [RequestHead("/chat", upgrade=True), ParserFull("in", why)]


def test_one_incomplete_frame_is_held_up_to_its_bound() -> None:
    big = b"\x82\x7f" + MAX_PARSED_FRAME.to_bytes(8, "big")
    wire, seen = feed(opened(("out", big + bytes(MAX_PARSED_FRAME - 1))))
    assert seen == OPENED and wire.outbound.alive
    assert len(wire.outbound.reader.buffer) <= MAX_HELD_FRAMES
    wire.from_server(b"\0")
    assert wire.outbound.reader.buffer == bytearray()


def test_a_frame_over_the_bound_is_counted_from_its_header_and_skipped() -> None:
    size = MAX_PARSED_FRAME + 1
    frame = b"\x81\x7f" + size.to_bytes(8, "big") + b"a" * size
    wire, seen = feed(opened(("out", frame[:100_000]), ("out", frame[100_000:]), ("out", b"\x81\x02hi")))
    assert seen == [
        *OPENED,
        DataFrame("out", size),
        Message("out", "text", size, None),  # never read: no payload, no UTF-8 check
        DataFrame("out", 2),
        Message("out", "text", 2, b"hi"),
    ]
    assert len(wire.outbound.reader.buffer) == 0


def test_a_control_frame_too_long_to_buffer_is_a_protocol_error() -> None:
    size = MAX_PARSED_FRAME + 1
    error = ("parse error", "out", "protocol error by the server: control frame too long")
    assert observe(opened(("out", b"\x89\x7f" + size.to_bytes(8, "big")))) == [*OPENED, error]


def test_the_parser_imports_no_event_loop() -> None:
    code = "import sys, wsmon.sources.wire; sys.exit(bool({'asyncio', 'textual'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_without_context_takeover_a_message_that_refers_back_is_not_read() -> None:
    """The server said it would not keep its window: a frame that uses it anyway cannot be inflated, and
    is counted without its text (pairing gives up on this direction's compressed messages)."""
    chunks = opened(
        ("out", HELLO_DEFLATED), ("out", HELLO_AGAIN), ("out", HELLO_DEFLATED), response=DEFLATE_NO_TAKEOVER
    )
    assert observe(chunks)[-4:] == [
        DataFrame("out", 5),
        Message("out", "text", 5, None),
        DataFrame("out", 7),
        Message("out", "text", 7, None),
    ]
