"""What the dashboard tests share: a real Reducer as the app's feed, and the screen read back as text."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from helpers import Clock
from rich.console import Console
from textual.widget import Widget

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS, Limit
from wsmon.core.reducer import Reducer
from wsmon.core.state import State
from wsmon.ui.app import WsmonApp


def screen_clock() -> Clock:
    """The dashboard tests' time line: like a live session's, its monotonic clock is far from zero."""
    return Clock(wall0=1_700_000_000.0, mono0=1000.0)


class ReducerFeed:
    """A session in miniature: a core Reducer the test feeds, and the run/stop/pause lifecycle."""

    def __init__(self, limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> None:
        self.reducer = Reducer()
        self._limits = limits
        self._paused = False
        self._stop = asyncio.Event()
        self.stopped = False
        self.run_finished = False

    @property
    def state(self) -> State:
        return self.reducer.state

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    @property
    def title(self) -> str:
        return "test · ws://127.0.0.1:9/"

    @property
    def mode(self) -> str:
        return "live"

    @property
    def paused(self) -> bool:
        return self._paused

    def toggle_pause(self) -> None:
        self._paused = not self._paused

    async def run(self) -> None:
        await self._stop.wait()
        self.run_finished = True

    def stop(self) -> None:
        self.stopped = True
        self._stop.set()

    def apply(self, *events: ev.Event) -> None:
        self.reducer.apply_many(events)


def screen_lines(app: WsmonApp) -> list[str]:
    """The whole screen as plain text, composited the way export_screenshot() does it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text().splitlines()


def widget_text(widget: Widget) -> str:
    """What the screen shows inside the widget's region, border and children included."""
    region = widget.region
    lines = screen_lines(widget.app)  # type: ignore[arg-type]
    return "\n".join(line[region.x : region.right] for line in lines[region.y : region.bottom])


async def settle(app: WsmonApp, pilot: Any) -> None:
    app.refresh_from_state()
    await pilot.pause()
