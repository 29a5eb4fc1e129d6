"""The dashboard, driven by a real Reducer fed with hand-written events, read back from the screen."""

from __future__ import annotations

import asyncio

import pytest
from textual.geometry import Region
from ui_support import ReducerFeed, screen_clock, settle, widget_text

from wsmon.core import events as ev
from wsmon.ui.app import WsmonApp
from wsmon.ui.feed import Feed
from wsmon.ui.widgets import (
    CloseCodesPanel,
    ConnectionsTable,
    FailuresPanel,
    HeaderBar,
    LimitsStrip,
    ResourcesPanel,
)

SIZE = (160, 50)
at = screen_clock()


def test_the_feed_in_these_tests_is_a_feed() -> None:
    assert isinstance(ReducerFeed(), Feed)


async def test_abnormal_close_shows_with_its_name_in_close_codes_and_table() -> None:
    feed = ReducerFeed()
    feed.apply(
        ev.ConnectionOpened(**at(1), conn="c-1", peer="127.0.0.1:5000"),
        ev.ConnectionOpened(**at(2), conn="c-2", peer="127.0.0.1:5001"),
        ev.ConnectionClosed(**at(3), conn="c-1", code=1006, closed_by="neither"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = widget_text(app.query_one(CloseCodesPanel))
        assert "1006" in panel and "Abnormal Closure" in panel
        assert "no close frame" in panel  # the one-line cause
        table = widget_text(app.query_one(ConnectionsTable))
        assert "1006 Abnormal Closure" in table
        assert "1 open · peak 2 · 1 closed kept" in table
        # Open rows come before closed ones.
        assert app.query_one(ConnectionsTable).row_ids == ["c-2", "c-1"]


async def test_delivery_failure_shows_with_its_reason_and_the_success_ratio() -> None:
    feed = ReducerFeed()
    feed.apply(
        *(ev.LatencySample(**at(), kind="delivery", ms=3.0) for _ in range(199)),
        ev.DeliveryFailed(**at(), message_id="msg_42", conn="c-7", reason="Connection not open"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = widget_text(app.query_one(FailuresPanel))
        assert "msg_42" in panel and "c-7" in panel and "Connection not open" in panel
        assert "failed 1" in panel and "success 99.50 %" in panel


async def test_cpu_at_sixty_percent_is_a_breach() -> None:
    feed = ReducerFeed()
    feed.apply(
        *(
            ev.ProcessSample(**at(), target="server", pid=4242, cpu_percent=60.0, rss_bytes=100 << 20)
            for _ in range(5)
        )
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        resources = widget_text(app.query_one(ResourcesPanel))
        assert "CPU 60.0 % of one core  ✗ BREACH" in resources
        assert "RSS 100 MiB  ✓ OK" in resources
        limits = app.query_one(LimitsStrip).text
        assert "CPU ✗ 60.0 %" in limits


async def test_targets_down_show_their_error_and_missing_kinds_show_not_configured() -> None:
    feed = ReducerFeed()
    feed.apply(
        ev.TargetAdded(**at(10), target="server", kind="websocket", address="ws://127.0.0.1:9/"),
        ev.TargetAdded(**at(11), target="pg", kind="postgres", address="postgresql://u:***@h/db"),
        ev.TargetUp(**at(12), target="server"),
        ev.TargetDown(**at(13), target="pg", error="connection refused", kind="refused"),
        ev.Marker(**at(25), text="later"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        header = widget_text(app.query_one(HeaderBar))
        assert "server: UP 13s" in header
        assert "pg: DOWN 12s (connection refused)" in header
        assert "redis: not configured" in header
        assert "postgres: not configured" not in header  # a postgres target exists, though down


async def test_two_thousand_rows_and_scrolling_renders_only_what_is_visible() -> None:
    feed = ReducerFeed()
    feed.apply(
        *(ev.ConnectionOpened(**at(float(i)), conn=f"c-{i:04d}", peer=f"10.0.0.1:{i}") for i in range(2000))
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        assert len(table.row_ids) == 2000
        # Rows plus the count line and the column titles, with slack (1/16 of the rows) so that rows
        # coming and going do not relayout the screen every second.
        assert 2002 + 64 <= table.virtual_size.height <= 2002 + 2 * 125
        assert "c-1999" in widget_text(table)  # newest first
        table.scroll_end(animate=False)
        await pilot.pause()
        text = widget_text(table)
        assert "c-0000" in text and "c-1999" not in text
        # Only what is on screen was ever rendered into the row cache, not 2,000 rows.
        assert len(table._strips) <= 3 * table.size.height


async def test_a_traffic_change_refreshes_only_its_own_line() -> None:
    feed = ReducerFeed()
    feed.apply(*(ev.ConnectionOpened(**at(float(i)), conn=f"c-{i}") for i in range(20)))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        regions: list[Region] = []
        original = table.refresh

        def spy(*args, **kwargs):
            regions.extend(args)
            return original(*args, **kwargs)

        table.refresh = spy  # type: ignore[method-assign]
        table.update_from(feed.state)
        assert regions == []  # nothing changed: nothing refreshed
        feed.apply(ev.Traffic(wall=0.0, mono=1019.0, conn="c-5", msgs_in=3))
        table.update_from(feed.state)
        row = table.row_ids.index("c-5")
        assert regions == [Region(0, 2 + row, table.size.width, 1)]
        await pilot.pause()
        assert "c-5" in widget_text(table)


async def test_filter_narrows_the_table_and_escape_clears_it() -> None:
    feed = ReducerFeed()
    feed.apply(
        ev.ConnectionOpened(**at(), conn="alpha", peer="10.0.0.1:1"),
        ev.ConnectionOpened(**at(), conn="beta", peer="10.0.0.2:1"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", "b", "e", "t")
        table = app.query_one(ConnectionsTable)
        assert table.row_ids == []  # a plain word is a whole token: "bet" is not the id "beta"
        await pilot.press("a")
        assert table.row_ids == ["beta"]
        assert not feed.stopped and not feed.paused  # typing in the filter is not a command
        await pilot.press("escape")
        assert sorted(table.row_ids) == ["alpha", "beta"]


async def test_space_toggles_pause_and_the_header_says_so() -> None:
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert feed.paused
        await pilot.pause()
        assert "PAUSED" in widget_text(app.query_one(HeaderBar))
        await pilot.press("space")
        assert not feed.paused
        await pilot.pause()
        assert "PAUSED" not in widget_text(app.query_one(HeaderBar))


async def test_digits_maximise_a_panel_and_zero_restores() -> None:
    app = WsmonApp(ReducerFeed())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert app.screen.maximized is app.query_one(CloseCodesPanel)
        await pilot.press("0")
        assert app.screen.maximized is None


async def test_q_stops_the_feed_and_waits_for_run_to_finish() -> None:
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert feed.stopped and feed.run_finished
    assert app.return_code == 0


async def test_the_app_exits_when_the_session_ends() -> None:
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        feed._stop.set()  # the session ended by itself (e.g. a replay reached its end)
        await pilot.pause()
        await asyncio.wait_for(_exited(app), timeout=5)


async def _exited(app: WsmonApp) -> None:
    while app.is_running:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("key", ["question_mark"])
async def test_help_lists_the_keys(key: str) -> None:
    app = WsmonApp(ReducerFeed())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await pilot.pause()
        shown = app.screen
        assert type(shown).__name__ == "HelpScreen"
        text = "\n".join(widget_text(w) for w in shown.query("Static"))
        assert "pause" in text and "filter" in text
        await pilot.press("escape")
        assert type(app.screen).__name__ != "HelpScreen"
