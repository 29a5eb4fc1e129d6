"""Replay as a Feed for the dashboard: the recording's events, at recorded pace, through the reducer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from wsmon.core import events as ev
from wsmon.core.closecodes import close_code_label, expected_close
from wsmon.core.limits import DEFAULT_LIMITS, Limit
from wsmon.core.state import State
from wsmon.store.bookmarks import Bookmark, load_bookmarks, save_bookmarks, sidecar_path
from wsmon.store.reader import RecordingReader
from wsmon.store.replay import ReplayEngine
from wsmon.ui.feed import SPANS_S, ReplayControls

FRAME_S = 0.05


class ReplayFeed(ReplayControls):

    def __init__(self, path: Path, *, speed: float = 1.0, limits: tuple[Limit, ...] | None = None) -> None:
        self.reader = RecordingReader(path)
        self.engine = ReplayEngine(self.reader)
        self.engine.speed = speed
        recorded = tuple(self.reader.header.limits) if self.reader.header.limits else DEFAULT_LIMITS
        self.limits = limits or recorded
        self.title = f"replay · {path.name}"
        self._stopping = asyncio.Event()
        self._anomalies: list[tuple[int, float, str]] = []
        self._markers: list[tuple[int, float, str]] = []  # (events applied after it, wall, text)
        self._scanned = 0  # events looked at for anomalies and markers so far
        self.path = path
        self._span_s = SPANS_S[0]
        self._bookmarks, warning = load_bookmarks(path)
        self._notes = [warning] if warning else []
        # A sidecar wsmon cannot read may be someone's to mend: never written over.
        self._sidecar_unreadable = warning is not None

    @property
    def state(self) -> State:
        return self.engine.state

    @property
    def mode(self) -> str:
        return "replay"

    @property
    def notice(self) -> str:
        return ""

    @property
    def paused(self) -> bool:
        return self.engine.paused

    def toggle_pause(self) -> None:
        self.engine.paused = not self.engine.paused

    def step(self, n: int) -> None:
        self.engine.paused = True
        self.engine.step(n)

    def faster(self) -> None:
        self.engine.faster()

    def slower(self) -> None:
        self.engine.slower()

    def anomalies(self) -> list[tuple[int, float, str]]:
        """(events applied after it, its time, label) of every anomaly."""
        return self._indexed()[0]

    def _indexed(self) -> tuple[list[tuple[int, float, str]], list[tuple[int, float, str]]]:
        """The anomalies (n / N) and the markers (the palette): read on first use, and then only the
        batches a writer added since (a followed recording grows)."""
        scanned = self._scanned
        for first_seq, events in self.reader.iter_batches(scanned):
            for seq, event in enumerate(events, first_seq + 1):
                if seq <= scanned:
                    continue
                label = describe_anomaly(event)
                if label is not None:
                    self._anomalies.append((seq, event.mono, label))
                if isinstance(event, ev.Marker):
                    self._markers.append((seq, event.wall, event.text))
        self._scanned = self.reader.event_count
        return self._anomalies, self._markers

    def markers(self) -> list[tuple[float, str]]:
        return [(wall, text) for _, wall, text in self._indexed()[1]]

    def goto_marker(self, index: int) -> None:
        self.engine.paused = True
        self.engine.seek_seq(self._indexed()[1][index][0])

    def next_anomaly(self, direction: int) -> str | None:
        """Seek to the next (1) or previous (-1) anomaly and pause there; its label, or None."""
        applied = self.engine.position
        found = self.anomalies()
        if direction > 0:
            target = next((a for a in found if a[0] > applied), None)
        else:
            target = next((a for a in reversed(found) if a[0] < applied), None)
        if target is None:
            return None
        self.engine.paused = True
        self.engine.seek_seq(target[0])
        first = self.reader.first_mono or 0.0
        offset = max(0.0, target[1] - first)
        return f"{int(offset // 60)}:{offset % 60:04.1f}  {target[2]}"

    def seek_text(self, text: str) -> None:
        """Seek to "50%", "1:30" or "90s" from the start; ValueError with a one-line message."""
        first, last = self.reader.first_mono, self.reader.last_mono
        if first is None or last is None:
            return
        self.engine.seek_time(first + min(parse_seek(text, last - first), last - first))

    # --- time: the replay bar, stepping by a span, bookmarks ------------------------------------

    @property
    def span_s(self) -> float:
        return self._span_s

    def change_span(self, direction: int) -> float:
        at = SPANS_S.index(self._span_s) + (1 if direction > 0 else -1)
        self._span_s = SPANS_S[min(max(at, 0), len(SPANS_S) - 1)]
        return self._span_s

    def step_time(self, direction: int) -> None:
        """Pause, then seek ``span_s`` forward or back from the replay clock (keyframe, then fold; a step
        ahead within a keyframe interval folds on from here)."""
        self.engine.paused = True
        self.engine.seek_time(self.engine.clock + (self._span_s if direction > 0 else -self._span_s))

    def _wall_at(self, mono: float) -> float:
        # Wall time advances with the monotonic clock between the first event and any other: one
        # offset, rather than the nearest event's wall, keeps the bar steady between events.
        first_mono, first_wall = self.reader.first_mono, self.reader.first_wall
        if first_mono is None or first_wall is None:
            return 0.0
        return first_wall + (mono - first_mono)

    @property
    def wall_times(self) -> tuple[float, float, float] | None:
        first, last = self.reader.first_mono, self.reader.last_mono
        if first is None or last is None:
            return None
        return self._wall_at(first), self._wall_at(self.engine.clock), self._wall_at(last)

    def bookmarks(self) -> list[float]:
        return [mark.wall for mark in self._bookmarks]

    def add_bookmark(self) -> tuple[float, str | None]:
        mark = Bookmark(self.engine.position, self.engine.clock, self._wall_at(self.engine.clock))
        if mark not in self._bookmarks:
            self._bookmarks = sorted([*self._bookmarks, mark])
        if self._sidecar_unreadable:
            sidecar = sidecar_path(self.path)
            return mark.wall, f"bookmark kept for this session only: {sidecar} is left as it is"
        try:
            save_bookmarks(self.path, self._bookmarks)
        except OSError as exc:
            why = exc.strerror or str(exc)
            return mark.wall, f"bookmark kept for this session only: cannot write beside {self.path} ({why})"
        return mark.wall, None

    def goto_bookmark(self, index: int) -> None:
        mark = self._bookmarks[index]
        self.engine.paused = True
        self.engine.seek_seq(mark.seq)
        self.engine.clock = mark.mono

    def next_bookmark(self, direction: int) -> float | None:
        here = (self.engine.clock, self.engine.position)
        places = [(mark.mono, mark.seq) for mark in self._bookmarks]
        if direction > 0:
            index = next((i for i, place in enumerate(places) if place > here), None)
        else:
            index = next((i for i in reversed(range(len(places))) if places[i] < here), None)
        if index is None:
            return None
        self.goto_bookmark(index)
        return self._bookmarks[index].wall

    def take_notes(self) -> list[str]:
        notes, self._notes = self._notes, []
        return notes

    @property
    def speed(self) -> float:
        return self.engine.speed

    @property
    def progress(self) -> float:
        """How far into the recording, 0.0 … 1.0."""
        total = self.reader.event_count
        return self.engine.position / total if total else 1.0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Advance the replay clock with real time until the user quits; the end holds the last frame."""
        last = time.monotonic()
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=FRAME_S)
            except TimeoutError:
                pass
            current = time.monotonic()
            self.engine.advance(current - last)
            last = current


def describe_anomaly(event: ev.Event) -> str | None:
    """A one-line label for an event worth stopping at in a replay (n / N), or None."""
    if isinstance(event, ev.ConnectionClosed):
        if event.own or expected_close(event.code):
            return None
        return f"{close_code_label(event.code)} on {event.conn}"
    if isinstance(event, ev.DeliveryFailed):
        return f"delivery failed: {event.message_id or '?'} ({event.reason or 'unknown'})"
    if isinstance(event, ev.ConnectFailed) and not event.own:
        return f"connect failed: {event.error or event.kind}"
    if isinstance(event, ev.AlertRaised):
        return f"alert: {event.message or event.figure}"
    if isinstance(event, ev.TargetDown):
        return f"{event.target} down: {event.error}"
    if isinstance(event, ev.ServerExit):
        how = f"signal {event.signal}" if event.signal else f"code {event.code}"
        return f"{event.target} exited ({how})"
    return None


def parse_seek(text: str, duration_s: float) -> float:
    """Seconds from the start for "50%", "1:30", "90s" or "90"; ValueError with a one-line message."""
    raw = text.strip().lower()
    try:
        if raw.endswith("%"):
            return duration_s * min(max(float(raw[:-1]), 0.0), 100.0) / 100.0
        if ":" in raw:
            parts = [float(p) for p in raw.split(":")]
            seconds = 0.0
            for part in parts:
                seconds = seconds * 60 + part
            return seconds
        return float(raw.removesuffix("s"))
    except ValueError:
        raise ValueError(f"seek: expected 50%, 1:30 or 90s, got {text!r}") from None
