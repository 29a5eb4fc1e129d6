"""Finding the server's process, and what /proc says about its port: the process listening on a port
(by the socket's inode), the oldest one with a name, whether a URL points at this machine, the TCP
states of a port's sockets, and how a child of wsmon's exited."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import psutil

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
