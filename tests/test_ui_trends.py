"""The Trends panel (9): the users' figures over time against their limits, and when the 1006s started;
z shows every wall-clock time on the dashboard in UTC or in local time."""

from __future__ import annotations

from test_trend_series import ABNORMAL_FROM, T0, script
from ui_support import ReducerFeed, screen_lines, settle

from wsmon.core import events as ev
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import FailuresPanel, LogPanel, TrendsPanel

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
