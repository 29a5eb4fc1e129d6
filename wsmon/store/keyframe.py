"""A keyframe's content from format 2 on: the State, with its latency windows packed apart.

A latency window is two lists of float64, sample times and sample values, and every keyframe carries
the last minute of them: 58 % of a delta keyframe's compressed bytes (1,000 connections, 250 samples/s).
As msgpack floats (a marker byte, then eight big-endian bytes) zstd finds little to match in them.
Packed, the same bits are byte-shuffled: all the floats' first bytes, then all their second bytes, and
so on, so that sign-and-exponent bytes and the high mantissa bytes, nearly constant along a window,
sit together and compress, while the low mantissa bytes stay the noise they are. Delta keyframes are
9 % smaller (a full one 5 %); nothing is dropped or rounded: every float comes back bit for bit.

    keyframe = msgpack [State with every window_t and window_v empty, {kind: [times, values]}]

Format 1 keyframes are the State itself (``wsmon.core.state.encode_state``); ``decode_keyframe``
reads both. docs/recording-format.md describes the bytes.
"""

from __future__ import annotations

import sys
from array import array

import msgspec

from wsmon.core.percentiles import Distribution
from wsmon.core.state import State, decode_state

# The first format whose keyframes are packed like this; format 1's are the plain State.
PACKED_WINDOWS_FORMAT = 2
_FLOAT_SIZE = 8


class PackedWindow(msgspec.Struct, array_like=True, gc=False):
    times: bytes  # float64 little-endian, shuffled
    values: bytes


class PackedKeyframe(msgspec.Struct, array_like=True, gc=False):
    state: State  # its latency windows empty: they are in ``windows``, by latency kind
    windows: dict[str, PackedWindow]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PackedKeyframe)


def encode_keyframe(state: State) -> bytes:
    """A format-2 keyframe of ``state``; ``state`` is not changed (the windows go in copies)."""
    bare: dict[str, Distribution] = {}
    windows: dict[str, PackedWindow] = {}
    for kind, distribution in state.latency.items():
        bare[kind] = msgspec.structs.replace(distribution, window_t=[], window_v=[])
        windows[kind] = PackedWindow(pack_floats(distribution.window_t), pack_floats(distribution.window_v))
    return _encoder.encode(PackedKeyframe(msgspec.structs.replace(state, latency=bare), windows))


def decode_keyframe(raw: bytes, format_version: int) -> State:
    """The State a keyframe's (decompressed) bytes hold, for a recording of ``format_version``.

    Raises ``ValueError`` (or a msgspec error) on bytes that are not a keyframe.
    """
    if format_version < PACKED_WINDOWS_FORMAT:
        return decode_state(raw)
    keyframe = _decoder.decode(raw)
    state = keyframe.state
    if keyframe.windows.keys() != state.latency.keys():
        raise ValueError("its latency windows do not match its latency kinds")
    for kind, packed in keyframe.windows.items():
        times, values = unpack_floats(packed.times), unpack_floats(packed.values)
        if len(times) != len(values):
            raise ValueError(f"its {kind} window has {len(times)} times and {len(values)} values")
        distribution = state.latency[kind]
        distribution.window_t = times
        distribution.window_v = values
    return state


def pack_floats(floats: list[float]) -> bytes:
    """float64 little-endian, shuffled."""
    return _shuffle(_little_endian(array("d", floats)).tobytes())


def unpack_floats(packed: bytes) -> list[float]:
    floats = array("d")
    floats.frombytes(_unshuffle(packed))
    return _little_endian(floats).tolist()


def _little_endian(floats: array[float]) -> array[float]:
    """The file's byte order is little-endian: on a big-endian machine, swap (in place, both ways)."""
    if sys.byteorder == "big":
        floats.byteswap()
    return floats


def _shuffle(data: bytes) -> bytes:
    """Every item's first byte, then every item's second byte, ... (items of eight bytes)."""
    return b"".join(data[lane::_FLOAT_SIZE] for lane in range(_FLOAT_SIZE))


def _unshuffle(data: bytes) -> bytes:
    if len(data) % _FLOAT_SIZE:
        raise ValueError(f"a packed window of {len(data)} bytes, not a whole number of floats")
    count = len(data) // _FLOAT_SIZE
    out = bytearray(len(data))
    for lane in range(_FLOAT_SIZE):
        out[lane::_FLOAT_SIZE] = data[lane * count : (lane + 1) * count]
    return bytes(out)
