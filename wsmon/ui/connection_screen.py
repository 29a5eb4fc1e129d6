"""The drill-down: Enter on a connections-table row opens this screen with that connection's story.

Its summary (core.story.summary) and its timeline (State.timelines, the newest entries the reducer
keeps), each entry with its wall-clock time, in local time or UTC as ``z`` chooses for the whole
dashboard (the summary's times too; what ``c`` copies and ``e`` writes stays in UTC ISO 8601). It
reads the same State as the dashboard, so it follows a live session and a replay alike.

`c` copies the summary (OSC 52) and also writes it to ``$XDG_STATE_HOME/wsmon/copied.txt`` (default
``~/.local/state/wsmon/``), because a terminal that ignores OSC 52 says nothing; `e` writes the
timeline as JSON Lines to ``wsmon-<conn>.jsonl`` in the current directory, never over an existing file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from wsmon.core import story
from wsmon.core.sanitize import visible
from wsmon.core.state import State
from wsmon.ui.exports import new_path, write_new
from wsmon.ui.format import shows_utc, wall_clock_ms, zone_name

COPIED_FILE = "copied.txt"
# The summary's times as core.wallclock.iso_utc writes them, shown in the zone z chooses.
_ISO_UTC = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\b")


def state_dir() -> Path:
    """Where wsmon keeps what a user may want back later (XDG base directory spec)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "wsmon"


def export_path(conn_id: str, directory: Path) -> Path:
    """``wsmon-<conn>.jsonl``, or ``wsmon-<conn>-2.jsonl`` … when that exists."""
    return new_path(directory, f"wsmon-{conn_id[:80]}")


def in_zone(text: str, utc: bool) -> str:
    """Every ISO 8601 UTC time in ``text`` as a date and time in the zone z chooses."""

    def shown(match: re.Match[str]) -> str:
        moment = datetime.fromisoformat(match.group(0))
        return wall_clock_ms(moment.timestamp(), utc, date=True)

    return _ISO_UTC.sub(shown, text)


class ConnectionScreen(Screen[None]):
    """One connection's summary and timeline; Esc returns to the dashboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", tooltip="return to the dashboard"),
        Binding("c", "copy", "Copy summary", tooltip="copy the summary (OSC 52; also written to a file)"),
        Binding("e", "export", "Export", tooltip="write this connection's events as JSON Lines"),
    ]

    DEFAULT_CSS = """
    ConnectionScreen {
        & #conn-summary { border: round $primary-darken-1; height: auto; padding: 0 1; }
        & #conn-timeline-box { border: round $primary-darken-1; height: 1fr; }
        & #conn-timeline { padding: 0 1; }
    }
    """

    def __init__(self, conn_id: str, state: Callable[[], State]) -> None:
        super().__init__()
        self.conn_id = conn_id
        self._state = state
        self._shown: tuple[int, bool] | None = None  # the State's seq and the zone last drawn

    def compose(self) -> ComposeResult:
        yield Static(id="conn-summary", markup=False)
        with VerticalScroll(id="conn-timeline-box"):
            yield Static(id="conn-timeline", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conn-summary").border_title = f"Connection {visible(self.conn_id)}"
        self.refresh_from_state()
        self.set_interval(0.5, self.refresh_from_state)

    @property
    def summary_text(self) -> str:
        summary = story.summary(self._state(), self.conn_id)
        return visible(in_zone(summary, shows_utc(self)), keep_newlines=True)

    @property
    def timeline_text(self) -> str:
        entries = self._state().timelines.get(self.conn_id, [])
        if not entries:
            return "no events kept for this connection"
        utc = shows_utc(self)
        return "\n".join(
            f"{wall_clock_ms(entry.wall, utc)}  {visible(story.describe(entry))}" for entry in entries
        )

    def refresh_from_state(self) -> None:
        state = self._state()
        utc = shows_utc(self)
        if (state.seq, utc) == self._shown:
            return
        self._shown = (state.seq, utc)
        entries = state.timelines.get(self.conn_id)
        zone = zone_name(entries[0].wall if entries else state.last_wall, utc)
        self.query_one("#conn-timeline-box").border_title = f"Timeline ({zone}, z: local / UTC)"
        self.query_one("#conn-summary", Static).update(self.summary_text)
        self.query_one("#conn-timeline", Static).update(self.timeline_text)

    def action_copy(self) -> None:
        text = story.summary(self._state(), self.conn_id)
        self.app.copy_to_clipboard(text)
        path = state_dir() / COPIED_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            self.notify(visible(f"copied (OSC 52); could not also write {path}: {exc}"), markup=False)
            return
        self.notify(visible(f"copied (OSC 52); also in {path}"), timeout=4, markup=False)

    def action_export(self) -> None:
        path = export_path(self.conn_id, Path.cwd())
        problem = write_new(path, story.json_lines(self._state(), self.conn_id))
        if problem is not None:
            self.notify(visible(f"export failed: {problem}"), severity="error", timeout=6, markup=False)
            return
        self.notify(visible(f"exported to {path}"), timeout=4, markup=False)


__all__ = ["ConnectionScreen", "export_path", "state_dir"]
