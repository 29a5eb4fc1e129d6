"""Replay as a Feed for the dashboard: the recording's events, at recorded pace, through the reducer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from wsmon.core import events as ev
from wsmon.core.closecodes import close_code_label, expected_close
from wsmon.core.limits import DEFAULT_LIMITS, Limit
from wsmon.core.state import State
from wsmon.store.reader import RecordingReader
from wsmon.store.replay import ReplayEngine
from wsmon.ui.feed import ReplayControls

FRAME_S = 0.05


class ReplayFeed(ReplayControls):
    mode = "replay"
    notice = ""

    def __init__(self, path: Path, *, speed: float = 1.0, limits: tuple[Limit, ...] | None = None) -> None:
        self.reader = RecordingReader(path)
        self.engine = ReplayEngine(self.reader)
        self.engine.speed = speed
        recorded = tuple(self.reader.header.limits) if self.reader.header.limits else DEFAULT_LIMITS
        self.limits = limits or recorded
        self.title = f"replay · {path.name}"
        self._stopping = asyncio.Event()
        self._anomalies: list[tuple[int, float, str]] | None = None

    @property
    def state(self) -> State:
        return self.engine.state

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
        """(events applied after it, its time, label) of every anomaly; read once, on first use."""
        if self._anomalies is None:
            found = []
            for seq, event in enumerate(self.reader.iter_events(), 1):
                label = describe_anomaly(event)
                if label is not None:
                    found.append((seq, event.mono, label))
            self._anomalies = found
        return self._anomalies

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
