"""The per-second series behind the Trends panel (core.timeline): filled by the reducer from events,
bounded over a long session, the same after record → replay (the panel: test_ui_trends.py)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from helpers import write_recording
from hypothesis import given, settings
from test_witnesses import sessions

from wsmon.core import events as ev
from wsmon.core.closecodes import close_class
from wsmon.core.reducer import Reducer, fold
from wsmon.core.state import decode_state, encode_state
from wsmon.core.timeline import COARSE_BUCKETS, COARSE_SECONDS, FINE_SECONDS
from wsmon.store import RecordingReader

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
MONO0 = 1000
CLIENTS = 30
SLOW_SECONDS = range(20, 26)  # delivery p95 80 ms, above the 50 ms limit
ABNORMAL_FROM = 40  # a 1006 a second from here on
SECONDS = 60


def at(second: float) -> dict[str, float]:
    return {"wall": T0 + second, "mono": MONO0 + second}


def script() -> list[ev.Event]:
    out: list[ev.Event] = [ev.ConnectionOpened(**at(0.1 + i / 100), conn=f"c{i}") for i in range(CLIENTS)]
    for s in range(1, SECONDS):
        out.append(ev.Traffic(**at(s + 0.2), conn="c0", msgs_in=7, msgs_out=3))
        ms = 80.0 if s in SLOW_SECONDS else 10.0
        out.extend(ev.LatencySample(**at(s + 0.3), kind="delivery", ms=ms, ref=f"m{s}-{k}") for k in range(4))
        if s == 30:
            out.append(ev.DeliveryFailed(**at(s + 0.4), message_id="lost", conn="c1", reason="timeout"))
            out.append(ev.ConnectFailed(**at(s + 0.5), target="ws", kind="refused"))
        if s == 10:
            out.append(ev.ConnectionClosed(**at(s + 0.6), conn="c29", code=1000, closed_by="client"))
        if s >= ABNORMAL_FROM and s - ABNORMAL_FROM < 5:
            conn = f"c{20 + s - ABNORMAL_FROM}"
            out.append(ev.ConnectionClosed(**at(s + 0.7), conn=conn, code=1006, closed_by="neither"))
    return out


def test_the_reducer_fills_every_series_second_by_second() -> None:
    timeline = fold(script()).timeline
    by_second = {b.start - MONO0: b for b in timeline.fine}
    assert by_second[0].open == CLIENTS
    assert by_second[5].msgs == 10 and by_second[5].open == CLIENTS
    assert by_second[5].latency_p95() == pytest.approx(10.0, rel=0.01)
    assert by_second[22].latency_p95() == pytest.approx(80.0, rel=0.01)
    assert by_second[30].delivery_failures == 1 and by_second[30].connect_failures == 1
    assert by_second[30].failures == 2
    assert by_second[10].closes == {"normal": 1} and by_second[10].open == CLIENTS - 1
    assert by_second[ABNORMAL_FROM].closes == {"abnormal": 1}
    assert by_second[ABNORMAL_FROM + 4].open == CLIENTS - 6
    assert timeline.first_abnormal_wall == T0 + ABNORMAL_FROM + 0.7
    assert timeline.last_abnormal_wall == T0 + ABNORMAL_FROM + 4.7
    assert by_second[7].wall == T0 + 7  # the wall-clock time the second began


def test_a_late_event_lands_in_its_own_second() -> None:
    reducer = Reducer()
    reducer.apply_many(
        [
            ev.Traffic(**at(5.5), conn="x", msgs_in=1),
            ev.Traffic(**at(3.5), conn="x", msgs_in=2),  # another source's, two seconds late
            ev.Traffic(**at(5.9), conn="x", msgs_in=4),
        ]
    )
    assert [(b.start - MONO0, b.msgs) for b in reducer.state.timeline.fine] == [(3, 2), (5, 5)]


def test_memory_stays_bounded_over_a_long_session() -> None:
    hours = 30
    events = (ev.Traffic(**at(s + 0.5), conn="x", msgs_in=1) for s in range(hours * 3600))
    started = time.perf_counter()
    timeline = fold(events).timeline
    assert time.perf_counter() - started < 30
    assert FINE_SECONDS <= len(timeline.fine) <= FINE_SECONDS + 60
    assert COARSE_BUCKETS <= len(timeline.coarse) <= COARSE_BUCKETS + 60
    assert all(b.span == COARSE_SECONDS and b.msgs == COARSE_SECONDS for b in timeline.coarse[1:])
    # Nothing lost between the two rings: the coarse ring ends where the fine one begins.
    assert timeline.coarse[-1].start + COARSE_SECONDS == timeline.fine[0].start


def test_old_keyframes_without_the_series_still_read() -> None:
    state = fold(script())
    as_map = msgspec.to_builtins(state)
    del as_map["timeline"]
    decoded = decode_state(msgspec.msgpack.encode(as_map))
    assert decoded.timeline.fine == [] and decoded.timeline.first_abnormal_wall is None
    assert decode_state(encode_state(state)) == state


def test_replay_gives_the_same_series_as_live(tmp_path: Path) -> None:
    path = tmp_path / "trend.wsmon"
    events = script()
    live = write_recording(path, events, batch=9, keyframe_every=50).state
    reader = RecordingReader(path)
    assert reader.state_at_seq(reader.event_count).timeline == live.timeline
    assert fold(reader.iter_events()).timeline == live.timeline
    middle = len(events) // 2 + 3  # from a keyframe, then events
    assert reader.state_at_seq(middle).timeline == fold(events[:middle]).timeline


@settings(max_examples=200, deadline=None)
@given(sessions())
def test_the_series_count_a_connection_once_whatever_its_witnesses(
    session: tuple[bool, bool, object, list[ev.Event]],
) -> None:
    """A tap's and a server log's view of one connection: one close in its second, and the open count
    the totals have (witnesses._mirror takes the log's row out of both)."""
    state = fold(session[3])
    closes: Counter[str] = Counter()
    for bucket in state.timeline.fine:
        closes.update(bucket.closes)
    expected: Counter[str] = Counter()
    for code, n in state.close_codes.items():
        expected[close_class(code).value] += n
    assert closes == expected
    if state.timeline.fine:
        assert state.timeline.fine[-1].open == state.open_count
