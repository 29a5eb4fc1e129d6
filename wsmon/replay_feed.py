"""Replay as a Feed for the dashboard: the recording's events, at recorded pace, through the reducer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from wsmon.core.limits import DEFAULT_LIMITS, Limit
from wsmon.core.state import State
from wsmon.store.reader import RecordingReader
from wsmon.store.replay import ReplayEngine

FRAME_S = 0.05


class ReplayFeed:
    mode = "replay"

    def __init__(self, path: Path, *, speed: float = 1.0, limits: tuple[Limit, ...] | None = None) -> None:
        self.reader = RecordingReader(path)
        self.engine = ReplayEngine(self.reader)
        self.engine.speed = speed
        recorded = tuple(self.reader.header.limits) if self.reader.header.limits else DEFAULT_LIMITS
        self.limits = limits or recorded
        self.title = f"replay · {path.name}"
        self._stopping = asyncio.Event()

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

    def seek_fraction(self, fraction: float) -> None:
        first, last = self.reader.first_mono, self.reader.last_mono
        if first is None or last is None:
            return
        self.engine.seek_time(first + (last - first) * min(max(fraction, 0.0), 1.0))

    @property
    def speed(self) -> float:
        return self.engine.speed

    @property
    def progress(self) -> float:
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
