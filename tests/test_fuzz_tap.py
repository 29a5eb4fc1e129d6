"""Fuzzing the tap's passive reader (issue 10): the frame reader and the HTTP upgrade parser.

The seam is the tap's per-client connection object (``TappedConnection``, the wire parser's observer),
built as a tap worker builds it (``TapRelays.new_pair`` with the client's transport, ``upstream_made``
with the upstream's) and fed through the methods the socket protocols call (``from_client``,
``from_upstream``). The two transports are byte sinks: they keep what the tap forwards, so every
example also checks that forwarding is untouched. Frames are made with websockets' own encoder
(``Frame.serialize``, and its ``PerMessageDeflate`` for compressed ones). One test at the end runs the
same garbage through a real TapSource over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import struct
from collections.abc import Iterator
from typing import Any

import msgspec
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode

from tests.fuzzing import examples, one_line
from tests.test_tap import Recorder, tapped
from wsmon.core import events as ev
from wsmon.sources.delivery import DeliveryRules
from wsmon.sources.tap_ipc import Sent
from wsmon.sources.tap_relay import TappedConnection
from wsmon.sources.tap_relays import TapRelays
from wsmon.sources.wire import MAX_HELD_FRAMES, MAX_HELD_HANDSHAKE, MAX_HTTP_HEAD, MAX_PARSED_FRAME

REQUEST = (
    b"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)
DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
TIMES = frozenset({"wall", "mono", "ms", "handshake_ms", "interval_s", "duration_s"})


class Sink(asyncio.Transport):
    """One side's transport: keeps every byte the tap writes to it."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.received = bytearray()
        self.port = port

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.received += data

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", self.port) if name in ("peername", "sockname") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class Harness:
    """A tap worker's connection object with sinks for transports; what it forwards and emits is kept."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.tap = TapRelays(
            self.keep_event, target="tap", upstream_url="ws://127.0.0.1:9", rules=DeliveryRules()
        )
        self.client, self.server = Sink(40000), Sink(9)
        self.pair: TappedConnection = self.tap.new_pair(self.client)
        self.pair.upstream_made(self.server)
        self.sent = {"in": bytearray(), "out": bytearray()}
        self.most_held = 0

    def keep_event(self, item: Sent) -> None:
        if isinstance(item, ev.Event):  # not the notes about the upstream, meant for the session
            self.events.append(item)

    def feed(self, direction: str, data: bytes) -> None:
        self.sent[direction] += data
        if direction == "in":
            self.pair.from_client(data)
        else:
            self.pair.from_upstream(data)
        held = max(len(d.reader.buffer) for d in (self.pair.wire.inbound, self.pair.wire.outbound))
        self.most_held = max(self.most_held, held)

    def forwarded_unchanged(self) -> bool:
        return self.server.received == self.sent["in"] and self.client.received == self.sent["out"]

    def observations(self) -> list[dict[str, Any]]:
        """What the reader reported, without the clock: the events, the first close, whether answered."""
        self.pair.flush_traffic()
        seen = [
            {"type": type(e).__name__}
            | {k: v for k, v in msgspec.structs.asdict(e).items() if k not in TIMES}
            for e in self.events
        ]
        pair = self.pair
        seen.append({"first_close": pair.first_close, "answered": pair.answered})
        return seen

    def warnings(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, ev.LogLine)]


# --- property 1: valid frames, split anywhere, read the same -------------------------------------------

CLOSE_CODES = st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]) | (
    st.integers(3000, 4999)
)
REASONS = st.text(max_size=40).filter(lambda text: len(text.encode()) <= 123)
PAYLOAD = st.binary(max_size=300)  # past 125: the 16-bit length form too
PING = st.binary(max_size=125)


@st.composite
def data_message(draw: st.DrawFn) -> tuple[str, Opcode, bytes, list[int]]:
    direction = draw(st.sampled_from(["in", "out"]))
    if draw(st.booleans()):
        opcode, payload = Opcode.TEXT, draw(st.text(max_size=120)).encode()
    else:
        opcode, payload = Opcode.BINARY, draw(PAYLOAD)
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    return direction, opcode, payload, cuts


@st.composite
def conversations(draw: st.DrawFn) -> tuple[bool, list[tuple[str, bytes]], dict[str, int], dict[str, int]]:
    """(deflate, [(direction, a frame's bytes)], expected message counts by type, expected bytes)."""
    deflate = draw(st.booleans())
    # Two encoders a direction, fed the same frames: one measures the wire size, one serializes.
    measures = {d: PerMessageDeflate(False, False, 15, 15) for d in ("in", "out")}
    encoders = {d: PerMessageDeflate(False, False, 15, 15) for d in ("in", "out")}
    frames: list[tuple[str, bytes]] = []
    counts: dict[str, int] = {}
    sizes = {"in": 0, "out": 0}

    def add(direction: str, frame: Frame, data_frame: bool) -> None:
        extensions = [encoders[direction]] if deflate and data_frame else []
        if data_frame:
            sizes[direction] += len(measures[direction].encode(frame).data if extensions else frame.data)
        frames.append((direction, frame.serialize(mask=direction == "in", extensions=extensions)))

    items = draw(
        st.lists(st.one_of(data_message(), st.tuples(st.sampled_from(["in", "out"]), PING)), max_size=8)
    )
    for item in items:
        if len(item) == 2:
            direction, payload = item
            opcode = draw(st.sampled_from([Opcode.PING, Opcode.PONG]))
            add(direction, Frame(opcode, payload), False)
            counts[f"{opcode.name.lower()}_{direction}"] = (
                counts.get(f"{opcode.name.lower()}_{direction}", 0) + 1
            )
            continue
        direction, opcode, payload, cuts = item
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for index, piece in enumerate(pieces):
            first, last = index == 0, index == len(pieces) - 1
            add(direction, Frame(opcode if first else Opcode.CONT, piece, fin=last), True)
        key = f"{opcode.name.lower()}_{direction}"
        counts[key] = counts.get(key, 0) + 1
    closer = draw(st.sampled_from(["in", "out", None]))
    if closer is not None:
        code, reason = draw(CLOSE_CODES), draw(REASONS)
        add(closer, Frame(Opcode.CLOSE, Close(code, reason).serialize()), False)
        if draw(st.booleans()):
            other = "out" if closer == "in" else "in"
            add(other, Frame(Opcode.CLOSE, Close(code, "").serialize()), False)
    return deflate, frames, counts, sizes


def serialized(frames: list[tuple[str, Frame]]) -> list[tuple[str, bytes]]:
    return [(direction, frame.serialize(mask=direction == "in")) for direction, frame in frames]


def wire(frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Runs of consecutive same-direction frames (client frames masked, server's not)."""
    runs: list[tuple[str, bytes]] = []
    for direction, data in frames:
        if runs and runs[-1][0] == direction:
            runs[-1] = (direction, runs[-1][1] + data)
        else:
            runs.append((direction, data))
    return runs


def handshake(harness: Harness, deflate: bool) -> None:
    harness.feed("in", REQUEST)
    harness.feed("out", RESPONSE + (DEFLATE if deflate else b"") + b"\r\n")


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    edges = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    for start, end in itertools.pairwise(edges):
        yield data[start:end]


def read(runs: list[tuple[str, bytes]], deflate: bool, cutter: Any) -> Harness:
    harness = Harness()
    handshake(harness, deflate)
    for direction, data in runs:
        for piece in split(data, cutter(data)):
            harness.feed(direction, piece)
    assert harness.forwarded_unchanged()
    return harness


def whole(data: bytes) -> list[int]:
    return []


def every_byte(data: bytes) -> list[int]:
    return list(range(1, len(data)))


@hsettings(max_examples=examples(0.5))
@given(conversations(), st.randoms(use_true_random=False))
def test_valid_frames_read_the_same_however_split(conversation: Any, rng: Any) -> None:
    deflate, frames, counts, sizes = conversation
    runs = wire(frames)
    reference = read(runs, deflate, whole)
    observed = reference.observations()
    assert not reference.warnings(), reference.warnings()
    traffic = [o for o in observed if o.get("type") == "Traffic"]
    assert (traffic[0]["by_type"] if traffic else {}) == counts
    assert (
        (traffic[0]["bytes_in"], traffic[0]["bytes_out"]) == (sizes["in"], sizes["out"]) if traffic else True
    )
    assert read(runs, deflate, every_byte).observations() == observed

    def at_random(data: bytes) -> list[int]:
        return [rng.randrange(len(data) + 1) for _ in range(rng.randrange(4))]

    assert read(runs, deflate, at_random).observations() == observed


def test_a_frame_in_the_64_bit_length_form_reads_the_same_split_at_every_byte() -> None:
    payload = bytes(range(256)) * 300  # 76,800 bytes: over 65,535, so the 8-byte length form
    runs = wire(
        serialized([("in", Frame(Opcode.BINARY, payload)), ("out", Frame(Opcode.BINARY, payload[:70_000]))])
    )
    assert runs[0][1][1] & 0x7F == 127
    reference = read(runs, False, whole).observations()
    assert read(runs, False, every_byte).observations() == reference
    traffic = next(o for o in reference if o.get("type") == "Traffic")
    assert (traffic["bytes_in"], traffic["bytes_out"], traffic["by_type"]) == (
        len(payload),
        70_000,
        {"binary_in": 1, "binary_out": 1},
    )


# --- property 2: malformed frames never break the reader, and never touch forwarding --------------------

CAP = MAX_HELD_FRAMES


def opened(deflate: bool = False) -> Harness:
    harness = Harness()
    handshake(harness, deflate)
    assert harness.pair.opened_mono is not None
    return harness


def check_sound(harness: Harness) -> None:
    """Whatever came in: forwarded as it was, held within the cap, every event recordable, and a
    direction that stopped parsing said why in one line naming the connection."""
    assert harness.forwarded_unchanged()
    assert harness.most_held <= CAP
    harness.pair.flush_traffic()
    for event in harness.events:
        msgspec.msgpack.encode(event)  # what the recorder does with it
    warnings = harness.warnings()
    assert all(one_line(text) and text.startswith(harness.pair.conn_id) for text in warnings)
    for direction in (harness.pair.wire.inbound, harness.pair.wire.outbound):
        if direction.upgraded and not direction.alive:
            assert any(f"{direction.name} frames" in text or "this connection" in text for text in warnings)


def header(first: int, length: int, mask: bool) -> bytes:
    """A frame header by hand, for what websockets' encoder refuses to make (bad opcodes, huge lengths)."""
    flag = 0x80 if mask else 0
    if length < 126:
        head = bytes([first, flag | length])
    elif length < 1 << 16:
        head = bytes([first, flag | 126]) + struct.pack("!H", length)
    else:
        head = bytes([first, flag | 127]) + struct.pack("!Q", length)
    return head + (b"\x00\x00\x00\x00" if mask else b"")


def bad(first: int, length: int, mask: bool) -> bytes:
    """A whole frame when it is one the reader reads, its header alone when one it skips (over 1 MiB)."""
    return header(first, length, mask) + (bytes(length) if length <= MAX_PARSED_FRAME else b"")


CHUNKS = st.lists(st.tuples(st.sampled_from(["in", "out"]), st.binary(min_size=1, max_size=200)), max_size=12)


@hsettings(max_examples=examples(0.5))
@given(st.booleans(), CHUNKS)
@example(False, [("in", header(0x82, (1 << 64) - 1, True)), ("in", b"\x00" * 100)])
@example(
    False, [("out", header(0x82, MAX_PARSED_FRAME, False) + bytes(MAX_PARSED_FRAME - 1)), ("out", bytes(9))]
)
def test_arbitrary_bytes_after_the_handshake(deflate: bool, chunks: list[tuple[str, bytes]]) -> None:
    harness = opened(deflate)
    for direction, data in chunks:
        harness.feed(direction, data)
    check_sound(harness)


@st.composite
def bad_frames(draw: st.DrawFn, deflate: bool) -> tuple[str, bytes, str]:
    """(direction, a malformed frame's bytes, what the warning must say)."""
    direction = draw(st.sampled_from(["in", "out"]))
    mask = direction == "in"
    kinds = ["opcode", "rsv", "long control", "fragmented control", "length", "utf8", "orphan", "interleaved"]
    kind = draw(st.sampled_from(kinds))
    if kind == "orphan":
        cont = Frame(Opcode.CONT, draw(st.binary(max_size=200)), fin=draw(st.booleans()))
        return direction, cont.serialize(mask=mask), "continuation frame without a message"
    if kind == "interleaved":
        opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
        start = Frame(opcode, b"a", fin=False).serialize(mask=mask)
        return (
            direction,
            start + Frame(opcode, b"b").serialize(mask=mask),
            "before the last one's final frame",
        )
    if kind == "opcode":
        opcode = draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]))
        return direction, bad(0x80 | opcode, draw(st.integers(0, 125)), mask), "invalid opcode"
    if kind == "rsv":
        bits = draw(
            st.sampled_from([0x20, 0x10, 0x70] if deflate else [0x40, 0x20, 0x10, 0x70])
        )  # RSV1: deflate
        size = draw(st.sampled_from([0, 5, (1 << 20) + 1]))  # past 1 MiB a frame is skipped, not read
        return direction, bad(0x82 | bits, size, mask), "reserved bits"
    if kind == "long control":
        size = draw(st.sampled_from([126, 1000, (1 << 20) + 1, (1 << 40)]))
        return direction, bad(0x80 | draw(st.sampled_from([8, 9, 10])), size, mask), "control frame too long"
    if kind == "fragmented control":
        return direction, header(draw(st.sampled_from([8, 9, 10])), 0, mask), "fragmented control frame"
    if kind == "length":
        size = draw(st.integers(1 << 63, (1 << 64) - 1))
        return direction, bad(0x82, size, mask), "length"
    text = draw(st.sampled_from([b"\xff", b"\xc3", b"a\xed\xa0\x80", b"\xf4\x90\x80\x80"]))
    return (
        direction,
        Frame(Opcode.TEXT, b"").serialize(mask=mask)[:1]
        + Frame(Opcode.BINARY, text).serialize(mask=mask)[1:],
        "UTF-8",
    )


def found(direction: str, frame: bytes, says: str) -> Any:
    return example((False, (direction, frame, says)), b"", random.Random(0))


# Defects this found; each passed unnoticed before (the reader counted on as if nothing were wrong):
@found("in", Frame(Opcode.CONT, b"x").serialize(mask=True), "continuation frame without a message")
@found("out", bad(0x81, 2, False)[:-2] + b"\xc3(", "UTF-8")  # a text message that is not UTF-8
# Frames over 1 MiB are skipped unread, and were not checked at all: a control frame that long, reserved
# bits, and a 64-bit length with its top bit set (2^64-1 bytes counted as traffic at once).
@found("in", bad(0x89, (1 << 20) + 1, True), "control frame too long")
@found("out", bad(0xC2, (1 << 20) + 1, False), "reserved bits")
@found("in", bad(0x82, (1 << 64) - 1, True), "length")
@hsettings(max_examples=examples(0.5))
@given(
    st.booleans().flatmap(lambda deflate: st.tuples(st.just(deflate), bad_frames(deflate))),
    st.binary(max_size=300),
    st.randoms(use_true_random=False),
)
def test_a_malformed_frame_stops_its_direction_with_a_clear_reason(
    case: tuple[bool, tuple[str, bytes, str]], after: bytes, rng: Any
) -> None:
    deflate, (direction, frame, says) = case
    harness = opened(deflate)
    data = frame + after
    cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(4))]
    for piece in split(data, cuts):
        harness.feed(direction, piece)
    check_sound(harness)
    reader = harness.pair.wire.inbound if direction == "in" else harness.pair.wire.outbound
    side = "client" if direction == "in" else "server"
    assert not reader.alive
    (warning,) = harness.warnings()
    assert f"stopped reading {direction} frames" in warning and says in warning and side in warning, warning
    traffic = [e for e in harness.events if isinstance(e, ev.Traffic)]  # check_sound flushed it
    assert not any(e.msgs_in or e.msgs_out or e.by_type for e in traffic)  # no message counted from it


# --- property 3: the HTTP upgrade parser -------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)


@st.composite
def heads(draw: st.DrawFn, first_lines: st.SearchStrategy[str]) -> bytes:
    """An HTTP head of any shape: odd first lines, non-ASCII, folded lines, duplicated keys, bare LFs,
    huge headers, or no end at all."""
    lines = [draw(first_lines)]
    for _ in range(draw(st.integers(0, 6))):
        shape = draw(st.sampled_from(["header", "folded", "key", "upgrade", "extensions", "raw"]))
        if shape == "header":
            lines.append(f"{draw(HEADER_TEXT)}: {draw(HEADER_TEXT)}")
        elif shape == "folded":
            lines.append(f" {draw(HEADER_TEXT)}")
        elif shape == "key":
            lines.append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
        elif shape == "upgrade":
            lines.append(f"Upgrade: {draw(st.sampled_from(['websocket', 'WebSocket', 'h2c', '']))}")
        elif shape == "extensions":
            lines.append(
                f"Sec-WebSocket-Extensions: {draw(st.sampled_from(['permessage-deflate; x=', ',,;']))}"
            )
        else:
            lines.append(draw(st.text(max_size=30)))
    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    head = newline.join(lines).encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")
    if draw(st.booleans()):
        head += (
            b"X-Pad: "
            + b"a" * draw(st.sampled_from([1000, MAX_HTTP_HEAD - 200, MAX_HTTP_HEAD + 10]))
            + b"\r\n"
        )
    return head + draw(st.sampled_from([b"\r\n\r\n", b"\r\n", b"", b"\n\n"]))


REQUEST_LINES = st.sampled_from(["GET /live HTTP/1.1", "GET /?token=abc HTTP/1.1", "GET", ""]) | st.text(
    max_size=40
)
STATUS = st.sampled_from(["101", "403", "1_01", " 101", "99999999999999999999999", "-1", "", "٣"]) | st.text(
    max_size=8
)
STATUS_LINES = st.builds("HTTP/1.1 {} {}".format, STATUS, st.text(max_size=20)) | st.text(max_size=40)


def found_head(response: bytes, cut: int = 100) -> Any:
    return example(REQUEST, response, [cut], b"")


def handshake_cap_held(harness: Harness) -> None:
    pair = harness.pair
    for direction in (pair.wire.inbound, pair.wire.outbound):
        if not direction.upgraded:
            assert len(direction.reader.buffer) <= MAX_HELD_HANDSHAKE


def exchange(request: bytes, response: bytes, cuts: list[int]) -> Harness:
    harness = Harness()
    for direction, data in (("in", request), ("out", response)):
        for piece in split(data, cuts):
            harness.feed(direction, piece)
            handshake_cap_held(harness)
    return harness


@found_head(b"HTTP/1.1 99999999999999999999999 Nope\r\n\r\n")  # a status ConnectFailed could not record
# A head ending past 64 KiB was read when its end came in the same chunk, refused when split before it:
@found_head(b"HTTP/1.1 101 OK\r\nX-Pad: " + b"a" * (MAX_HTTP_HEAD + 10) + b"\r\n\r\n", MAX_HTTP_HEAD + 5)
@hsettings(max_examples=examples(0.5))
@given(
    heads(REQUEST_LINES),
    heads(STATUS_LINES),
    st.lists(st.integers(0, 70_000), max_size=4),
    st.binary(max_size=50),
)
def test_any_upgrade_head_is_read_within_the_cap(
    request: bytes, response: bytes, cuts: list[int], tail: bytes
) -> None:
    harness = exchange(request + tail, response + tail, cuts)
    check_sound(harness)
    assert harness.observations() == exchange(request + tail, response + tail, []).observations()


# --- forwarding, end to end: garbage through a real TapSource over real sockets ------------------------


class Collector:
    """A plain TCP upstream: answers with ``answer`` (a 101 and whatever follows) and keeps every byte."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.received = bytearray()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.answer)
        with contextlib.suppress(OSError):
            while data := await reader.read(1 << 16):
                self.received += data
        writer.close()


async def through_a_tap(sent: bytes, answer: bytes, pieces: list[bytes]) -> tuple[bytes, bytes, Recorder]:
    collector = Collector(answer)
    server = await asyncio.start_server(collector.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, tapped(f"ws://127.0.0.1:{port}") as (tap, recorder):
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.port)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        async with asyncio.timeout(20):
            got = await reader.readexactly(len(answer))
            while len(collector.received) < len(sent):
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)  # anything extra would show up now
        writer.close()
        return bytes(collector.received), got, recorder


GARBAGE = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=300),
        bad_frames(False).map(lambda case: case[1]),
        conversations().map(lambda conversation: b"".join(data for _, data in conversation[1])),
    ),
    min_size=1,
    max_size=6,
)


@hsettings(max_examples=examples(0.1))
@given(GARBAGE, GARBAGE, st.randoms(use_true_random=False))
def test_garbage_after_a_valid_handshake_is_forwarded_unchanged(
    client_garbage: list[bytes], server_garbage: list[bytes], rng: Any
) -> None:
    sent = REQUEST + b"".join(client_garbage)
    answer = RESPONSE + b"\r\n" + b"".join(server_garbage)
    pieces = list(split(sent, [rng.randrange(len(sent) + 1) for _ in range(rng.randrange(6))]))
    upstream_got, client_got, recorder = asyncio.run(through_a_tap(sent, answer, pieces))
    assert upstream_got == sent
    assert client_got == answer
    assert recorder.of(ev.ConnectionOpened)  # the reader was at work on the frames, not stopped earlier


def test_a_text_message_with_a_skipped_fragment_is_not_taken_for_bad_utf8() -> None:
    """A fragment over 1 MiB is skipped unread, so the UTF-8 check cannot follow the message across it:
    it must give up on that message, not report the next fragment (which starts mid-character) as bad."""
    text = ("é" * (1 << 20)).encode()  # 2 MiB of two-byte characters
    frames = [
        Frame(Opcode.TEXT, text[:10], fin=False),
        Frame(Opcode.CONT, text[10 : (1 << 20) + 11], fin=False),  # over 1 MiB, ends mid-character
        Frame(Opcode.CONT, text[(1 << 20) + 11 :]),
    ]
    for direction in ("in", "out"):
        harness = read(wire(serialized([(direction, frame) for frame in frames])), False, whole)
        assert not harness.warnings(), harness.warnings()
        assert harness.pair.by_type == {f"text_{direction}": 1}
