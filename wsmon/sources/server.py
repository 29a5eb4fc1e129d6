"""A server that wsmon starts itself: its stdout and stderr are the log source, its exit an event.

The server runs in its own process group, so stopping it stops its children too. On Linux it also
gets a parent-death signal, and a small watchdog outside the group ends the whole group when wsmon's
end of a pipe closes, so even a kill -9 of wsmon leaves neither the server nor its workers behind
(wsmon.children).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from wsmon.children import GroupWatchdog, start_guarded_exec
from wsmon.core import events as ev
from wsmon.core.redact import redact_argv, redact_text
from wsmon.sources.base import STOPPED, CheckResult, Emit, Source, StopOrder, now
from wsmon.sources.logs.folding import FOLD_IDLE_S
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.source import LogLines
from wsmon.sources.pipe_reader import GatheringPipes
from wsmon.sources.process import is_stopped, stopped_message

LAST_LINES_KEPT = 20
DRAIN_AFTER_EXIT_S = 1.0
EXIT_POLL_S = 0.1
STOPPED_POLL_S = 0.5


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class ServerSource(Source):
    # Stopped after the watchers, so its exit is recorded and not seen as an outage.
    stop_order = StopOrder.OWNED
    stop_ends_run = True  # run() records the exit (ServerExit, its last lines) once stop() has ended it

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        target: str = "server",
        env: dict[str, str] | None = None,
        stop_timeout: float = 5.0,
        rules: list[Any] | None = None,
    ) -> None:
        super().__init__(target)
        self.rules = rules
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        self.env = env
        self.stop_timeout = stop_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()
        self.last_lines: deque[str] = deque(maxlen=LAST_LINES_KEPT)
        self._stopped_by_us = False
        self._watchdog = GroupWatchdog()
        # Called with how it ended ("killed by SIGKILL") when the server dies on its own: a tap in front
        # of it learns at once that its upstream is gone.
        self.exit_listeners: list[Callable[[str], None]] = []

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(
            ev.TargetAdded(
                wall=wall,
                mono=mono,
                target=self.target,
                kind="server",
                address=shlex.join(redact_argv(self.argv)),
            )
        )
        parser = LogParser(self.target, now, rules=self.rules)
        # Our own pipes rather than asyncio's transports: read through GatheringPipes, a busy log costs
        # one wake-up per gathered chunk instead of one per write (wsmon/sources/pipe_reader.py).
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            self.process = await start_guarded_exec(
                *self.argv,
                watchdog=self._watchdog,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                # A Python server's stdout is a pipe here, so block-buffered: its log would arrive in
                # lumps, or never if it is killed. Unbuffered unless the user's environment says otherwise.
                env={"PYTHONUNBUFFERED": "1", **os.environ, **(self.env or {})},
            )
        except OSError as exc:
            for fd in (out_read, err_read):
                os.close(fd)
            self.status.mark_down(emit, f"could not start: {exc}", "start")
            return
        finally:
            # The child has its copies; with ours open the pipes would never reach their end.
            for fd in (out_write, err_write):
                os.close(fd)
        pipes = GatheringPipes([out_read, err_read])
        self.started.set()
        self.status.mark_up(emit, f"pid {self.process.pid}")
        stopped_watch = asyncio.create_task(self._watch_stopped(emit, self.process.pid))
        readers = asyncio.create_task(self._read(pipes, parser, emit))
        try:
            returncode = await self._exited()
            # A worker the server started can hold its output open after the server is gone: read what
            # is left for a moment, then record the exit now rather than when that worker ends.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(readers), DRAIN_AFTER_EXIT_S)
        finally:
            stopped_watch.cancel()
            # Readers end before their fds close: a closed fd's number can be reused at once, and a
            # reader still waiting on it would then remove someone else's.
            # asyncio.wait, not await: a reader that failed has said so through the wait_for above, and
            # must not skip the closing and stopping below.
            readers.cancel()
            await asyncio.wait((readers,))
            pipes.close()
            if self.process.returncode is None:
                await self.stop()
            _signal_group(self.process.pid, signal.SIGKILL)  # what the server left in its group
            await self._watchdog.stop()  # wsmon ended the group itself: the watchdog has nothing left to do
        code, sig = (None, -returncode) if returncode < 0 else (returncode, None)
        wall, mono = now()
        emit(
            ev.ServerExit(
                wall=wall,
                mono=mono,
                target=self.target,
                pid=self.process.pid,
                code=code,
                signal=sig,
                last_lines=[redact_text(line) for line in self.last_lines],  # raw output: mask it
            )
        )
        if not self._stopped_by_us:  # wsmon stopping its own server is not an outage
            how = f"killed by {signal.Signals(sig).name}" if sig else f"exited with code {code}"
            self.status.mark_down(emit, how, "exited")
            for listener in self.exit_listeners:
                listener(how)

    async def _watch_stopped(self, emit: Emit, pid: int) -> None:
        """A server stopped by SIGSTOP (or Ctrl-Z, or a debugger) is alive and answers nothing: it is
        STOPPED (TargetDown kind "stopped") until SIGCONT, not UP."""
        stopped = False
        while True:
            await asyncio.sleep(STOPPED_POLL_S)
            now_stopped = is_stopped(pid)  # one read of /proc/PID/stat: no thread needed
            if now_stopped is None or now_stopped == stopped:
                continue  # gone (its exit is reported by run) or unchanged
            stopped = now_stopped
            if stopped:
                self.status.mark_down(emit, stopped_message(pid), STOPPED)
            else:
                self.status.mark_up(emit, f"pid {pid} continued")

    async def _exited(self) -> int:
        # Not Process.wait(): up to Python 3.11 it also waits for the pipes to close, which a worker the
        # server started may keep open for good. returncode is set the moment the server is reaped.
        assert self.process is not None
        while self.process.returncode is None:
            await asyncio.sleep(EXIT_POLL_S)
        return self.process.returncode

    async def _read(self, pipes: GatheringPipes, parser: LogParser, emit: Emit) -> None:
        # Whole chunks, not a line at a time: a readline (and its wait_for) per line cost more than
        # recognising the line at a busy server's ~2,000 lines/s (docs/performance.md, issue 13).
        # A crash's stack trace is folded into the error line it follows: one event with its cause.
        streams = [LogLines(parser, emit, keep=self.last_lines) for _ in pipes.fds]
        while pipes.open:
            try:
                chunks = await pipes.read(FOLD_IDLE_S if any(lines.holding() for lines in streams) else None)
            except TimeoutError:
                for lines in streams:
                    lines.flush_held()
                continue
            for lines, chunk in zip(streams, chunks, strict=True):
                if chunk:
                    lines.feed(chunk)
                elif chunk is not None:  # this pipe's end
                    lines.flush()
                lines.flush_if_idle()

    async def check(self) -> CheckResult:
        """The server is started later, by the session: what can be checked now is that its program exists."""
        return check_program(self.argv)

    async def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it is still there after stop_timeout."""
        proc = self.process
        if proc is None:
            return
        if proc.returncode is not None:
            _signal_group(proc.pid, signal.SIGKILL)  # the server is gone; its workers may not be
            return
        self._stopped_by_us = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        _signal_group(proc.pid, signal.SIGCONT)  # a stopped server acts on its SIGTERM only once continued
        try:
            await asyncio.wait_for(self._exited(), timeout=self.stop_timeout)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await self._exited()


def check_program(argv: list[str]) -> CheckResult:
    """Whether a command line's program can be found (on PATH, or as given), for `wsmon check`."""
    started = time.perf_counter()
    program = argv[0] if argv else ""
    found = shutil.which(program) if program else None
    ms = (time.perf_counter() - started) * 1000.0
    if found is None:
        error = "empty command" if not program else f"{program}: no such executable"
        hint = "check the program's name and PATH, or give its full path"
        return CheckResult(ok=False, latency_ms=ms, error=error, hint=hint, kind="missing")
    return CheckResult(ok=True, latency_ms=ms)
