"""Following a recording that another process is writing, as a Feed for the dashboard.

`wsmon replay --follow FILE`, and every browser viewer of `wsmon serve`, watch one session through the
recording it writes: the feed starts at the recording's latest State (its nearest keyframe, then a fold
of the events after it) and then, every ``poll_s``, applies the batches the writer committed since. The
writer commits every half second (RecordingWriter.flush_interval_s), so a follower is at most about
that much behind the session, and every follower shows the same State for the same events.

Going back (pause, ←, n, :, a bookmark) works as in a replay and leaves the live edge: the header says
REPLAY, the recording goes on growing underneath, and space returns to the latest State. Once the
writer has closed the recording (the meta row its close() writes) the notice says it ended; a writer
that stops committing without closing (killed, or a session with nothing to say) shows as "no new
events for N s" instead, since a follower cannot tell the two apart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from wsmon.core.limits import Limit
from wsmon.replay_feed import ReplayFeed

POLL_S = 0.25  # half the writer's flush interval: a committed batch shows within a frame or two
QUIET_S = 5.0  # a live session commits several times a second; this long without a batch is news


class FollowFeed(ReplayFeed):
    """A ReplayFeed whose recording grows; at its live edge unless the user went back."""

    def __init__(
        self,
        path: Path,
        *,
        limits: tuple[Limit, ...] | None = None,
        poll_s: float = POLL_S,
        quiet_s: float = QUIET_S,
    ) -> None:
        super().__init__(path, limits=limits)
        self.poll_s = poll_s
        self.quiet_s = quiet_s
        recorded = self.reader.header.extra.get("title")
        self.title = f"{recorded if isinstance(recorded, str) and recorded else path.name} (shared)"
        self.engine.paused = True  # the engine's clock never runs: committed batches are applied as they come
        self._following = True
        self._grew_at = time.monotonic()
        self._ended = self._writer_gone()
        self.engine.seek_seq(self.reader.event_count)

    # --- where the viewer is: at the live edge, or back in the recording --------------------------

    @property
    def following(self) -> bool:
        return self._following

    @property
    def mode(self) -> str:
        return "live" if self._following else "replay"

    @property
    def paused(self) -> bool:
        return not self._following

    def toggle_pause(self) -> None:
        """Space: freeze here (the recording still grows), or go back to the latest State."""
        if self._following:
            self._following = False
        else:
            self.go_live()

    def go_live(self) -> None:
        self._following = True
        self.engine.catch_up()

    def _leave(self) -> None:
        self._following = False

    def step(self, n: int) -> None:
        self._leave()
        super().step(n)

    def step_time(self, direction: int) -> None:
        self._leave()
        super().step_time(direction)

    def next_anomaly(self, direction: int) -> str | None:
        self._leave()
        return super().next_anomaly(direction)

    def seek_text(self, text: str) -> None:
        self._leave()
        super().seek_text(text)

    def goto_bookmark(self, index: int) -> None:
        self._leave()
        super().goto_bookmark(index)

    # --- what the header says ---------------------------------------------------------------------

    @property
    def notice(self) -> str:
        if self._ended:
            return "ended: the session closed its recording"
        quiet = time.monotonic() - self._grew_at
        if quiet >= self.quiet_s:
            return f"no new events for {quiet:.0f} s"
        return ""

    @property
    def ended(self) -> bool:
        return self._ended

    def _writer_gone(self) -> bool:
        # Nothing had it open when it was opened (no -wal): nothing will add to it either.
        return self.reader.closed_wall() is not None or not self.reader.opened_while_written

    # --- following --------------------------------------------------------------------------------

    def poll(self) -> int:
        """Look for batches committed since; at the live edge, apply them. Returns the events seen."""
        before = self.reader.event_count
        grown = self.reader.refresh() - before
        if grown:
            self._grew_at = time.monotonic()
        elif not self._ended:
            self._ended = self._writer_gone()
        if self._following:
            self.engine.catch_up()
        return grown

    async def run(self) -> None:
        while not self._stopping.is_set():
            self.poll()
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass
