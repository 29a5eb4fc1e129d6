"""The Trends panel (9): the users' figures over time against their limits, and when the 1006s started."""

from __future__ import annotations

import time

from test_trend_series import ABNORMAL_FROM, T0, script
from ui_support import ReducerFeed, screen_lines, settle

from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets.trends import TrendsPanel


async def test_the_trends_panel_shows_when_the_1006s_started() -> None:
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        app.utc_times = True
        feed.apply(*script())
        await settle(app, pilot)
        await pilot.press("9")
        await settle(app, pilot)
        panel = app.query_one(TrendsPanel)
        assert app.screen.maximized is panel
        text = "\n".join(screen_lines(app))
        assert "first 1006 (abnormal) 15:07:20 UTC" in text, text
        assert "open connections" in text and "delivery p95" in text and "failures/s" in text
        assert "messages/s" in text
        await pilot.press("z")
        await settle(app, pilot)
        local = time.strftime("%H:%M:%S %Z", time.localtime(T0 + ABNORMAL_FROM + 0.7))
        assert f"first 1006 (abnormal) {local}" in "\n".join(screen_lines(app))
