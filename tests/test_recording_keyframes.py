"""Keyframes of format 2 (latency windows packed apart: wsmon/store/keyframe.py) and of format 1."""

from __future__ import annotations

import math
import random
import shutil
import sqlite3
import struct
from pathlib import Path

import msgspec
import pytest
import zstandard
from helpers import write_recording
from hypothesis import given
from hypothesis import strategies as st
from test_recording import sample_events

from wsmon.core.reducer import fold
from wsmon.core.state import encode_state
from wsmon.store import FORMAT_VERSION, RecordingReader
from wsmon.store.keyframe import (
    PackedKeyframe,
    PackedWindow,
    decode_keyframe,
    encode_keyframe,
    pack_floats,
    unpack_floats,
)

# Written by wsmon at fdf4df5 (format 1: keyframes are the plain State, 1 KiB pages) with
# helpers.write_recording(path, test_recording.sample_events(3_000), batch=97, keyframe_every=300):
# eight keyframes, a full one and a chain of seven deltas, each with a delivery and a ping window.
FORMAT_1_RECORDING = Path(__file__).parent / "golden" / "format1.wsmon"


def _bits(floats: list[float]) -> list[bytes]:
    return [struct.pack("<d", value) for value in floats]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)))
def test_packed_floats_come_back_bit_for_bit(floats: list[float]) -> None:
    assert _bits(unpack_floats(pack_floats(floats))) == _bits(floats)


def test_odd_floats_come_back_bit_for_bit() -> None:
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    floats = [86_400.25, -0.0, 0.0, math.inf, -math.inf, payload_nan, 5e-324, -1.5, 1.7976931348623157e308]
    assert _bits(unpack_floats(pack_floats(floats))) == _bits(floats)


def test_a_packed_window_cut_short_is_refused() -> None:
    with pytest.raises(ValueError, match="not a whole number of floats"):
        unpack_floats(pack_floats([1.0, 2.0])[:-3])


def test_a_keyframe_gives_back_the_state_and_leaves_it_as_it_was() -> None:
    state = fold(sample_events(3_000))
    assert state.latency.keys() == {"delivery", "ping"}
    assert all(distribution.window_t for distribution in state.latency.values())
    before = encode_state(state)
    raw = encode_keyframe(state)
    assert encode_state(state) == before  # the live State keeps its windows
    assert decode_keyframe(raw, FORMAT_VERSION) == state
    assert decode_keyframe(before, 1) == state  # format 1: the plain State


def test_a_keyframe_whose_windows_do_not_match_its_kinds_is_refused() -> None:
    state = fold(sample_events(1_000))
    uneven = PackedWindow(pack_floats([1.0, 2.0]), pack_floats([3.0]))
    bare = msgspec.structs.replace(state, latency={"delivery": state.latency["delivery"]})
    with pytest.raises(ValueError, match="2 times and 1 values"):
        decode_keyframe(msgspec.msgpack.encode(PackedKeyframe(bare, {"delivery": uneven})), FORMAT_VERSION)
    with pytest.raises(ValueError, match="do not match"):
        decode_keyframe(msgspec.msgpack.encode(PackedKeyframe(bare, {})), FORMAT_VERSION)


def test_packed_windows_compress_smaller_than_msgpack_floats() -> None:
    """What format 2 is for: measured values (full-precision floats) in a minute's window."""
    rng = random.Random(3)
    state = fold(sample_events(200))
    distribution = state.latency["delivery"]
    distribution.window_t = sorted(86_400 + rng.random() * 60 for _ in range(15_000))
    distribution.window_v = [rng.lognormvariate(1.5, 0.5) for _ in range(15_000)]
    compress = zstandard.ZstdCompressor(level=3).compress
    packed, plain = len(compress(encode_keyframe(state))), len(compress(encode_state(state)))
    assert packed < 0.9 * plain


def test_a_new_recording_is_format_2_with_packed_keyframes(tmp_path: Path) -> None:
    path = tmp_path / "new.wsmon"
    events = sample_events(2_000)
    write_recording(path, events, batch=97, keyframe_every=300)
    with RecordingReader(path) as reader:
        assert reader.format_version == FORMAT_VERSION == 2
        seqs = [seq for (seq,) in reader._db.execute("SELECT seq FROM keyframes ORDER BY seq")]
        assert len(seqs) > 5
        for seq in seqs:
            keyframe = reader.keyframe_at_or_before(seq)
            assert keyframe is not None and keyframe.seq == seq
            assert keyframe.state == fold(events[:seq])
            assert reader._keyframe_bytes(seq)[0] == 0x92  # the [state, windows] pair, not a State map
        assert reader.warnings == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        assert db.execute("PRAGMA page_size").fetchone() == (512,)
    db.close()


def test_a_format_1_recording_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "format1.wsmon"
    shutil.copyfile(FORMAT_1_RECORDING, path)
    with RecordingReader(path) as reader:
        assert reader.format_version == 1
        assert reader.header.format_version == 1
        events = list(reader.iter_events())
        assert len(events) == 3_000
        seqs = [seq for (seq,) in reader._db.execute("SELECT seq FROM keyframes ORDER BY seq")]
        assert len(seqs) == 8
        for seq in seqs:
            keyframe = reader.keyframe_at_or_before(seq)
            assert keyframe is not None and keyframe.seq == seq  # read, not skipped
            assert keyframe.state == fold(events[:seq])
            assert keyframe.state.latency["delivery"].window_t
        for n in (0, 1, 500, 1_234, 2_999, 3_000):
            assert reader.state_at_seq(n) == fold(events[:n])
        assert reader.warnings == []
