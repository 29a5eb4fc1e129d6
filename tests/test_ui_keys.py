"""Keys and commands of the live dashboard: the row cursor (j/k, g g, G, pages, mouse), s / S sorting,
the help generated from the bindings, and wsmon's commands in the ctrl+p palette."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.geometry import Region
from ui_support import ReducerFeed, screen_clock, settle, widget_text

from wsmon.core import events as ev
from wsmon.replay_feed import ReplayFeed
from wsmon.session import Session
from wsmon.store import RecordingReader
from wsmon.ui.app import MARKER_TEXT, WsmonApp
from wsmon.ui.help_screen import HelpScreen, declared_bindings
from wsmon.ui.seek_screen import MarkerScreen
from wsmon.ui.widgets import CloseCodesPanel, ConnectionsTable, HeaderBar, LimitsStrip
from wsmon.ui.widgets.connections_table import DOUBLE_PRESS_S, FIXED_LINES

SIZE = (160, 50)
at = screen_clock()


def five_connections() -> ReducerFeed:
    """c-0 … c-4 opened a second apart (shown newest first); c-1 closed 1006, c-3 busy."""
    feed = ReducerFeed()
    feed.apply(
        *(ev.ConnectionOpened(**at(float(i)), conn=f"c-{i}", peer=f"10.0.0.{i}:4100{i}") for i in range(5)),
        ev.Traffic(**at(6.0), conn="c-3", msgs_in=7, msgs_out=2),
        ev.ConnectionClosed(**at(7.0), conn="c-1", code=1006, closed_by="neither"),
    )
    return feed


async def test_j_k_arrows_g_g_and_shift_g_move_the_row_cursor() -> None:
    app = WsmonApp(five_connections())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        assert table.row_ids == ["c-4", "c-3", "c-2", "c-0", "c-1"]
        assert table.cursor_row == "c-4"
        await pilot.press("j", "j")
        assert table.cursor_row == "c-2"
        await pilot.press("k")
        assert table.cursor_row == "c-3"
        await pilot.press("down", "down", "down", "down")
        assert table.cursor_row == "c-1"  # the last row, and no further
        await pilot.press("up")
        assert table.cursor_row == "c-0"
        await pilot.press("G")
        assert table.cursor_row == "c-1"
        await pilot.press("g", "g")
        assert table.cursor_row == "c-4"
        await pilot.press("end")
        assert table.cursor_row == "c-1"
        await pilot.press("home")
        assert table.cursor_row == "c-4"
        await pilot.press("pagedown")
        assert table.cursor_row == "c-1"


async def test_a_single_g_does_nothing_and_two_slow_ones_do_not_go_to_the_top() -> None:
    app = WsmonApp(five_connections())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        await pilot.press("G", "g")
        assert table.cursor_row == "c-1"
        await pilot.pause(DOUBLE_PRESS_S + 0.2)
        await pilot.press("g")
        assert table.cursor_row == "c-1"  # the first g was too long ago
        await pilot.press("g")
        assert table.cursor_row == "c-4"


async def test_the_cursor_stays_on_its_connection_when_rows_move_and_a_click_moves_it() -> None:
    feed = five_connections()
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        await pilot.press("j")
        assert table.cursor_row == "c-3"
        feed.apply(ev.ConnectionOpened(**at(8.0), conn="c-5", peer="10.0.0.5:1"))  # a new top row
        await settle(app, pilot)
        assert table.row_ids[0] == "c-5" and table.cursor_row == "c-3"
        # The border, then the count line and the titles: the third row is at y = 1 + FIXED_LINES + 2.
        await pilot.click(ConnectionsTable, offset=(5, 1 + FIXED_LINES + 2))
        assert table.cursor_row == table.row_ids[2]


async def test_moving_the_cursor_repaints_only_the_two_lines_it_leaves_and_enters() -> None:
    app = WsmonApp(five_connections())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        regions: list[Region] = []
        original = table.refresh

        def spy(*args: Any, **kwargs: Any) -> Any:
            regions.extend(args)
            return original(*args, **kwargs)

        table.refresh = spy  # type: ignore[method-assign]
        table.action_cursor(2)
        assert regions == [
            Region(0, FIXED_LINES, table.size.width, 1),
            Region(0, FIXED_LINES + 2, table.size.width, 1),
        ]


async def test_s_cycles_the_sort_column_and_shift_s_reverses_it_and_the_titles_say_so() -> None:
    app = WsmonApp(five_connections())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        await pilot.press("s")
        await pilot.pause()
        assert table.sort_title == "id ▲" and table.row_ids == ["c-0", "c-1", "c-2", "c-3", "c-4"]
        titles = widget_text(table).splitlines()[2]
        assert "id▲" in titles and "sorted by id ▲" in widget_text(table)
        await pilot.press("S")
        await pilot.pause()
        assert table.sort_title == "id ▼" and table.row_ids == ["c-4", "c-3", "c-2", "c-1", "c-0"]
        assert "id▼" in widget_text(table).splitlines()[2]
        await pilot.press("s", "s", "s", "s")  # peer, state, age, msgs in
        await pilot.pause()
        assert table.sort_title == "msgs in ▼"
        assert "▼msgs in" in widget_text(table).splitlines()[2]
        # c-3 has the most; the rest tie at 0 and keep the default order (open newest first, then closed).
        assert table.row_ids == ["c-3", "c-4", "c-2", "c-0", "c-1"]
        await pilot.press(*"ssss")  # msgs out, last close, closed by, then the default order
        await pilot.pause()
        assert table.sort_title == "" and table.row_ids == ["c-4", "c-3", "c-2", "c-0", "c-1"]
        assert "▲" not in widget_text(table).splitlines()[2] and "▼" not in widget_text(table).splitlines()[2]


async def test_the_sorted_order_holds_across_refreshes() -> None:
    feed = five_connections()
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        await pilot.press("s", "s", "s")  # state: ties everywhere
        order = table.row_ids
        assert order == ["c-4", "c-3", "c-2", "c-0", "c-1"]
        for second in range(9, 15):
            feed.apply(ev.Traffic(**at(float(second)), conn="c-0", msgs_in=1))
            await settle(app, pilot)
            assert table.row_ids == order


async def test_help_lists_every_binding_of_the_app_and_the_table() -> None:
    app = WsmonApp(five_connections())
    async with app.run_test(size=(200, 80)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = widget_text(app.screen.query_one("VerticalScroll"))
        for binding in (*declared_bindings(WsmonApp), *declared_bindings(ConnectionsTable)):
            assert binding.description in text, binding
            assert app.get_key_display(binding) in text, binding
        for term in ("◆", "tap:", "closed kept", "neither", "BREACH", "WARN", "5-sample mean", "✓ ▲ ✗"):
            assert term in text
        assert "g g" in text and ":" in text and "Seek" in text


class AppWithAnotherKey(WsmonApp):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "bell", "Ring the bell", tooltip="a test's own key")
    ]


async def test_help_is_generated_from_the_bindings() -> None:
    app = AppWithAnotherKey(ReducerFeed())
    async with app.run_test(size=(200, 80)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        text = widget_text(app.screen.query_one("VerticalScroll"))
        assert "Other" in text and "Ring the bell — a test's own key" in text
        assert "Quit" in text  # the app's own bindings are still there


async def test_wsmon_commands_are_in_the_palette_by_name() -> None:
    app = WsmonApp(five_connections())
    async with app.run_test(size=SIZE) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for name in (
            "Panel: Close codes",
            "Panel: Logs",
            "Pause / resume",
            "Filter connections",
            "Theme: dark",
        ):
            assert name in titles
        assert "Seek (replay)" not in titles  # replay only
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Panel: Close codes")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.maximized is app.query_one(CloseCodesPanel)
        await pilot.press("ctrl+p", *"Pause / resume")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.feed.paused


async def test_a_toast_when_a_target_goes_down_or_comes_back_and_when_a_limit_is_breached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed = ReducerFeed()
    feed.apply(
        ev.TargetAdded(**at(0.0), target="redis", kind="redis", address="redis://127.0.0.1:6379"),
        ev.TargetUp(**at(0.1), target="redis", detail="7.2.4"),
    )
    app = WsmonApp(feed)
    toasts: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        monkeypatch.setattr(app, "notify", lambda message, **_: toasts.append(message))
        await settle(app, pilot)
        assert toasts == []  # what was already so when the dashboard opened is not news
        feed.apply(ev.TargetDown(**at(1.0), target="redis", error="connection refused", kind="refused"))
        await settle(app, pilot)
        assert toasts == ["redis DOWN: connection refused"]
        feed.apply(ev.TargetUp(**at(2.0), target="redis", detail="7.2.4"))
        await settle(app, pilot)
        assert toasts[-1] == "redis is back UP"
        feed.apply(
            ev.AlertRaised(
                **at(3.0), figure="cpu_percent", level="breach", value=80.0, limit=50.0, message="CPU 80 %"
            )
        )
        await settle(app, pilot)
        assert toasts[-1] == "BREACH CPU 80 %"
        await settle(app, pilot)
        assert len(toasts) == 3  # once, not every frame


async def test_export_view_writes_the_rows_as_filtered_and_sorted_and_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = WsmonApp(five_connections())
    toasts: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        monkeypatch.setattr(app, "notify", lambda message, **_: toasts.append(str(message)))
        await pilot.press("s", "s")  # by peer, A to Z
        await pilot.press("slash", *"state:open", "enter")
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        assert table.row_ids == ["c-0", "c-2", "c-3", "c-4"]  # not the default order, c-1 filtered out
        await pilot.press("ctrl+p", *"Export view")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        [path] = tmp_path.glob("wsmon-view-*.jsonl")
        assert path.name in toasts[-1] and "4 rows" in toasts[-1]
        view, *rows = (json.loads(line) for line in path.read_text().splitlines())
        assert [row["id"] for row in rows] == table.row_ids
        shown = widget_text(table).splitlines()
        for row in rows:  # each line as the screen shows it, cell for cell
            line = next(line for line in shown if f" {row['id']} " in line)
            cells = [row[key] for key in ("id", "peer", "state", "age", "msgs_in", "msgs_out")]
            assert line.split()[1 : 1 + len(cells)] == cells, (line, row)
        assert rows[2]["msgs_in"] == "7" and rows[2]["own"] is False
        assert view["kind"] == "view" and view["filter"] == "state:open" and view["sort"] == "peer ▲"
        assert view["summary"] == table.summary and view["mode"] == "live"
        assert view["header"] == app.query_one(HeaderBar).text.splitlines()
        strip = app.query_one(LimitsStrip).text
        assert view["limits"] and all(
            f"{f['label']} {f['shown']}" in strip.replace("✓ ", "") for f in view["limits"]
        )
        await pilot.press("ctrl+p", *"Export view")  # again, the same second: a new file, the first kept
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert len(list(tmp_path.glob("wsmon-view-*.jsonl"))) == 2


async def test_m_in_a_live_session_puts_a_marker_into_its_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "live.wsmon"
    session = Session([], title="test · markers", record=path)
    app = WsmonApp(session)
    toasts: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        monkeypatch.setattr(app, "notify", lambda message, **_: toasts.append(str(message)))
        assert app.check_action("marker", ()) and not app.check_action("bookmark", ())
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MarkerScreen)
        await pilot.press(*"deploy 42", "enter")
        await pilot.pause()
        assert [m.text for m in session.state.markers] == ["deploy 42"]
        assert toasts[-1].endswith(": deploy 42")
        await pilot.press("m", "enter")  # nothing typed: the default text
        await pilot.press("m", "escape")  # cancelled: no marker
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Add marker" in titles and "Add marker: a bookmark (replay)" not in titles
        await pilot.press("ctrl+p", *"Add marker")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MarkerScreen)
        await pilot.press(*"from the palette", "enter")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    texts = [event.text for event in RecordingReader(path).iter_events() if isinstance(event, ev.Marker)]
    assert texts == ["deploy 42", MARKER_TEXT, "from the palette"]
    assert [text for _, text in ReplayFeed(path).markers()] == texts  # a replay's palette lists them


async def test_m_is_no_marker_where_the_feed_takes_none() -> None:
    app = WsmonApp(ReducerFeed())  # a feed that is not a live session (as `replay LOG --follow`)
    async with app.run_test(size=SIZE) as pilot:
        assert not app.check_action("marker", ())
        await pilot.press("m")
        await pilot.pause()
        assert not isinstance(app.screen, MarkerScreen)
        assert "Add marker" not in [command.title for command in app.get_system_commands(app.screen)]
