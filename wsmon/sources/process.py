"""The server's process tree through psutil: CPU, RSS, threads, fds and TCP states on its port.

The process is found by pid, by name or command line, or by the port it listens on; when it exits,
a new process found the same way (a restarted server) is followed. Sampling runs in a worker thread
(psutil reads /proc synchronously). CPU is percent of one core summed over the tree, as top shows it;
``cpu_basis="machine"`` divides by the core count. It is measured between two readings of each
process's CPU time at least one sampling interval apart, so a process's first sample has no CPU
figure and is not emitted, and no figure exceeds 100 % times the tree's threads or the machine's cores.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

import psutil

from wsmon.core import events as ev
from wsmon.sources.base import Emit, now
from wsmon.sources.sockdiag import tcp_states_netlink

# /proc/net/tcp state codes (include/net/tcp_states.h)
_TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}
_LISTEN = "0A"
_TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def _tcp_rows(port: int) -> list[list[str]]:
    """The /proc/net/tcp{,6} rows whose local port is ``port``.

    Read directly: psutil.net_connections() walks every process's fds, which costs far more and needs
    privileges to see other users' sockets.
    """
    rows: list[list[str]] = []
    suffix = f":{port:04X}"
    for table in _TCP_TABLES:
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) >= 10 and fields[1].endswith(suffix):
                        rows.append(fields)
        except OSError:
            continue
    return rows


def tcp_states_on_port(port: int) -> dict[str, int]:
    """Count the machine's TCP sockets whose local port is ``port``, by state (LISTEN included).

    Asks the kernel for just that port over netlink; /proc/net/tcp (every socket on the machine,
    formatted as text) is the fallback where netlink is not available.
    """
    counts = tcp_states_netlink(port)
    if counts is not None:
        return counts
    return tcp_states_from_proc(port)


def tcp_states_from_proc(port: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fields in _tcp_rows(port):
        state = _TCP_STATES.get(fields[3], fields[3])
        counts[state] = counts.get(state, 0) + 1
    return counts


def listening_inodes(port: int) -> set[int]:
    """The inodes of the sockets listening on ``port``: the key to finding their process."""
    return {int(fields[9]) for fields in _tcp_rows(port) if fields[3] == _LISTEN and fields[9] != "0"}


def socket_owners(inodes: set[int]) -> list[int]:
    """The pids holding any of these socket inodes open. Only processes wsmon may read are seen."""
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: list[int] = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with os.scandir(f"/proc/{entry.name}/fd") as fds:
                    if any(_readlink(fd.path) in wanted for fd in fds):
                        owners.append(int(entry.name))
            except OSError:  # gone, or another user's process
                continue
    return owners


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def pid_from_port(port: int) -> int | None:
    """The process listening on ``port``; of several (forked workers sharing it), their root."""
    return _root_of(socket_owners(listening_inodes(port)))


def pid_from_name(name: str) -> int | None:
    """The oldest process whose name is ``name`` or whose command line contains it; never wsmon itself
    (nor the shells that started wsmon, whose command lines name it too)."""
    excluded = _self_and_ancestors()
    matches: list[tuple[float, int]] = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "create_time", "status"]):
        info = proc.info
        if info["pid"] in excluded or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(info["cmdline"] or ())
        if info["name"] == name or name in cmdline:
            matches.append((info["create_time"] or 0.0, info["pid"]))
    return min(matches)[1] if matches else None


def _self_and_ancestors() -> set[int]:
    pids = {os.getpid()}
    try:
        pids.update(p.pid for p in psutil.Process().parents())
    except psutil.Error:
        pass
    return pids


def _root_of(pids: list[int]) -> int | None:
    if not pids:
        return None
    candidates: list[tuple[float, int]] = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.ppid() in pids:
                continue
            candidates.append((proc.create_time(), pid))
        except psutil.Error:
            continue
    return min(candidates)[1] if candidates else min(pids)


def port_of_local_url(url: str) -> int | None:
    """The port of a URL that points at this machine (the default place to look for the server)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not _is_local_host(host):
        return None
    if port is not None:
        return port
    return {"ws": 80, "http": 80, "wss": 443, "https": 443}.get(parts.scheme.lower())


def _is_local_host(host: str) -> bool:
    if host in ("localhost", "", socket.gethostname().lower()) or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def exit_status(pid: int) -> tuple[int | None, int | None]:
    """(exit code, signal) of a process that has exited, when it is wsmon's own child; else (None, None).

    WNOWAIT only peeks: the child stays unreaped for whoever started it (asyncio's child watcher, or
    subprocess), so they still get its status.
    """
    try:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (ChildProcessError, OSError):
        return None, None
    if result is None:
        return None, None
    if result.si_code == os.CLD_EXITED:
        return result.si_status, None
    return None, result.si_status


def describe_exit(pid: int) -> str:
    code, sig = exit_status(pid)
    if code is not None:
        return f"process {pid} exited with code {code}"
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"process {pid} was killed by signal {sig} ({name})"
    return f"process {pid} exited (code unknown)"


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


class PidLocator:
    """Finds the process again only when the one it found is gone: a /proc scan is not per sample."""

    def __init__(self, find: Callable[[], int | None], describe: str) -> None:
        self.find = find
        self.describe = describe  # "listening on port 8080", "named node": for messages
        self._proc: psutil.Process | None = None

    def __call__(self) -> int | None:
        proc = self._proc
        if proc is not None:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    return proc.pid
            except psutil.Error:
                pass
            self._proc = None
        pid = self.find()
        if pid is not None:
            try:
                self._proc = psutil.Process(pid)
            except psutil.Error:
                return None
        return pid


class ProcessSource:
    """Samples a process tree every ``interval``. ``pid`` is asked before every sample, so it may change
    (a restarted server); use ``for_pid``/``for_port``/``for_name`` to build one from the CLI's flags."""

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
        self.pid = pid
        self.port = port
        self.target = target
        self.interval = interval
        self.describe = describe or getattr(pid, "describe", "")
        # Steps run an interval apart start to start, give or take the event loop's jitter: a reading
        # a little early must still count, or every few intervals a sample would be skipped.
        self.sampler = ProcessSampler(cpu_basis, min_interval=interval * 0.8)
        self._up: bool | None = None
        self._stopped = False
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
        if watched is not None and pid != watched and (self._up or self._stopped):
            # The process we watched is gone and another (or none) took its place.
            self._down(emit, await asyncio.to_thread(describe_exit, watched), "exited")
        if pid is None:
            self._down(emit, "no process found" + (f" {self.describe}" if self.describe else ""), "missing")
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
                self._down(emit, await asyncio.to_thread(describe_exit, pid), "exited")
            else:
                self._down(emit, f"no process {pid}", "missing")
            return None
        except psutil.AccessDenied:
            self._down(emit, f"access denied to process {pid}", "denied")
            self._hint(emit, "run wsmon as the same user as the server to read its process")
            return pid
        if self.sampler.fds_denied:
            self._hint(emit, "some of the server's open fds are not readable: run wsmon as the same user")
        wall, mono = now()
        if sample.stopped:
            # Alive but frozen: its sockets accept (the kernel queues them) and nothing answers.
            self._down(emit, stopped_message(pid), "stopped")
        elif self._up is not True:
            continued, self._stopped = self._stopped, False
            self._up = True
            located = self.describe and not self.describe.startswith("pid ")
            detail = f"pid {pid} ({self.describe})" if located else f"pid {pid}"
            emit(
                ev.TargetUp(
                    wall=wall,
                    mono=mono,
                    target=self.target,
                    detail=detail + (" continued" if continued else ""),
                )
            )
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

    def _down(self, emit: Emit, error: str, kind: str) -> None:
        # Said once; but a stopped process that then exits or vanishes is news (the reducer counts one down).
        if self._up is False and not (self._stopped and kind != "stopped"):
            return
        self._up = False
        self._stopped = kind == "stopped"
        wall, mono = now()
        emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=error, kind=kind))

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
