"""What the dashboard tests share: a real Reducer as the app's feed, and the screen read back as text."""

from __future__ import annotations

import asyncio
import html
import io
import re
from typing import Any

from helpers import Clock
from rich.cells import cell_len
from rich.console import Console
from textual.app import App
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

    @property
    def notice(self) -> str:
        return ""

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


# A run of text in Rich's SVG export: its x in cells * 12.2 (Rich draws a cell 0.61 of a 20-unit font), its
# line in the clip path's name, its text HTML-escaped with spaces as &#160;. Runs of spaces are not drawn.
_SVG_TEXT = re.compile(
    r'<text class="[^"]*" x="([0-9.e+]+)" y="[^"]*" textLength="[^"]*" '
    r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>'
)
_SVG_CELL = 20 * 0.61


def screen_lines(app: App[Any]) -> list[str]:
    """The whole screen as plain text, read back from Textual's public SVG screenshot.

    Textual has no public text export; its SVG places every run of text at its cell, so the lines come
    back cell for cell, as the terminal shows them.
    """
    width, height = app.size
    lines: list[list[str]] = [[] for _ in range(height)]
    filled = [0] * height  # cells written so far on each line
    for x, y, escaped in _SVG_TEXT.findall(app.export_screenshot()):
        row, column = int(y), round(float(x) / _SVG_CELL)
        # A line's last run carries its line break, which takes no cell.
        text = html.unescape(escaped.replace("&#160;", " ")).replace("\n", "")
        lines[row].append(" " * (column - filled[row]) + text)
        filled[row] = column + cell_len(text)
    return ["".join(parts) + " " * (width - cells) for parts, cells in zip(lines, filled, strict=True)]


def terminal_bytes(app: WsmonApp) -> str:
    """The screen as the bytes a true-colour terminal would be sent: text, SGR styles and cursor moves.

    The one private call in the tests: Textual's only public export, the SVG screenshot, keeps the text
    and its styles but not the escape sequences, which are what a test of hostile text must see.
    export_screenshot() renders this same compositor update, so the bytes are the screen's.
    """
    width, height = app.size
    out = io.StringIO()
    console = Console(width=width, height=height, file=out, force_terminal=True, color_system="truecolor")
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return out.getvalue()


def widget_text(widget: Widget) -> str:
    """What the screen shows inside the widget's region, border and children included."""
    region = widget.region
    lines = screen_lines(widget.app)
    return "\n".join(line[region.x : region.right] for line in lines[region.y : region.bottom])


async def settle(app: WsmonApp, pilot: Any) -> None:
    app.refresh_from_state()
    await pilot.pause()
