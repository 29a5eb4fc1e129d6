"""Sampling a process tree through psutil: CPU between two readings an interval apart, RSS, threads,
fds, whether it is stopped, and the TCP states on its port."""

from __future__ import annotations

import time
from typing import NamedTuple

import psutil

from wsmon.sources.process.find import tcp_states_on_port

STOPPED_STATES = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def stopped_message(pid: int) -> str:
    return f"process {pid} is stopped (SIGSTOP or job control): it answers nothing"


def is_stopped(pid: int) -> bool | None:
    """Whether the process is stopped (SIGSTOP, Ctrl-Z, a debugger); None when it is gone or a zombie."""
    try:
        status = psutil.Process(pid).status()
    except psutil.Error:
        return None
    return None if status == psutil.STATUS_ZOMBIE else status in STOPPED_STATES


class Sample(NamedTuple):
    cpu_percent: float | None  # None: no reading of the tree's CPU time old enough to measure from
    rss_bytes: int
    threads: int
    fds: int
    processes: int
    tcp: dict[str, int]
    stopped: bool = False  # the process is stopped (SIGSTOP, Ctrl-Z, a debugger): it answers nothing


class CpuReading(NamedTuple):
    """One process's CPU time (user + system, seconds) and when it was read (monotonic seconds)."""

    at: float
    cpu_s: float


def cpu_percent_between(before: CpuReading, after: CpuReading) -> float:
    """Percent of one core the process used between two readings; never negative.

    /proc counts CPU time in clock ticks (10 ms): two readings microseconds apart can differ by a
    whole tick, which is why readings must be an interval apart (see ProcessSampler).
    """
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    return max(0.0, after.cpu_s - before.cpu_s) / elapsed * 100.0


def cpu_bound(threads: int, cores: int) -> float:
    """The most a tree can use, in percent of one core: each thread runs on at most one core."""
    return 100.0 * max(1, min(threads, cores))


class ProcessSampler:
    """Keeps each process's last CPU-time reading between samples: CPU is measured from two readings
    at least ``min_interval`` apart. A tree seen for the first time has no figure (None) until then;
    a process that joins the tree counts from its second reading."""

    def __init__(self, cpu_basis: str = "core", min_interval: float = 1.0) -> None:
        self.cpu_basis = cpu_basis
        self.min_interval = min_interval
        self.cores = psutil.cpu_count() or 1
        self.fds_denied = False  # some process in the tree hid its fds: run as the server's user
        self._procs: dict[int, psutil.Process] = {}
        self._readings: dict[int, CpuReading] = {}  # by pid, for the processes in _procs
        self._last_threads = 0

    def sample(self, pid: int, port: int | None) -> Sample:
        """Raises psutil.NoSuchProcess when ``pid`` has exited (a zombie counts as exited)."""
        root = self._process(pid)
        status = root.status()
        if status == psutil.STATUS_ZOMBIE:
            raise psutil.ZombieProcess(pid)
        tree = [root]
        try:
            tree += root.children(recursive=True)
        except psutil.NoSuchProcess:
            raise
        except psutil.Error:
            pass
        cpu = 0.0
        measured = False
        rss = threads = fds = 0
        alive: dict[int, psutil.Process] = {}
        readings: dict[int, CpuReading] = {}
        for found in tree:
            known = self._procs.get(found.pid)
            # Equal means same pid and same start time: a reused pid is a new process with a new baseline.
            proc = known if known is not None and known == found else found
            try:
                with proc.oneshot():
                    reading = _cpu_reading(proc)
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    try:
                        fds += proc.num_fds()
                    except psutil.AccessDenied:
                        self.fds_denied = True
            except psutil.NoSuchProcess:
                if proc.pid == pid:
                    raise
                continue
            alive[proc.pid] = proc
            before = self._readings.get(proc.pid) if proc is known else None
            if before is not None and reading.at - before.at < self.min_interval:
                reading = before  # too soon after the last: keep measuring from the older reading
            elif before is not None:
                cpu += cpu_percent_between(before, reading)
                measured = measured or proc.pid == pid
            readings[proc.pid] = reading
        self._procs, self._readings = alive, readings
        percent = self._bounded(cpu, threads) if measured else None
        self._last_threads = threads
        tcp = tcp_states_on_port(port) if port else {}
        stopped = status in STOPPED_STATES
        return Sample(percent, rss, threads, fds, len(alive), tcp, stopped)

    def _bounded(self, cpu: float, threads: int) -> float:
        """Clamp the tick rounding of /proc: a tree never uses more than its threads or the machine's
        cores. Threads are counted at both readings: one that ran and then exited still used CPU."""
        bound = cpu_bound(max(threads, self._last_threads), self.cores)
        cpu = min(cpu, bound)
        return cpu / self.cores if self.cpu_basis == "machine" else cpu

    def _process(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None or not proc.is_running():
            proc = psutil.Process(pid)
            self._procs, self._readings, self._last_threads = {pid: proc}, {}, 0
        return proc


def _cpu_reading(proc: psutil.Process) -> CpuReading:
    times = proc.cpu_times()
    return CpuReading(at=time.monotonic(), cpu_s=times.user + times.system)
