"""The replay engine: a recording played back through the same reducer as the live session.

Pure and synchronous: the caller owns the clock and calls ``advance(elapsed)``; the engine moves its
replay clock by ``elapsed * speed`` and applies every event up to it. Seeking rebuilds the State from
the nearest keyframe, or folds on from the State shown when the target is ahead with no keyframe
between, so a seek, a step back and a fresh fold of the same events give equal States.
"""

from __future__ import annotations

import math

from wsmon.core.events import Event
from wsmon.core.reducer import Reducer
from wsmon.core.state import State
from wsmon.store.reader import RecordingReader

SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MIN_SPEED = SPEEDS[0]
MAX_SPEED = SPEEDS[-1]


class ReplayEngine:
    def __init__(self, reader: RecordingReader) -> None:
        self.reader = reader
        self.paused = False
        self._speed = 1.0
        self._reducer = Reducer()
        self.position = 0  # events applied
        self.clock = reader.first_mono if reader.first_mono is not None else 0.0
        # The decoded batch the next event comes from, so that playing never decodes a batch twice.
        self._batch_index = 0
        self._batch_first = 0
        self._batch: list[Event] = []

    # --- what is shown ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._reducer.state

    @property
    def event_count(self) -> int:
        return self.reader.event_count

    @property
    def at_end(self) -> bool:
        return self.position >= self.reader.event_count

    # --- speed and pause -------------------------------------------------------------------------

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._speed = min(max(float(value), MIN_SPEED), MAX_SPEED)

    def faster(self) -> float:
        self.speed = next((s for s in SPEEDS if s > self._speed), MAX_SPEED)
        return self._speed

    def slower(self) -> float:
        self.speed = next((s for s in reversed(SPEEDS) if s < self._speed), MIN_SPEED)
        return self._speed

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        return self.paused

    # --- moving ----------------------------------------------------------------------------------

    def seek_seq(self, seq: int) -> None:
        """Show the State after the first ``seq`` events; the clock goes to the latest of them."""
        seq = max(0, min(seq, self.reader.event_count))
        if self._ahead_within_reach(seq):
            # Folding on from here is less work than loading the keyframe and folding from it: a step
            # forward (→ by a span, a bookmark ahead) costs the events it passes, not up to a keyframe
            # interval of them (~200 ms at 64,000 events).
            while self.position < seq and self._load_batch():
                start = self.position - self._batch_first
                stop = min(seq - self._batch_first, len(self._batch))
                self._reducer.apply_many(self._batch[start:stop])
                self.position += stop - start
        else:
            self._reducer = Reducer(self.reader.state_at_seq(seq))
            self.position = seq
            self._batch = []
        first = self.reader.first_mono
        self.clock = self._reducer.state.last_mono if seq > 0 else (first if first is not None else 0.0)

    def _ahead_within_reach(self, seq: int) -> bool:
        """Whether ``seq`` is ahead of the State shown with no keyframe between them (the keyframe a
        seek would start from is at or before here)."""
        if seq < self.position:
            return False
        keyframe = self.reader.keyframe_seq_at_or_before(seq)
        return keyframe is None or keyframe <= self.position

    def seek_time(self, mono: float) -> None:
        """Show the State at replay time ``mono``: every event up to it applied, none after."""
        first, last = self.reader.first_mono, self.reader.last_mono
        if first is not None and last is not None:
            mono = min(max(mono, first), last)
        self.seek_seq(self.reader.seq_at_time(mono))
        self.clock = mono

    def step(self, count: int = 1) -> int:
        """Apply the next ``count`` events, or go back ``-count``; returns how many positions moved."""
        if count < 0:
            target = max(self.position + count, 0)
            moved = self.position - target
            self.seek_seq(target)
            return -moved
        moved = 0
        while moved < count:
            event = self._next_event()
            if event is None:
                break
            self._apply(event)
            if event.mono > self.clock:
                self.clock = event.mono
            moved += 1
        return moved

    def advance(self, elapsed_real_s: float) -> int:
        """Move the clock by ``elapsed_real_s * speed`` (unless paused); returns events applied."""
        if self.paused or self.at_end:
            return 0
        self.clock += elapsed_real_s * self._speed
        return self._apply_until(self.clock)

    def catch_up(self) -> int:
        """Apply every event the reader knows of (a followed recording's newly committed batches),
        paused or not; the clock goes to the latest of them. Returns events applied."""
        applied = self._apply_until(math.inf)
        last = self.reader.last_mono
        if last is not None and last > self.clock:
            self.clock = last
        return applied

    def _apply_until(self, clock: float) -> int:
        """Apply events in order while their time is at most ``clock``."""
        applied = 0
        while not self.at_end:
            if not self._load_batch():
                break
            events = self._batch
            start = self.position - self._batch_first
            stop = start
            end = len(events)
            while stop < end and events[stop].mono <= clock:
                stop += 1
            if stop > start:
                self._reducer.apply_many(events[start:stop])
                self.position += stop - start
                applied += stop - start
            if stop < end:
                break
        return applied

    # --- the event cursor ------------------------------------------------------------------------

    def _load_batch(self) -> bool:
        """Make ``self._batch`` the batch holding ``self.position``; False at the end."""
        if self._batch and self._batch_first <= self.position < self._batch_first + len(self._batch):
            return True
        reader = self.reader
        while self.position < reader.event_count:
            index = reader.batch_index_of(self.position)
            first_seq, events = reader.read_batch(index)
            if events:
                self._batch_index, self._batch_first, self._batch = index, first_seq, events
                return True
            # An unreadable batch (the reader has warned): play on after it.
            self.position = first_seq + reader.batch_size(index)
        return False

    def _next_event(self) -> Event | None:
        if not self._load_batch():
            return None
        return self._batch[self.position - self._batch_first]

    def _apply(self, event: Event) -> None:
        self._reducer.apply(event)
        self.position += 1
