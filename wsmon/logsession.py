"""A saved log as a session: the State ``wsmon report server.log`` judges, and ``wsmon import`` records.

The events come from ``wsmon.sources.logs.replay`` (each stamped with its line's own time, several logs
merged by time). They go through what a live session puts them through — made visible
(``clean_event``), applied to one reducer — and the judge runs on the log's clock (once a second of
log time), so an alert's "for how long" is the night's. Streams: nothing is kept but the State
(bounded) and the current batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import wsmon
from wsmon.core import events as ev
from wsmon.core.limits import Limit, judge
from wsmon.core.reducer import Reducer
from wsmon.core.sanitize import clean_event
from wsmon.core.state import State
from wsmon.sources.logs.replay import LogStream, merged_events
from wsmon.sources.logs.rules import Rule
from wsmon.store.format import FORMAT_VERSION, RecordedTarget, RecordingHeader
from wsmon.store.writer import MAX_BATCH_EVENTS, RecordingWriter

# Live, the judge runs four times a second; here once a second of the log's time: an alert's start and
# length are the night's within a second, and judging (a latency's p95 sorts the last minute's samples)
# costs a quarter of the recognising on a busy log, not twice it (bench/bench_report_log.py).
JUDGE_EVERY_S = 1.0


class LogSession:
    """The events of saved logs, judged on their own clock; ``state`` is the State after them."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        limits: tuple[Limit, ...],
        rules: Sequence[Rule] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.limits = limits
        self.reducer = Reducer()
        self.streams: list[LogStream]
        self.streams, self._events = merged_events(self.paths, rules)
        self._next_tick: float | None = None

    @property
    def state(self) -> State:
        return self.reducer.state

    def header(self, command: str) -> RecordingHeader:
        return RecordingHeader(
            wsmon_version=wsmon.__version__,
            format_version=FORMAT_VERSION,
            schema_version=ev.SCHEMA_VERSION,
            created_wall=time.time(),
            command=command,
            targets=[RecordedTarget(name=s.target, kind="log", address=str(s.path)) for s in self.streams],
            limits=list(self.limits),
            extra={"imported_logs": [str(p) for p in self.paths]},
        )

    def events(self) -> Iterator[ev.Event]:
        """Every event, applied to the State before it is yielded, the judge's alerts among them."""
        consume = self.consume
        for event in self._events:
            yield from consume(event)
        yield from self.judge_now()

    def consume(self, event: ev.Event) -> list[ev.Event]:
        """Apply one event (and, when the log's time passed a judging tick, the judge's alerts before
        it, on the State as it stands); what was applied, in order."""
        out: list[ev.Event] = []
        mono = event.mono
        if self._next_tick is None:
            self._next_tick = mono + JUDGE_EVERY_S
        elif mono >= self._next_tick:
            out = self.judge_now()
            self._next_tick = mono + JUDGE_EVERY_S
        event = clean_event(event)
        self.reducer.apply(event)
        out.append(event)
        return out

    def judge_now(self) -> list[ev.Event]:
        state = self.reducer.state
        if state.first_mono is None:
            return []
        alerts = judge(state, self.limits, state.last_wall, state.last_mono)
        for alert in alerts:
            self.reducer.apply(alert)
        return alerts

    def run(self) -> State:
        """Read every log to its end; the State after them."""
        for _ in self.events():
            pass
        return self.state

    def undated_warnings(self) -> list[str]:
        return [
            f"{s.path}: no timestamp on any line: stamped with the file's time, so durations and rates"
            " are not the log's"
            for s in self.streams
            if s.undated and s.undated == s.lines
        ]

    def write(self, output: str | os.PathLike[str], command: str) -> int:
        """Record every event into a new recording at ``output``; the number of events written."""
        writer = RecordingWriter(output, self.header(command))
        try:
            for event in self.events():
                writer.append(event)
                if writer.buffered >= MAX_BATCH_EVENTS:
                    writer.flush(self.state)
        except BaseException:
            writer.abandon()
            raise
        writer.close(self.state)
        return writer.events_written


class LogFollowFeed:
    """`wsmon replay server.log --follow`: the dashboard's feed of one saved log read on its own clock
    to its end, then followed as it grows (appends only: a rotated or truncated log is not followed)."""

    mode = "live"
    notice = ""

    def __init__(self, session: LogSession, *, poll_interval: float = 0.25) -> None:
        if len(session.streams) != 1:
            raise ValueError("--follow follows one log")
        self.session = session
        self.poll_interval = poll_interval
        self.paused = False
        self.title = f"replay · {session.paths[0]} (following)"
        self._stopping = False

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self.session.limits

    def toggle_pause(self) -> None:
        self.paused = not self.paused  # the screen only, as live: the log is still read

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        import asyncio

        from wsmon.sources.logs.replay import open_log
        from wsmon.sources.logs.source import READ_CHUNK

        stream, consume = self.session.streams[0], self.session.consume
        with open_log(stream.path) as file:
            while not self._stopping:
                data = file.read(READ_CHUNK)
                for event in stream.feed(data) if data else stream.flush_if_idle():
                    consume(event)
                await asyncio.sleep(0 if data else self.poll_interval)


__all__ = ["LogFollowFeed", "LogSession"]
