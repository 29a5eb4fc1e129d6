"""Layout by priority: at every size the header's target states, the breach lines and the key figures are
whole on the screen; a short terminal drops the least important rows and says how to show them.

Pilot tests at 80×24, 120×40, 160×50 and 200×60, and one in a real terminal (tmux, 80×24) replaying a
recording of the same crowded session.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import wait_until
from layout_script import crowded_session
from rich.console import Console
from textual.containers import VerticalScroll
from textual.widgets import Static
from ui_support import ReducerFeed, screen_lines, settle

from wsmon.core.reducer import Reducer
from wsmon.store import RecordedTarget, RecordingWriter, new_header
from wsmon.ui.app import WsmonApp
from wsmon.ui.layout import hidden_note, rows_to_drop
from wsmon.ui.widgets import LogPanel

# Each target's state, in its full form (`websocket: UP 15s`) or its narrow one (`ws UP 15s`).
TARGET_STATES = (
    r"(websocket:|ws) UP 15s",
    r"server:? UP 15s",
    r"redis:? UP 15s",
    r"postgres:? DOWN 14s \(connection refused\)",
)
BREACHES = (
    "✗ BREACH Message delivery success 87.0 % (limit > 99.90 %) for ",
    "· worst 87.0 % · raised at 87.0 %",
    "✗ BREACH WebSocket connect time 208.0 ms (limit < 100.0 ms) for ",
    "· worst 208.0 ms · raised at 195.0 ms",
)
FIGURES = (
    "connect p95 ✗ 208.0 ms",
    "delivery p95 ✓ 10.0 ms",
    "db p95 —",
    "e2e p95 —",
    "connect ok n = 30, too few to judge",
    "delivery ok ✗ 87.0 %",
    "RSS ✓ 180 MiB",
    "CPU ✓ 35.0 %",
    "conns 27",
    "throughput 0 msg/s",
)


def assert_key_text_whole(lines: list[str]) -> None:
    """Every target's state, breach line and figure on one line of the screen, none of them cut."""
    screen = "\n".join(lines)
    for state in TARGET_STATES:
        assert re.search(state, screen), f"{state!r} not whole on\n{screen}"
    for text in (*BREACHES, *FIGURES):
        assert text in screen, f"{text!r} not whole on\n{screen}"
    top = lines[: next(i for i, line in enumerate(lines) if line.startswith("╭"))]
    assert not any("…" in line for line in top), "\n".join(top)


async def draw(size: tuple[int, int]) -> tuple[list[str], bool]:
    """The screen's lines, and whether it overflowed (which draws its scrollbar beside the panels)."""
    feed = ReducerFeed()
    feed.apply(*crowded_session())
    app = WsmonApp(feed)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.pause()
        return screen_lines(app), app.screen.show_vertical_scrollbar


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 50), (200, 60)])
async def test_target_states_breaches_and_figures_are_whole(size: tuple[int, int]) -> None:
    lines, overflowed = await draw(size)
    assert_key_text_whole(lines)
    assert not overflowed


async def test_a_short_terminal_drops_rows_and_says_how_to_show_them() -> None:
    lines, _ = await draw((80, 24))
    screen = "\n".join(lines)
    assert "Logs hidden · 7 to show" in screen
    assert "hidden · 5 6 8 to show" in screen
    assert "Logs ·" not in screen  # the log panel is not drawn as an empty title


async def test_a_tall_terminal_hides_nothing() -> None:
    lines, _ = await draw((200, 60))
    screen = "\n".join(lines)
    assert "hidden" not in screen
    for title in ("Close codes", "Delivery failures", "Redis", "PostgreSQL", "Logs"):
        assert title in screen
    assert "MessageDeliveryError: Connection not open" in screen


async def test_a_dropped_panel_shows_maximised_with_its_key() -> None:
    feed = ReducerFeed()
    feed.apply(*crowded_session())
    app = WsmonApp(feed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("7")
        await pilot.pause()
        assert app.screen.maximized is app.query_one(LogPanel)
        assert "MessageDeliveryError: Connection not open" in "\n".join(screen_lines(app))
        await pilot.press("2")
        await pilot.pause()
        assert "1006 Abnormal Closure" in "\n".join(screen_lines(app))
        await pilot.press("0")
        await pilot.pause()
        assert app.screen.maximized is None
        assert "Logs hidden · 7 to show" in "\n".join(screen_lines(app))


def write_recording(path: Path) -> None:
    reducer = Reducer()
    header = new_header(
        "attach", targets=[RecordedTarget(name="websocket", kind="websocket", address="ws://h/")]
    )
    with RecordingWriter(path, header) as writer:
        for event in crowded_session():
            reducer.apply(event)
            writer.append(event)
        writer.close(reducer.state)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")
@pytest.mark.timeout(120)
def test_a_real_80x24_terminal_shows_the_key_text_whole(tmp_path: Path) -> None:
    record = tmp_path / "crowded.wsmon"
    write_recording(record)
    session = f"wsmon-layout-{os.getpid()}"
    script = tmp_path / "run.sh"
    script.write_text(
        f"cd {tmp_path} && env -u COLUMNS -u LINES PYTHONPATH={os.environ.get('PYTHONPATH', '')} TZ=UTC "
        f"{sys.executable} -m wsmon replay --speed 16 {record}\n"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "sh", str(script)], check=True
    )
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", "80", "-y", "24"], check=False)
    screen = ""
    try:

        def all_shown() -> bool:
            nonlocal screen
            screen = capture(session)
            return "raised at 195.0 ms" in screen and "conns 27" in screen

        wait_until(all_shown, 60, "the replay's end on screen")
        time.sleep(1.0)  # a frame more, for the widths to settle
        screen = capture(session)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_until(lambda: not alive(session), 30, "the dashboard quitting")
    finally:
        if alive(session):
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
    assert_key_text_whole(lines)
    assert "Logs hidden · 7 to show" in screen, screen


def capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
    ).stdout


def alive(session: str) -> bool:
    return subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0


async def test_help_wraps_at_spaces_on_a_narrow_terminal() -> None:
    feed = ReducerFeed()
    feed.apply(*crowded_session())
    app = WsmonApp(feed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        # Every word of the help as written, rendered wide enough that nothing wraps.
        wide = Console(width=1000, record=True, file=io.StringIO())
        for static in app.screen.query(Static):
            wide.print(static.content)
        words = set(wide.export_text().split())
        box = app.screen.query_one(VerticalScroll).region
        lines = screen_lines(app)[box.y : box.bottom]
        shown = [word for line in lines for word in line[box.x : box.right].strip("│╭╮╰╯─ ").split()]
    assert shown, "no help on screen"
    scrollbar = set("▁▂▃▄▅▆▇█▔▕▏▎▍▌▋▊▉")  # the help box's own scrollbar, drawn inside it
    cut = [word for word in shown if word not in words and not set(word) <= scrollbar]
    assert not cut, f"words cut on the help screen: {cut}"


async def test_rows_dropped_for_room_come_back_when_the_terminal_grows() -> None:
    feed = ReducerFeed()
    feed.apply(*crowded_session())
    app = WsmonApp(feed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "Logs hidden · 7 to show" in "\n".join(screen_lines(app))
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        await pilot.pause()
        lines = screen_lines(app)
        assert "hidden" not in "\n".join(lines)
        assert "MessageDeliveryError: Connection not open" in "\n".join(lines)
        assert_key_text_whole(lines)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        lines = screen_lines(app)
        assert "Logs hidden · 7 to show" in "\n".join(lines)
        assert_key_text_whole(lines)


def test_rows_are_dropped_least_important_first_and_only_as_needed() -> None:
    every = frozenset({"panels", "targets", "logs"})
    assert rows_to_drop(100, every, crowded=False) == ()
    # 7 for the table, 14 + 12 + 8 below it: one row short of room drops only the log.
    assert [row.name for row in rows_to_drop(7 + 14 + 12 + 8 - 1, every, crowded=False)] == ["logs"]
    assert [row.name for row in rows_to_drop(20, every, crowded=True)] == ["logs", "targets"]
    assert [row.name for row in rows_to_drop(10, every, crowded=True)] == ["logs", "targets", "panels"]
    # A row with nothing to show takes no room and is never named as hidden.
    assert [row.name for row in rows_to_drop(7 + 10 + 5, frozenset({"panels", "logs"}), crowded=True)] == []
    assert [row.name for row in rows_to_drop(12, frozenset({"panels", "logs"}), crowded=True)] == [
        "logs",
        "panels",
    ]
    assert (
        hidden_note(rows_to_drop(10, frozenset({"panels", "logs"}), crowded=True))[0]
        == "Logs hidden · 7 to show"
    )
