"""A saved log as a session: the State ``wsmon report server.log`` judges, and ``wsmon import`` records.

The events come from ``wsmon.sources.logreplay`` (each stamped with its line's own time, several logs
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
from wsmon.sources.logreplay import LogStream, merged_events
from wsmon.sources.logrules import Rule
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
        apply = self.reducer.apply
        state = self.reducer.state
        limits = self.limits
        next_tick: float | None = None
        for event in self._events:
            mono = event.mono
            if next_tick is None:
                next_tick = mono + JUDGE_EVERY_S
            elif mono >= next_tick:
                # The log's time passed a judging tick: the State as it stands, before this event.
                for alert in judge(state, limits, state.last_wall, state.last_mono):
                    apply(alert)
                    yield alert
                next_tick = mono + JUDGE_EVERY_S
            event = clean_event(event)
            apply(event)
            yield event
        if next_tick is not None:
            for alert in judge(state, limits, state.last_wall, state.last_mono):
                apply(alert)
                yield alert

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


__all__ = ["LogSession"]
