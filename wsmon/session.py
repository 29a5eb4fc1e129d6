"""A live session: sources feed one reducer (and the recorder), the judge raises alerts, the UI reads.

This is the composition root of a live run. Every event goes through ``emit`` — applied to the
State and appended to the recording in the same call, so the recording holds exactly the events
the State was built from, in the same order. A source that fails is reported and restarted; it
never takes the session down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import wsmon
from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS, Limit, judge
from wsmon.core.reducer import Reducer, startup_timeouts
from wsmon.core.sanitize import clean_event
from wsmon.core.sink import Sink
from wsmon.core.state import State
from wsmon.memory import pin_mmap_threshold
from wsmon.sources.base import Source, now
from wsmon.store.format import FORMAT_VERSION, RecordedTarget, RecordingError, RecordingHeader
from wsmon.store.writer import RecordingWriter
from wsmon.ui.feed import LiveMarkers

TICK_S = 0.25
STARTUP_TIMEOUT_S = 30.0  # a target wsmon starts that has not answered by then is DOWN
SOURCE_RESTART_S = 2.0
STOP_TIMEOUT_S = 8.0


class Session(LiveMarkers):
    """Implements the UI's Feed protocol (wsmon.ui.feed.Feed) for a live run, and its markers (m)."""

    mode = "live"

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        title: str,
        limits: tuple[Limit, ...] = DEFAULT_LIMITS,
        record: Path | None = None,
        command: str = "",
        targets: Sequence[dict[str, str]] = (),
        duration: float | None = None,
        sinks: Sequence[Sink] = (),
        starting: Sequence[str] = (),
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.sources = list(sources)
        self.title = title
        self.limits = limits
        self.record_path = record
        self.command = command
        self.targets = list(targets)
        self.duration = duration
        self.sinks = list(sinks)
        # Targets wsmon itself starts (its --server, and what depends on that server): STARTING until
        # their first UP, so start-up is not reported as an outage.
        self.starting = list(starting)
        self.startup_timeout_s = startup_timeout_s
        # Set when every source reads a finite input (saved logs without --follow): the session ends
        # once they all have, instead of waiting for --duration or a signal.
        self.end_with_sources = False
        self.paused = False
        self.reducer = Reducer()
        self.writer: RecordingWriter | None = None
        # Set when the recording could not be written (disk full, read-only): one line naming the file
        # and the fault. Monitoring goes on without it; the CLI reports it and exits 2 at the end.
        self.recording_error: str | None = None
        self._recording_stopped_by = ""
        self._stopping = asyncio.Event()

    # --- the Feed protocol ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.reducer.state

    def toggle_pause(self) -> None:
        # Live pause freezes the screen only: sources and the recording keep going, as in top.
        self.paused = not self.paused

    def stop(self) -> None:
        self._stopping.set()

    @property
    def notice(self) -> str:
        """A line the dashboard's header shows in its error colour (the Feed protocol's optional part)."""
        return f"recording stopped: {self._recording_stopped_by}" if self.recording_error else ""

    # --- running ----------------------------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        # Where outside text enters: State, the recording and every output see it made visible.
        event = clean_event(event)
        self.reducer.apply(event)
        if self.writer is not None:
            self.writer.append(event)
        for sink in self.sinks:
            try:
                sink.on_event(event)
            except Exception:
                # A broken output must not turn every source's emit into a failure and a restart.
                logging.getLogger(__name__).exception("sink failed on %s", type(event).__name__)

    def marker(self, text: str) -> None:
        wall, mono = now()
        self.emit(ev.Marker(wall=wall, mono=mono, text=text))

    async def run(self) -> None:
        pin_mmap_threshold()  # a long session's RSS stays flat (see wsmon/memory.py)
        if self.record_path is not None:
            header = RecordingHeader(
                wsmon_version=wsmon.__version__,
                format_version=FORMAT_VERSION,
                schema_version=ev.SCHEMA_VERSION,
                created_wall=time.time(),
                command=self.command,
                targets=[RecordedTarget(**target) for target in self.targets],
                limits=list(self.limits),
                # What a follower's dashboard (wsmon replay --follow, wsmon serve) calls the session.
                extra={"title": self.title},
            )
            try:
                self.writer = RecordingWriter(self.record_path, header)
            except RecordingError as exc:
                self._recording_failed(exc)
        self._announce_starting()
        tasks = [
            asyncio.create_task(self._guarded(source), name=type(source).__name__) for source in self.sources
        ]
        sink_tasks = [asyncio.create_task(sink.run(), name=type(sink).__name__) for sink in self.sinks]
        started = time.monotonic()
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=TICK_S)
                self._tick()
                if self.duration is not None and time.monotonic() - started >= self.duration:
                    break
                if self.end_with_sources and all(task.done() for task in tasks):
                    break
        finally:
            await self._shutdown(tasks)
            await self._stop_sinks(sink_tasks)

    def _announce_starting(self) -> None:
        kinds = {t.get("name", ""): t.get("kind", "") for t in self.targets}
        for name in self.starting:
            wall, mono = now()
            self.emit(
                ev.TargetAdded(
                    wall=wall,
                    mono=mono,
                    target=name,
                    kind=kinds.get(name, ""),
                    starting=True,
                    startup_timeout_s=self.startup_timeout_s,
                )
            )

    def _tick(self) -> None:
        wall, mono = now()
        for down in startup_timeouts(self.reducer.state, wall, mono):
            self.emit(down)
        for alert in judge(self.reducer.state, self.limits, wall, mono):
            self.emit(alert)
        if self.writer is not None and self.writer.due(mono):
            try:
                self.writer.flush(self.reducer.state)
            except RecordingError as exc:
                self._recording_failed(exc)

    def _recording_failed(self, exc: RecordingError) -> None:
        """Stop recording, keep monitoring: what was committed stays readable, nothing more is kept."""
        if self.writer is not None:
            self.writer.abandon()
            self.writer = None
        self.recording_error = str(exc)
        self._recording_stopped_by = getattr(exc, "reason", exc.problem)
        wall, mono = now()
        self.emit(
            ev.LogLine(wall=wall, mono=mono, level="error", text=f"recording stopped: {exc}", source="wsmon")
        )

    async def _guarded(self, source: Source) -> None:
        """Run a source for the whole session; an unexpected error is an event and a restart."""
        name = type(source).__name__
        while True:
            try:
                await source.run(self.emit)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                wall, mono = now()
                detail = traceback.format_exception_only(exc)[-1].strip()
                self.emit(
                    ev.LogLine(
                        wall=wall, mono=mono, level="error", text=f"{name} failed: {detail}", source="wsmon"
                    )
                )
                await asyncio.sleep(SOURCE_RESTART_S)

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Stop the sources in stages, by their ``stop_order`` (StopOrder).

        Clients wsmon drives (a load generator) leave first and close normally; then the watchers
        (probes, samplers, taps) end, so stopping the server does not show up as refused probes; the
        processes wsmon owns (a server) stop last, so their exit and last lines are recorded.
        """
        stages: dict[int, list[tuple[Source, asyncio.Task[Any]]]] = {}
        for source, task in zip(self.sources, tasks, strict=True):
            stages.setdefault(source.stop_order, []).append((source, task))
        for order in sorted(stages):
            stage = stages[order]
            for source, task in reversed(stage):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(source.stop(), timeout=STOP_TIMEOUT_S)
                if source.stop_ends_run:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
                task.cancel()
            await self._reap([task for _, task in stage])
        self._tick()
        if self.writer is not None:
            try:
                self.writer.close(self.reducer.state)
            except RecordingError as exc:
                self._recording_failed(exc)
            self.writer = None

    async def _reap(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Wait for cancelled sources, but never for ever: a source whose library swallows the
        cancellation must not keep wsmon from ending (and from writing its recording)."""
        done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S) if tasks else (set(), set())
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not complain of it at exit
        for task in pending:
            wall, mono = now()
            text = f"{task.get_name()} did not stop within {STOP_TIMEOUT_S:.0f} s; left behind"
            self.emit(ev.LogLine(wall=wall, mono=mono, level="warn", text=text, source="wsmon"))

    async def _stop_sinks(self, tasks: list[asyncio.Task[Any]]) -> None:
        # After the final tick, so the last alerts are delivered before the sinks flush and stop.
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sink.stop(), timeout=STOP_TIMEOUT_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
