"""The replay's actions and palette commands: stepping by event or by span, bookmarks, the recording's
markers, anomalies, seek and speed. A base class of the dashboard (ui/app.py), whose bindings call
them; each does nothing when the feed is not a replay (``_replay`` is None).
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, SystemCommand

from wsmon.core.sanitize import visible
from wsmon.ui.feed import ReplayControls
from wsmon.ui.format import wall_clock
from wsmon.ui.seek_screen import SeekScreen


class ReplayActions(App[int]):
    """What the replay keys do; the dashboard sets ``_replay`` and ``utc_times`` and draws the frames."""

    _replay: ReplayControls | None = None
    utc_times: bool = False

    def refresh_from_state(self, *, figures: bool = True, logs: bool = True) -> None:
        """Draw a frame now (the dashboard's): after a step the screen must not wait for the timer."""
        raise NotImplementedError

    def action_step(self, n: int) -> None:
        if self._replay is not None:
            self._replay.step(n)
            self.refresh_from_state()

    def action_step_time(self, direction: int) -> None:
        if self._replay is not None:
            self._replay.step_time(direction)
            self.refresh_from_state()

    def action_span(self, direction: int) -> None:
        if self._replay is not None:
            self._replay.change_span(direction)
            self.refresh_from_state()

    def action_bookmark(self) -> None:
        if self._replay is None:
            return
        wall, warning = self._replay.add_bookmark()
        if warning is None:
            self.notify(f"bookmark {wall_clock(wall, self.utc_times)}", timeout=3)
        else:
            self.notify(visible(warning), severity="warning", timeout=6, markup=False)
        self.refresh_from_state()

    def action_next_bookmark(self, direction: int) -> None:
        if self._replay is None:
            return
        wall = self._replay.next_bookmark(direction)
        later = "later" if direction > 0 else "earlier"
        self.notify(
            f"bookmark {wall_clock(wall, self.utc_times)}" if wall is not None else f"no {later} bookmark",
            timeout=3,
        )
        self.refresh_from_state()

    def _goto_bookmark(self, index: int) -> None:
        if self._replay is not None:
            self._replay.goto_bookmark(index)
            self.refresh_from_state()

    def _goto_marker(self, index: int) -> None:
        if self._replay is not None:
            self._replay.goto_marker(index)
            self.refresh_from_state()

    def action_anomaly(self, direction: int) -> None:
        """Jump to the next (1) or previous (-1) abnormal close, delivery failure, alert or outage."""
        if self._replay is None:
            return
        label = self._replay.next_anomaly(direction)
        self.notify(label or ("no later anomaly" if direction > 0 else "no earlier anomaly"), timeout=4)
        self.refresh_from_state()

    def action_seek(self) -> None:
        replay = self._replay
        if replay is None:
            return

        def done(text: str | None) -> None:
            if not text:
                return
            try:
                replay.seek_text(text)
            except ValueError as exc:
                self.notify(str(exc), severity="error", timeout=4)
            self.refresh_from_state()

        self.push_screen(SeekScreen(), done)

    def action_faster(self) -> None:
        if self._replay is not None:
            self._replay.faster()
            self.refresh_from_state()

    def action_slower(self) -> None:
        if self._replay is not None:
            self._replay.slower()
            self.refresh_from_state()

    def replay_commands(self) -> Iterable[SystemCommand]:
        """The palette's replay commands: none outside a replay."""
        if self._replay is None:
            return
        yield SystemCommand("Seek (replay)", ": — 50%, 1:30 or 90s", self.action_seek)
        yield SystemCommand("Next anomaly (replay)", "n", lambda: self.action_anomaly(1))
        yield SystemCommand("Previous anomaly (replay)", "N", lambda: self.action_anomaly(-1))
        yield SystemCommand(
            "Add marker: a bookmark (replay)",
            "m — this moment, kept beside the recording",
            self.action_bookmark,
        )
        for index, wall in enumerate(self._replay.bookmarks()):
            yield SystemCommand(
                f"bookmark {wall_clock(wall, self.utc_times)}",
                "seek there (b / B: next / previous)",
                lambda index=index: self._goto_bookmark(index),
            )
        for index, (wall, text) in enumerate(self._replay.markers()):
            yield SystemCommand(
                visible(f"marker {wall_clock(wall, self.utc_times)}: {text}"),
                "seek there (a test suite's marker, or m on a live dashboard)",
                lambda index=index: self._goto_marker(index),
            )
