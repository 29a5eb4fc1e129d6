"""A frame read in place equals the frame websockets' Frame.parse reads from the same bytes, and a
frame not wholly buffered, or not the common case, is left in the buffer for Frame.parse; the whole
messages a read holds, read straight from its bytes, are observed as the generator observes them."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ProtocolError
from websockets.frames import Frame, Opcode, apply_mask
from websockets.streams import StreamReader

from tests.test_wire import DEFLATE, REQUEST, RESPONSE, Recorder
from wsmon.sources.wire import WireParser
from wsmon.sources.wire.inplace import whole_frame

MAX = 70_000

frames = st.builds(
    lambda opcode, data, fin, rsv: (opcode, data, fin, rsv),
    st.sampled_from(list(Opcode)),
    st.one_of(st.binary(max_size=300), st.binary(min_size=65_530, max_size=65_540)),
    st.booleans(),
    st.tuples(st.booleans(), st.booleans(), st.booleans()),
)


def _serialize(opcode: Opcode, data: bytes, bits: tuple[bool, bool, bool, bool], masked: bool) -> bytes:
    """By hand, as Frame.serialize would check the frame first (a bad one is wanted here too)."""
    head1 = opcode.value | sum(0x80 >> i for i, bit in enumerate(bits) if bit)
    size = len(data)
    if size < 126:
        head = bytes([head1, size | (0x80 if masked else 0)])
    elif size < 65_536:
        head = bytes([head1, 126 | (0x80 if masked else 0)]) + size.to_bytes(2, "big")
    else:  # the 64-bit length: always left to Frame.parse
        head = bytes([head1, 127 | (0x80 if masked else 0)]) + size.to_bytes(8, "big")
    if not masked:
        return head + data
    key = b"\x12\x34\x56\x78"
    return head + key + apply_mask(data, key)


def _parse(raw: bytes, mask: bool) -> tuple[Frame | None, str, int]:
    reader = StreamReader()
    reader.feed_data(raw)
    parser = Frame.parse(reader.read_exact, mask=mask, max_size=MAX, extensions=[])
    try:
        next(parser)
    except StopIteration as stop:
        return stop.value, "", len(reader.buffer)
    except ProtocolError as exc:
        return None, str(exc), len(reader.buffer)
    return None, "incomplete", len(reader.buffer)


@settings(max_examples=300, deadline=None)
@given(frames, st.booleans(), st.booleans(), st.integers(min_value=0, max_value=10), st.binary(max_size=20))
def test_in_place_equals_frame_parse(
    spec: tuple[Opcode, bytes, bool, tuple[bool, bool, bool]],
    masked: bool,
    expect_mask: bool,
    cut: int,
    after: bytes,
) -> None:
    opcode, data, fin, (rsv1, rsv2, rsv3) = spec
    raw = _serialize(opcode, data, (fin, rsv1, rsv2, rsv3), masked) + after
    raw = raw[: len(raw) - cut] if cut > len(after) else raw
    expected, error, left = _parse(raw, expect_mask)
    buffer = bytearray(raw)
    try:
        got = whole_frame(buffer, mask=expect_mask, max_size=MAX, extensions=[])
    except ProtocolError as exc:
        assert str(exc) == error  # checked after the read, as Frame.parse checks it
        assert len(buffer) == left
        return
    if got is None:
        assert buffer == bytearray(raw)  # untouched: Frame.parse reads it, and raises what it raises
        return
    assert got == expected
    assert len(buffer) == left


# --- whole messages read straight from a read's bytes (WireParser's fast path) --------------------------


def _observed(stream: bytes, cuts: list[int], *, client: bool, payloads: bool, deflate: bool) -> list[object]:
    recorder = Recorder()
    wire = WireParser(recorder, payloads=payloads)
    wire.from_client(REQUEST)
    wire.from_server(DEFLATE if deflate else RESPONSE)
    feed = wire.from_client if client else wire.from_server
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        if cut > start:
            feed(stream[start:cut])
            start = cut
    return recorder.seen


payload_data = st.one_of(
    st.binary(max_size=130),
    st.text(max_size=40).map(str.encode),  # UTF-8, multi-byte too
    st.sampled_from([b"\xc3\x28", b"ok\xff", b"\xe2\x82"]),  # not UTF-8
    st.binary(min_size=200, max_size=400),  # a 16-bit length
)
stream_frames = st.tuples(
    st.sampled_from([Opcode.TEXT, Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING, Opcode.CLOSE]),
    payload_data,
    st.booleans() | st.just(True),  # FIN, mostly
    st.sampled_from([(False, False, False)] * 6 + [(True, False, False), (False, False, True)]),
    st.sampled_from([None] * 12 + [True]),  # now and then the wrong masking
)


def _compressed(data: bytes) -> bytes:
    """``data`` as permessage-deflate sends a message (RFC 7692 §7.2.1), with a fresh context."""
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(stream_frames, max_size=8),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
)
def test_a_stream_cut_anywhere_reads_as_it_does_byte_by_byte(
    frames_: list[tuple[Opcode, bytes, bool, tuple[bool, bool, bool], bool | None]],
    client: bool,
    payloads: bool,
    deflate: bool,
    cuts: list[int],
) -> None:
    """Whole frames in a read are read by the fast path, the rest (and everything fed a byte at a time)
    by the generator: both must observe the same, errors and the bytes counted before them included.
    With permessage-deflate negotiated, a frame with RSV1 carries its payload compressed (each with a
    fresh context: the inflater's window is then wrong for some, which both paths must meet alike)."""
    stream = b"".join(
        _serialize(
            opcode,
            _compressed(data) if deflate and rsv[0] else data,
            (fin, *rsv),
            masked=client != bool(wrong),
        )
        for opcode, data, fin, rsv, wrong in frames_
    )
    options = {"client": client, "payloads": payloads, "deflate": deflate}
    expected = _observed(stream, list(range(len(stream))), **options)
    assert _observed(stream, cuts, **options) == expected
    assert _observed(stream, [], **options) == expected
