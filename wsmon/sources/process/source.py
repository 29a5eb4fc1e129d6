"""The process source: samples the server's process tree every interval, follows a restarted server,
and says UP, DOWN, STOPPED and why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psutil

from wsmon.core import events as ev
from wsmon.sources.base import STOPPED, CheckResult, Emit, Retell, Source, now
from wsmon.sources.process.find import (
    PidLocator,
    describe_exit,
    listening_inodes,
    pid_from_name,
    pid_from_port,
)
from wsmon.sources.process.sampler import ProcessSampler, stopped_message


class ProcessSource(Source):
    """Samples a process tree every ``interval``. ``pid`` is asked before every sample, so it may change
    (a restarted server); use ``for_pid``/``for_port``/``for_name`` to build one from the CLI's flags."""

    # Said down once; but a stopped process that then exits or vanishes is news (the reducer counts one down).
    retell = Retell.FROM_STOPPED

    def __init__(
        self,
        pid: Callable[[], int | None],
        *,
        port: int | None = None,
        target: str = "process",
        interval: float = 1.0,
        cpu_basis: str = "core",
        describe: str = "",
    ) -> None:
        super().__init__(target)
        self.pid = pid
        self.port = port
        self.interval = interval
        self.describe = describe or (pid.describe if isinstance(pid, PidLocator) else "")
        # Steps run an interval apart start to start, give or take the event loop's jitter: a reading
        # a little early must still count, or every few intervals a sample would be skipped.
        self.sampler = ProcessSampler(cpu_basis, min_interval=interval * 0.8)
        self._hints: set[str] = set()

    @classmethod
    def for_pid(
        cls,
        pid: int,
        *,
        port: int | None = None,
        target: str = "process",
        interval: float = 1.0,
        cpu_basis: str = "core",
    ) -> ProcessSource:
        """Exactly this process: when it exits, it stays down."""
        return cls(
            lambda: pid,
            port=port,
            target=target,
            interval=interval,
            cpu_basis=cpu_basis,
            describe=f"pid {pid}",
        )

    @classmethod
    def for_port(
        cls, port: int, *, target: str = "process", interval: float = 1.0, cpu_basis: str = "core"
    ) -> ProcessSource:
        """Whatever process listens on ``port``, followed across restarts."""
        locator = PidLocator(lambda: pid_from_port(port), f"listening on port {port}")
        return cls(locator, port=port, target=target, interval=interval, cpu_basis=cpu_basis)

    @classmethod
    def for_name(
        cls,
        name: str,
        *,
        port: int | None = None,
        target: str = "process",
        interval: float = 1.0,
        cpu_basis: str = "core",
    ) -> ProcessSource:
        """The oldest process named ``name`` (or with it in its command line), followed across restarts."""
        locator = PidLocator(lambda: pid_from_name(name), f"named {name!r}")
        return cls(locator, port=port, target=target, interval=interval, cpu_basis=cpu_basis)

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(
            ev.TargetAdded(wall=wall, mono=mono, target=self.target, kind="process", address=self._address())
        )
        watched: int | None = None  # the pid last sampled, until it is seen to exit
        while True:
            started = time.monotonic()
            try:
                watched = await self._step(emit, watched)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never bring wsmon down: say it, and try again next interval
                wall, mono = now()
                emit(
                    ev.LogLine(
                        wall=wall, mono=mono, level="error", text=f"process: {exc!r}", source="process"
                    )
                )
            # Start to start: a step can take a good part of an interval (a /proc scan for the port's
            # owner on a busy machine), and a restarted server must still be UP within two intervals.
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.0))

    async def _step(self, emit: Emit, watched: int | None) -> int | None:
        pid = await asyncio.to_thread(self.pid)
        if watched is not None and pid != watched and (self.status.up or self.status.stopped):
            # The process we watched is gone and another (or none) took its place.
            self.status.mark_down(emit, await asyncio.to_thread(describe_exit, watched), "exited")
        if pid is None:
            missing = "no process found" + (f" {self.describe}" if self.describe else "")
            self.status.mark_down(emit, missing, "missing")
            if self.port and await asyncio.to_thread(listening_inodes, self.port):
                self._hint(
                    emit,
                    f"port {self.port} is listening but its process is not readable: "
                    "run wsmon as the server's user, or pass --pid",
                )
            return None
        try:
            sample = await asyncio.to_thread(self.sampler.sample, pid, self.port)
        except psutil.NoSuchProcess:
            if pid == watched:
                self.status.mark_down(emit, await asyncio.to_thread(describe_exit, pid), "exited")
            else:
                self.status.mark_down(emit, f"no process {pid}", "missing")
            return None
        except psutil.AccessDenied:
            self.status.mark_down(emit, f"access denied to process {pid}", "denied")
            self._hint(emit, "run wsmon as the same user as the server to read its process")
            return pid
        if self.sampler.fds_denied:
            self._hint(emit, "some of the server's open fds are not readable: run wsmon as the same user")
        if sample.stopped:
            # Alive but frozen: its sockets accept (the kernel queues them) and nothing answers.
            self.status.mark_down(emit, stopped_message(pid), STOPPED)
        elif self.status.up is not True:
            located = self.describe and not self.describe.startswith("pid ")
            detail = f"pid {pid} ({self.describe})" if located else f"pid {pid}"
            self.status.mark_up(emit, detail + (" continued" if self.status.stopped else ""))
        wall, mono = now()
        if sample.cpu_percent is None:
            return pid  # the first sample only starts the CPU clock: its figure comes next interval
        emit(
            ev.ProcessSample(
                wall=wall,
                mono=mono,
                target=self.target,
                pid=pid,
                cpu_percent=round(sample.cpu_percent, 2),
                rss_bytes=sample.rss_bytes,
                threads=sample.threads,
                fds=sample.fds,
                tcp=sample.tcp,
                cores=self.sampler.cores,
                processes=sample.processes,
            )
        )
        return pid

    async def check(self) -> CheckResult:
        """The process can be found now, for `wsmon check`."""
        started = time.perf_counter()
        pid = await asyncio.to_thread(self.pid)
        ms = (time.perf_counter() - started) * 1000.0
        if pid is not None:
            return CheckResult(ok=True, latency_ms=ms)
        error = "no process found" + (f" {self.describe}" if self.describe else "")
        hint = "start the server, or run wsmon as the server's user"
        return CheckResult(ok=False, latency_ms=ms, error=error, hint=hint, kind="missing")

    def _hint(self, emit: Emit, text: str) -> None:
        if text in self._hints:
            return
        self._hints.add(text)
        wall, mono = now()
        emit(ev.Hint(wall=wall, mono=mono, target=self.target, text=text))

    def _address(self) -> str:
        if self.port and not self.describe:
            return f"port {self.port}"
        return self.describe
