"""The drill-down: Enter opens the cursor row's connection, Esc returns, c copies, e exports — live and
in a replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import at
from textual.pilot import Pilot
from ui_support import ReducerFeed, settle, widget_text

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import fold
from wsmon.replay_feed import ReplayFeed
from wsmon.store import RecordingWriter, new_header
from wsmon.ui.app import WsmonApp
from wsmon.ui.connection_screen import ConnectionScreen, export_path
from wsmon.ui.widgets import ConnectionsTable

EVENTS: list[ev.Event] = [
    ev.ConnectionOpened(**at(1.0), conn="c1", peer="10.0.0.1:1", handshake_ms=8.0),
    ev.ConnectionOpened(**at(2.0), conn="c2", peer="10.0.0.2:2", handshake_ms=9.5),
    ev.Traffic(**at(3.0), conn="c2", msgs_in=4, bytes_in=400),
    ev.LatencySample(**at(3.2), kind="delivery", ms=3.1, ref="m-0", conn="c2", ack_conn="c1"),
    ev.LatencySample(**at(3.4), kind="delivery", ms=8.4, ref="m-2", conn="c2", ack_conn="c1"),
    ev.DeliveryFailed(**at(4.0), message_id="m-1", conn="c2", reason="recipient gone"),
    ev.LogLine(**at(4.5), level="error", text="c2: write \x1b[31mfailed", fields={"conn": "c2"}),
    ev.ConnectionClosed(**at(5.0), conn="c2", code=4000, reason="bye 4000", closed_by="server"),
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


async def _drill(app: WsmonApp, pilot: Pilot[int], tmp_path: Path, toasts: list[str]) -> None:
    """The checks both modes share, from the table with c2 under the cursor."""
    table = app.query_one(ConnectionsTable)
    assert table.cursor_row == "c2"
    await pilot.press("enter")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ConnectionScreen) and screen.conn_id == "c2"
    shown = widget_text(screen.query_one("#conn-summary")) + widget_text(
        screen.query_one("#conn-timeline-box")
    )
    assert "bye 4000" in shown and "4000 Application-defined" in shown
    assert "recipient gone" in shown and "9.5 ms" in shown
    assert "delivered 2 msgs, 3.1–8.4 ms, acked on c1" in shown
    assert "\x1b" not in shown and "failed" in shown  # the log line, made visible
    await pilot.press("c")
    await pilot.pause()
    assert app.clipboard.startswith("connection c2") and "bye 4000" in app.clipboard
    copied = tmp_path / "state" / "wsmon" / "copied.txt"
    assert copied.read_text() == app.clipboard + "\n"
    assert any("copied" in toast for toast in toasts)
    await pilot.press("e", "e")
    await pilot.pause()
    first, second = tmp_path / "wsmon-c2.jsonl", tmp_path / "wsmon-c2-2.jsonl"
    assert first.read_bytes() == second.read_bytes()  # the second export did not overwrite the first
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    kinds = ["open", "traffic", "deliveries", "delivery_failed", "log", "close"]
    assert [line["kind"] for line in lines] == kinds
    assert {line["conn"] for line in lines} == {"c2"}
    assert any(first.name in toast for toast in toasts)
    await pilot.press("escape")
    await pilot.pause()
    assert not isinstance(app.screen, ConnectionScreen)
    assert app.query_one(ConnectionsTable).has_focus


def _toasts(app: WsmonApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    toasts: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **_: toasts.append(message))
    return toasts


async def test_enter_opens_the_cursor_rows_connection_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = ReducerFeed()
    feed.apply(*EVENTS)
    app = WsmonApp(feed)
    toasts = _toasts(app, monkeypatch)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("G")  # c2: closed rows come after the open one
        await _drill(app, pilot, tmp_path, toasts)


async def test_enter_opens_the_cursor_rows_connection_in_a_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "drill.wsmon"
    writer = RecordingWriter(path, new_header(limits=list(DEFAULT_LIMITS)))
    writer.extend(EVENTS)
    writer.close(fold(EVENTS))
    feed = ReplayFeed(path)
    feed.engine.paused = True
    app = WsmonApp(feed)
    toasts = _toasts(app, monkeypatch)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("colon", *"100%", "enter")
        await settle(app, pilot)
        await pilot.press("G")  # c2: closed rows come after the open one
        await _drill(app, pilot, tmp_path, toasts)


async def test_the_drill_down_s_times_follow_z(india: None) -> None:
    feed = ReducerFeed()
    feed.apply(*EVENTS)
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("G", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConnectionScreen)

        def shown() -> tuple[str, str]:
            summary = widget_text(screen.query_one("#conn-summary"))
            return summary, widget_text(screen.query_one("#conn-timeline-box"))

        summary, timeline = shown()
        assert "opened at   2025-06-15 20:36:42.000 IST" in summary  # T0 + 2 s, local (UTC+5:30)
        assert "closed at   2025-06-15 20:36:45.000 IST" in summary
        assert "Timeline (local time, IST" in timeline and "20:36:42.000  " in timeline
        assert "Z" not in summary.replace("Application-defined", "")
        await pilot.press("z")
        await pilot.pause()
        summary, timeline = shown()
        assert "opened at   2025-06-15 15:06:42.000 UTC" in summary
        assert "Timeline (UTC" in timeline and "15:06:42.000  " in timeline and "20:36" not in timeline
        await pilot.press("c")  # the copy stays in ISO 8601 UTC, whatever the screen shows
        assert "2025-06-15T15:06:42.000Z" in app.clipboard


def test_export_names_never_overwrite_and_never_leave_the_directory(tmp_path: Path) -> None:
    assert export_path("../etc/x", tmp_path) == tmp_path / "wsmon-.._etc_x.jsonl"
    (tmp_path / "wsmon-a.jsonl").touch()
    (tmp_path / "wsmon-a-2.jsonl").touch()
    assert export_path("a", tmp_path).name == "wsmon-a-3.jsonl"
