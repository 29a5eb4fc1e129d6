"""Replay in the dashboard: n / N jump between anomalies, : seeks, , . step an event — on a real recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import at

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import fold
from wsmon.replay_feed import ReplayFeed, parse_seek
from wsmon.store import RecordingWriter, new_header
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import ConnectionsTable, HeaderBar

EVENTS: list[ev.Event] = [
    ev.ConnectionOpened(**at(1.0), conn="c1", peer="10.0.0.1:1"),
    ev.ConnectionOpened(**at(2.0), conn="c2", peer="10.0.0.1:2"),
    ev.ConnectionClosed(**at(10.0), conn="c1", code=1000, closed_by="client"),  # normal: not an anomaly
    ev.ConnectionClosed(**at(20.0), conn="c2", code=1006, closed_by="neither"),
    ev.Marker(**at(25.0), text="half way"),
    ev.DeliveryFailed(**at(30.0), message_id="msg_9", reason="Connection not open"),
    ev.Marker(**at(40.0), text="the end"),
]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "keys.wsmon"
    writer = RecordingWriter(path, new_header(limits=list(DEFAULT_LIMITS)))
    writer.extend(EVENTS)
    writer.close(fold(EVENTS))
    return path


def test_parse_seek_understands_percent_minutes_and_seconds() -> None:
    assert parse_seek("50%", 40.0) == 20.0
    assert parse_seek("1:30", 400.0) == 90.0
    assert parse_seek("90s", 400.0) == 90.0 and parse_seek(" 12 ", 400.0) == 12.0
    with pytest.raises(ValueError, match="expected 50%, 1:30 or 90s"):
        parse_seek("soon", 40.0)


async def test_n_and_shift_n_jump_between_anomalies_and_colon_seeks(recording: Path) -> None:
    feed = ReplayFeed(recording)
    feed.engine.paused = True
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("n")
        assert feed.engine.position == 4  # the 1006 close, not the normal 1000 before it
        app.refresh_from_state()
        await pilot.pause()
        header = app.query_one(HeaderBar).text
        assert "REPLAY" in header and "57 %" in header  # 4 of 7 events
        assert feed.state.close_codes == {1000: 1, 1006: 1}
        await pilot.press("n")
        assert feed.engine.position == 6 and feed.state.delivery_failed == 1
        await pilot.press("n")
        assert feed.engine.position == 6  # nothing later: it stays, and says so
        await pilot.press("N")
        assert feed.engine.position == 4
        await pilot.press("colon")
        await pilot.press(*"75%", "enter")
        await pilot.pause()
        assert feed.engine.position == 6  # 30 s of 1..40 s: everything up to the failure
        await pilot.press("comma")  # one event back (← / → step by time: tests/test_replay_time.py)
        assert feed.engine.position == 5
        await pilot.press("q")


async def test_the_table_keys_and_the_palette_work_in_a_replay(recording: Path) -> None:
    feed = ReplayFeed(recording)
    feed.engine.paused = True
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("n")  # to the 1006 close: both connections are in the table
        app.refresh_from_state()
        await pilot.pause()
        table = app.query_one(ConnectionsTable)
        assert table.row_ids == ["c2", "c1"]  # the most recently closed first
        assert table.cursor_row == "c2"
        await pilot.press("j")
        assert table.cursor_row == "c1"
        await pilot.press("k")
        assert table.cursor_row == "c2"
        await pilot.press("G")
        assert table.cursor_row == "c1"
        await pilot.press("g", "g")
        assert table.cursor_row == "c2"
        await pilot.press("s")
        assert table.sort_title == "id ▲" and table.row_ids == ["c1", "c2"]
        await pilot.press("S")
        assert table.sort_title == "id ▼" and table.row_ids == ["c2", "c1"]
        await pilot.press("slash", *"code:1006", "enter")
        assert table.row_ids == ["c2"]
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Seek (replay)" in titles and "Previous anomaly (replay)" in titles
        await pilot.press("ctrl+p", *"Next anomaly (replay)")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert feed.engine.position == 6
        await pilot.press("q")


async def test_export_view_and_add_marker_in_a_replay(
    recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export view writes the replay's rows as shown; m and the palette's Add marker are bookmarks here."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    feed = ReplayFeed(recording)
    feed.engine.paused = True
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("n")  # the 1006 close
        app.refresh_from_state()
        await pilot.pause()
        assert not app.check_action("marker", ())  # a recording is not written to: m is the bookmark
        await pilot.press("ctrl+p", *"Export view")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        [path] = out.glob("wsmon-view-*.jsonl")
        view, *rows = (json.loads(line) for line in path.read_text().splitlines())
        assert view["mode"] == "replay" and view["at"] == "2025-06-15T15:07:00.000Z"  # T0 + 20 s
        assert [row["id"] for row in rows] == app.query_one(ConnectionsTable).row_ids == ["c2", "c1"]
        assert rows[0]["last_close"].startswith("1006") and rows[0]["closed_by"] == "neither"
        await pilot.press("m")
        await pilot.pause()
        assert len(feed.bookmarks()) == 1
        await pilot.press("n")
        await pilot.press("ctrl+p", *"Add marker: a bookmark")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert len(feed.bookmarks()) == 2
        await pilot.press("q")


async def test_the_recording_s_markers_are_in_the_palette_and_seek_there(recording: Path) -> None:
    feed = ReplayFeed(recording)
    feed.engine.paused = True
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("z")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "marker 15:07:05 UTC: half way" in titles and "marker 15:07:20 UTC: the end" in titles
        await pilot.press("ctrl+p", *"marker 15:07:05")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert feed.engine.position == 5 and feed.paused  # just after the marker "half way"
        assert [marker.text for marker in feed.state.markers] == ["half way"]
        await pilot.press("q")
