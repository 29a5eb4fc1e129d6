"""The replay engine: seeks, steps, speed and pause give the States a fresh fold gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer, fold
from wsmon.core.state import encode_state
from wsmon.store import SPEEDS, RecordingReader, RecordingWriter, ReplayEngine, new_header

WALL0 = 1_760_000_000.0
MONO0 = 100.0


def timeline(count: int) -> list[ev.Event]:
    """Events 0.1 s apart, with interleaving sources: every fifth event is stamped a little late."""
    out: list[ev.Event] = []
    for i in range(count):
        late = 0.15 if i % 5 == 4 else 0.0
        t = {"wall": WALL0 + i * 0.1 - late, "mono": MONO0 + i * 0.1 - late}
        conn = f"c{i % 9}"
        if i % 9 == 0:
            out.append(ev.ConnectionOpened(**t, conn=conn, peer="10.0.0.2:4000"))
        elif i % 9 == 8:
            out.append(ev.ConnectionClosed(**t, conn=conn, code=1006, closed_by="neither"))
        elif i % 3 == 0:
            out.append(ev.LatencySample(**t, kind="delivery", ms=2.0 + i % 7))
        else:
            out.append(ev.Traffic(**t, conn=conn, msgs_in=1, msgs_out=2, bytes_in=30, bytes_out=60))
    return out


@pytest.fixture
def recording(tmp_path: Path) -> tuple[RecordingReader, list[ev.Event]]:
    events = timeline(2_000)
    path = tmp_path / "replay.wsmon"
    state = fold([])
    with RecordingWriter(path, new_header("replay test"), keyframe_every=150) as writer:
        for start in range(0, len(events), 64):
            chunk = events[start : start + 64]
            writer.extend(chunk)
            state = fold(chunk, state)
            writer.flush(state)
    reader = RecordingReader(path)
    yield reader, events
    reader.close()


def test_a_fresh_engine_is_at_the_start_and_not_paused(
    recording: tuple[RecordingReader, list[ev.Event]],
) -> None:
    reader, events = recording
    engine = ReplayEngine(reader)
    assert engine.position == 0 and not engine.paused and not engine.at_end
    assert engine.clock == reader.first_mono == min(e.mono for e in events[:64])
    assert engine.state == fold([])


def test_seek_seq_and_steps_equal_a_fresh_fold(recording: tuple[RecordingReader, list[ev.Event]]) -> None:
    reader, events = recording
    engine = ReplayEngine(reader)
    for n in (1_234, 0, 150, 151, 1_999, 2_000, 7):
        engine.seek_seq(n)
        assert engine.position == n
        assert engine.state == fold(events[:n])
    engine.seek_seq(300)
    assert engine.step(+1) == 1 and engine.position == 301
    assert engine.step(+5) == 5 and engine.state == fold(events[:306])
    assert engine.step(-1) == -1 and engine.state == fold(events[:305])
    assert engine.step(-3) == -3 and engine.state == fold(events[:302])
    engine.seek_seq(0)
    assert engine.step(-1) == 0 and engine.position == 0
    engine.seek_seq(2_000)
    assert engine.at_end and engine.step(+1) == 0


def test_a_seek_ahead_with_no_keyframe_between_folds_on_from_the_state_shown(
    recording: tuple[RecordingReader, list[ev.Event]], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, events = recording
    # Two keyframes in a row, far enough apart to step between them (the fixture writes one every 150
    # events or so, at its 64-event flushes).
    first = reader.keyframe_seq_at_or_before(1_000)
    assert first is not None
    second = next(n for n in range(first + 1, 2_001) if reader.keyframe_seq_at_or_before(n) != first)
    assert second - first >= 100
    engine = ReplayEngine(reader)
    loaded: list[int] = []
    load = reader.keyframe_at_or_before

    def counted(seq: int) -> object:
        loaded.append(seq)
        return load(seq)

    monkeypatch.setattr(reader, "keyframe_at_or_before", counted)
    engine.seek_seq(first + 5)  # a keyframe lies between the start and here: it is read
    assert loaded == [first + 5]
    # Ahead, in steps that cross batches (64 events) but not the next keyframe: folded on, none read.
    for n in (first + 6, first + 40, first + 90, second - 1):
        engine.seek_seq(n)
        assert engine.position == n and engine.state == fold(events[:n])
        assert engine.clock == engine.state.last_mono
    assert loaded == [first + 5]
    engine.seek_seq(first + 50)  # back: from the keyframe, as before
    assert loaded == [first + 5, first + 50] and engine.state == fold(events[: first + 50])
    target = events[first + 70].mono  # → by a span, landing before the next keyframe
    landing = next(i for i, e in enumerate(events) if e.mono > target)
    assert first + 50 < landing < second
    engine.seek_time(target)
    assert engine.position == landing and engine.state == fold(events[:landing]) and engine.clock == target
    assert loaded == [first + 5, first + 50]
    engine.seek_seq(1_999)  # past the next keyframe: the keyframe is the shorter way
    assert loaded[-1] == 1_999 and engine.state == fold(events[:1_999])


def test_seek_time_applies_every_event_up_to_the_time_and_none_after(
    recording: tuple[RecordingReader, list[ev.Event]],
) -> None:
    reader, events = recording
    engine = ReplayEngine(reader)
    for target in (MONO0 + 12.34, MONO0 + 0.05, MONO0 + 150.0, MONO0 + 10.0):
        engine.seek_time(target)
        # In stream order: the prefix up to the first event stamped later than the target.
        expected = next((i for i, e in enumerate(events) if e.mono > target), len(events))
        assert engine.position == expected
        assert engine.clock == target
        assert engine.state == fold(events[:expected])
    engine.seek_time(MONO0 - 100)  # clamped to the start, where the first event has just happened
    assert engine.position == 1 and engine.clock == reader.first_mono
    engine.seek_time(MONO0 + 10_000)
    assert engine.at_end and engine.clock == reader.last_mono


def test_speed_is_clamped_and_steps_through_the_ladder(
    recording: tuple[RecordingReader, list[ev.Event]],
) -> None:
    engine = ReplayEngine(recording[0])
    engine.speed = 100
    assert engine.speed == 16
    engine.speed = 0.01
    assert engine.speed == 0.25
    seen = [engine.speed]
    for _ in range(len(SPEEDS) + 2):
        seen.append(engine.faster())
    assert seen == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0, 16.0]
    assert [engine.slower() for _ in range(3)] == [8.0, 4.0, 2.0]
    engine.speed = 3.0
    assert engine.faster() == 4.0
    engine.speed = 3.0
    assert engine.slower() == 2.0


def test_advance_moves_the_clock_by_speed_and_pause_stops_it(
    recording: tuple[RecordingReader, list[ev.Event]],
) -> None:
    reader, events = recording
    engine = ReplayEngine(reader)
    start = engine.clock
    engine.speed = 4
    applied = engine.advance(0.5)  # two seconds of replay time
    assert engine.clock == pytest.approx(start + 2.0)
    expected = next(i for i, e in enumerate(events) if e.mono > engine.clock)
    assert applied == expected == engine.position
    assert engine.state == fold(events[:expected])

    engine.pause()
    assert engine.advance(10.0) == 0
    assert engine.clock == pytest.approx(start + 2.0) and engine.position == expected
    assert engine.toggle_pause() is False

    engine.speed = 16
    total = expected
    while not engine.at_end:
        total += engine.advance(1.0)
    assert total == len(events)
    assert engine.state == fold(events)
    assert engine.advance(1.0) == 0


def test_replay_shows_exactly_what_the_live_session_showed(tmp_path: Path) -> None:
    events = timeline(3_000)
    path = tmp_path / "live.wsmon"
    live = Reducer()
    shown_live: dict[int, bytes] = {}
    with RecordingWriter(path, new_header("live"), keyframe_every=500) as writer:
        for i, event in enumerate(events, 1):
            live.apply(event)
            writer.append(event)
            if i % 250 == 0:
                writer.flush(live.state)
                shown_live[i] = encode_state(live.state)  # a snapshot: the live State goes on changing
        writer.close(live.state)
    with RecordingReader(path) as reader:
        engine = ReplayEngine(reader)
        for i in sorted(shown_live, reverse=True):
            engine.seek_seq(i)
            assert encode_state(engine.state) == shown_live[i]
        engine.seek_seq(0)
        engine.speed = 16
        while not engine.at_end:
            engine.advance(0.7)
        assert engine.state == live.state
