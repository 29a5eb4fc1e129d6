"""The Trends panel's columns (ui/trend_columns.py): the whole kept history in the panel's width, a
column a round number of seconds, rates as their busiest second, closes counted, open carried."""

from __future__ import annotations

import pytest
from helpers import Clock

from wsmon.core import events as ev
from wsmon.core.reducer import fold
from wsmon.core.timeline import FINE_SECONDS
from wsmon.ui.trend_columns import chart, column_span, duration

at = Clock(wall0=1_750_000_000.0, mono0=1000.0)
END = 1000 + 299  # the last second of a five-minute session


def five_minutes() -> list[ev.Event]:
    """10 messages a second, 100 in second 17 alone; a failure in second 200; a 1006 each in 250-254."""
    out: list[ev.Event] = [ev.ConnectionOpened(**at(0.1 + i / 100), conn=f"c{i}") for i in range(8)]
    for s in range(300):
        out.append(ev.Traffic(**at(s + 0.2), conn="c0", msgs_in=100 if s == 17 else 10))
    out.append(ev.DeliveryFailed(**at(200.4), message_id="lost", conn="c1", reason="timeout"))
    out += [ev.ConnectionClosed(**at(250 + i + 0.5), conn=f"c{2 + i}", code=1006) for i in range(5)]
    return sorted(out, key=lambda event: event.mono)


def test_the_span_is_the_shortest_round_one_that_holds_the_history() -> None:
    assert column_span(60, 127) == 1
    assert column_span(300, 127) == 3
    assert column_span(300, 60) == 5
    assert column_span(10**9, 10) == 7200  # beyond the longest span: the newest part of it
    assert [duration(s) for s in (90, 300, 500, 7200, 9000)] == [
        "90 s",
        "5 min",
        "8 min 20 s",
        "2 h",
        "2 h 30 min",
    ]


def test_the_whole_history_fits_and_a_one_second_spike_is_not_averaged_away() -> None:
    timeline = fold(five_minutes()).timeline
    drawn = chart(timeline, 60, END)
    assert drawn.span_s == 5 and len(drawn.columns) == 60
    assert drawn.first <= 1000 < drawn.first + 5  # the session's first second is in the first column
    by_second = {second: drawn.columns[(second - drawn.first) // 5] for second in range(1000, END + 1)}
    assert by_second[1017].msgs == 100  # the busiest second, not the column's mean (28) or sum (140)
    assert by_second[1020].msgs == 10
    assert by_second[1200].failures == 1 and by_second[1199 - 5].failures == 0
    assert sum(sum(c.closes.values()) for c in drawn.columns) == 5
    assert by_second[1000].open == 8 and by_second[1250].open == 8 and by_second[1254].open <= 8
    assert drawn.columns[-1].open == 3 and drawn.open_now == 3


def test_older_minutes_spread_over_narrower_columns_keep_their_counts() -> None:
    """Beyond the ten minutes kept a second at a time, a minute's closes are shared by its columns."""
    events: list[ev.Event] = [ev.ConnectionOpened(**at(0.1 + i / 100), conn=f"c{i}") for i in range(40)]
    length = FINE_SECONDS + 300
    events += [ev.Traffic(**at(s + 0.2), conn="c0", msgs_in=6) for s in range(length)]
    events += [ev.ConnectionClosed(**at(30 + i + 0.5), conn=f"c{i}", code=1006) for i in range(12)]
    slow = (100, 101, 850, 851, 852)  # delivery p95 80 ms: two seconds of an older minute, three recent
    events += [ev.LatencySample(**at(s + 0.3), kind="delivery", ms=80.0, ref=f"m{s}") for s in slow]
    timeline = fold(sorted(events, key=lambda event: event.mono)).timeline
    assert timeline.coarse, "the script must reach past the fine ring"
    drawn = chart(timeline, 100, 1000 + length - 1, p95_limit=50.0)
    assert drawn.span_s == 10
    assert (drawn.over.seconds, drawn.over.minutes) == (3, 1)
    assert drawn.over.first_wall == at(80.0)["wall"]  # the start of the minute from second 1080
    assert sum(sum(c.closes.values()) for c in drawn.columns) == pytest.approx(12)
    assert drawn.first <= 1000  # all of it
    old = drawn.columns[(1100 - drawn.first) // 10]  # in the minute from second 1080, kept whole
    assert old.msgs == pytest.approx(6)  # that minute's mean rate, all that is kept of it
    assert drawn.open_now == 28


def test_an_empty_timeline_draws_empty_columns() -> None:
    drawn = chart(fold([]).timeline, 20, 0)
    assert drawn.span_s == 1 and len(drawn.columns) == 20 and drawn.open_now == 0
