"""A frame read in place equals the frame websockets' Frame.parse reads from the same bytes, and a
frame not wholly buffered, or not the common case, is left in the buffer for Frame.parse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ProtocolError
from websockets.frames import Frame, Opcode, apply_mask
from websockets.streams import StreamReader

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
