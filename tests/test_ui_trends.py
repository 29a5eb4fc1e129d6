"""The Trends panel (9): the users' figures over time against their limits, and when the 1006s started;
z shows every wall-clock time on the dashboard in UTC or in local time."""

from __future__ import annotations

from test_trend_columns import five_minutes
from test_trend_series import ABNORMAL_FROM, T0, script
from ui_support import ReducerFeed, screen_lines, settle

from wsmon.core import events as ev
from wsmon.ui.app import WsmonApp
from wsmon.ui.format import wall_clock
from wsmon.ui.trend_columns import chart, duration
from wsmon.ui.widgets import FailuresPanel, LogPanel, TrendsPanel
from wsmon.ui.widgets.trends import PREFIX

FIRST_1006 = T0 + ABNORMAL_FROM + 0.7  # 15:07:20 UTC, 20:37:20 in India (no daylight saving)


async def test_the_trends_panel_shows_when_the_1006s_started(india: None) -> None:
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        feed.apply(*script())
        await settle(app, pilot)
        await pilot.press("9")
        await settle(app, pilot)
        assert app.screen.maximized is app.query_one(TrendsPanel)
        text = "\n".join(screen_lines(app))
        assert "first 1006 (abnormal) 20:37:20 IST" in text, text
        for figure in ("open connections", "messages/s", "delivery p95", "failures/s", "closes abnormal"):
            assert figure in text
        assert "delivery p95 over its 50.0 ms limit for 6 s, from 20:37:00 IST" in text
        await pilot.press("z")
        await settle(app, pilot)
        assert "first 1006 (abnormal) 15:07:20 UTC" in "\n".join(screen_lines(app))
        await pilot.press("0")
        await settle(app, pilot)
        assert not app.query_one(TrendsPanel).display  # only ever shown maximised


async def test_z_switches_the_failures_and_log_times_too(india: None) -> None:
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        at = {"wall": FIRST_1006, "mono": 1000.0}
        feed.apply(
            ev.DeliveryFailed(**at, message_id="m1", conn="c1", reason="timeout"),
            ev.LogLine(**at, level="error", text="boom", source="server"),
        )
        await settle(app, pilot)
        assert "20:37:20" in app.query_one(FailuresPanel).text
        assert "20:37:20" in app.query_one(LogPanel).text
        await pilot.press("z")
        await settle(app, pilot)
        assert "15:07:20" in app.query_one(FailuresPanel).text
        assert "15:07:20" in app.query_one(LogPanel).text


async def test_the_trends_panel_shows_all_the_history_kept_and_says_how_much_a_column_is() -> None:
    """Five minutes in a panel 127 columns wide: 3 s a column, the session's start on screen."""
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        feed.apply(*five_minutes())
        await settle(app, pilot)
        await pilot.press("z", "9")
        await settle(app, pilot)
        panel = app.query_one(TrendsPanel)
        width = panel.size.width - PREFIX
        drawn = chart(feed.state.timeline, width, int(feed.state.last_mono))
        assert drawn.span_s > 1 and drawn.first <= 1000  # the whole session, not its last 127 s
        text = "\n".join(screen_lines(app))
        heading = f"last {duration(drawn.span_s * width)}, {drawn.span_s} s/col, rates its busiest second"
        assert heading in text
        assert wall_clock(feed.state.last_wall - (feed.state.last_mono - drawn.first), utc=True) in text
        assert "first 1006 (abnormal) 15:10:50 UTC" in text
        spike = next(line for line in screen_lines(app) if "messages/s" in line)
        assert spike.count("█") == 1  # the second with 100 messages, in its column, at full height
