"""The main screen as a picture: a fixed event script through a real Reducer, compared with the SVG
screenshots committed in tests/__snapshots__/ (pytest-textual-snapshot).

The script has fixed times and the dashboard is drawn in UTC, so a picture changes only when what the
dashboard draws does. The main screen is drawn once per shipped theme and once under NO_COLOR, each with
XDG_CONFIG_HOME in a temporary folder: no user theme is loaded and no choice is remembered.
After a deliberate change of the screen, look at the new picture and rewrite them:

    python -m pytest tests/test_ui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from ui_support import ReducerFeed, screen_clock, settle

from wsmon.core import events as ev
from wsmon.themes import builtin_theme_files, dashboard_themes
from wsmon.ui.app import WsmonApp

SIZE = (160, 50)
MIB = 1 << 20


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Failure and log times are drawn in local time: pin it, or the pictures depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def own_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The user's themes and remembered choice would change the picture: a config folder of the test's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


SHIPPED_THEMES = [name.removesuffix(".toml") for name, _ in builtin_theme_files()]


def troubled_session() -> list[ev.Event]:
    """A server with Redis up and PostgreSQL down, clients closing abnormally, a failed delivery, an alert."""
    at = screen_clock()
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="server", kind="server", address="node server.js"),
        ev.TargetAdded(**at(0.0), target="redis", kind="redis", address="redis://127.0.0.1:6379"),
        ev.TargetAdded(**at(0.0), target="postgres", kind="postgres", address="postgresql://127.0.0.1/app"),
        ev.TargetUp(**at(0.1), target="server", detail="pid 4242"),
        ev.TargetUp(**at(0.1), target="redis", detail="7.2.4"),
        ev.TargetDown(**at(0.2), target="postgres", error="connection refused", kind="refused"),
    ]
    for i in range(12):
        out.append(ev.ConnectionOpened(**at(1.0 + i * 0.1), conn=f"c{i}", peer=f"127.0.0.1:{50000 + i}"))
        out.append(ev.LatencySample(**at(1.0 + i * 0.1), kind="connect", ms=8.0 + i))
    for i in range(40):
        out.append(ev.LatencySample(**at(3.0 + i * 0.05), kind="delivery", ms=4.0 + (i % 7)))
    out += [
        ev.ConnectionClosed(**at(6.0), conn="c0", code=1000, closed_by="client", duration_s=5.0),
        ev.ConnectionClosed(**at(6.5), conn="c1", code=1006, closed_by="neither", duration_s=5.4),
        ev.ConnectionClosed(**at(7.0), conn="c2", code=1005, closed_by="client", duration_s=5.8),
        ev.DeliveryFailed(**at(7.2), message_id="msg_17", conn="c1", reason="Connection not open"),
        ev.ProcessSample(
            **at(8.0), target="server", pid=4242, cpu_percent=35.0, rss_bytes=180 * MIB, threads=11
        ),
        ev.LogLine(
            **at(8.5), level="error", text="MessageDeliveryError: Connection not open", source="server"
        ),
        ev.AlertRaised(
            **at(9.0), figure="delivery", level="warn", value=42.0, limit=50.0, message="delivery p95 42 ms"
        ),
    ]
    return out


def breached_session() -> list[ev.Event]:
    """The troubled session with a limit breached too, so a theme's picture shows all three levels."""
    at = screen_clock()
    return [
        *troubled_session(),
        ev.AlertRaised(
            **at(9.5), figure="db", level="breach", value=250.0, limit=200.0, message="db p95 250 ms"
        ),
    ]


def before(app: WsmonApp) -> Callable[[Pilot[Any]], Any]:
    async def draw(pilot: Pilot[Any]) -> None:
        await settle(app, pilot)

    return draw


def test_the_main_screen_of_a_troubled_session(snap_compare: Any) -> None:
    feed = ReducerFeed()
    feed.apply(*troubled_session())
    app = WsmonApp(feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=before(app))


def test_the_main_screen_paused_with_its_help(snap_compare: Any) -> None:
    feed = ReducerFeed()
    feed.apply(*troubled_session())
    app = WsmonApp(feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=before(app), press=["space", "question_mark"])


def test_the_drill_down_of_an_abnormally_closed_connection(snap_compare: Any) -> None:
    feed = ReducerFeed()
    feed.apply(*troubled_session())
    app = WsmonApp(feed)

    async def open_c1(pilot: Pilot[Any]) -> None:
        await settle(app, pilot)
        await pilot.press("G", "k", "enter")  # c2, c1, c0 are the closed rows, newest first: c1
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_c1)


@pytest.mark.parametrize("theme", SHIPPED_THEMES)
@pytest.mark.usefixtures("own_config")
def test_the_main_screen_in_each_theme(snap_compare: Any, theme: str) -> None:
    feed = ReducerFeed()
    feed.apply(*breached_session())
    app = WsmonApp(feed, themes=dashboard_themes(theme))
    assert snap_compare(app, terminal_size=SIZE, run_before=before(app))


@pytest.mark.usefixtures("own_config")
def test_the_main_screen_under_no_color(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")  # Textual reads it when the app is made
    feed = ReducerFeed()
    feed.apply(*breached_session())
    app = WsmonApp(feed, themes=dashboard_themes())
    assert app.no_color
    assert snap_compare(app, terminal_size=SIZE, run_before=before(app))
