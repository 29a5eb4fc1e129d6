"""No child outlives wsmon: kill -9 or SIGHUP a real `wsmon demo --headless` and look for its children.

The demo starts the reference server, its load generator and (here) an alert command; before
wsmon.children, the load generator and the alert command survived a kill -9 or a closed terminal
for ever (the load generator retrying the dead tap at 2-4 % CPU).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.timeout(120)

GONE_WITHIN_S = 10.0  # the watchdog's SIGTERM, then its SIGKILL three seconds later, plus a margin


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_for_children(pid: int, wanted: list[str], timeout: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _descendants(pid)
        lines = [_cmdline(child) for child in children]
        if all(any(word in line for line in lines) for word in wanted):
            return children
        time.sleep(0.3)
    raise AssertionError(f"wsmon did not start {wanted}; it runs {[_cmdline(c) for c in _descendants(pid)]}")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGHUP], ids=["kill-9", "hup"])
def test_no_child_outlives_wsmon(tmp_path: Path, signum: int) -> None:
    # rss_mib=1 breaches at the first process sample, so the alert command starts within seconds; it
    # sleeps, as a slow or hung alert command would.
    wsmon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsmon",
            "demo",
            "--headless",
            "--clients",
            "3",
            "--limit",
            "rss_mib=1",
            "--alert-cmd",
            "sleep 300; echo done",
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # as a terminal's shell would start it, in a group of its own
    )
    children: list[psutil.Process] = []
    try:
        children = _wait_for_children(wsmon.pid, ["wsmon.demo.loadgen", "wsmon.demo.server", "sleep 300"])
        time.sleep(1.0)  # let every child settle (watchdogs started)
        children = _descendants(wsmon.pid) or children
        names = sorted(_cmdline(child) for child in children)
        os.kill(wsmon.pid, signum)
        wsmon.wait(timeout=20)
        deadline = time.monotonic() + GONE_WITHIN_S
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [_cmdline(proc) for proc in _alive(children)]
        assert not left, f"left running after {signal.Signals(signum).name} of wsmon: {left} (of {names})"
    finally:
        if wsmon.poll() is None:
            wsmon.kill()
            wsmon.wait()
        for proc in _alive(children):  # reparented by now: only the list still finds them
            proc.kill()


def test_closing_the_dashboards_terminal_leaves_no_child(tmp_path: Path) -> None:
    """The dashboard in a real pseudo-terminal; the terminal hangs up (SIGHUP) and goes away."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: wsmon's dashboard on the pty
        os.chdir(tmp_path)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "wsmon", "demo", "--clients", "3"])
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    os.read(fd, 65536)  # keep the terminal drained, as a terminal would
            lines = [_cmdline(child) for child in _descendants(pid)]
            if any("wsmon.demo.loadgen" in line for line in lines) and any(line == "cat" for line in lines):
                break
        children = _descendants(pid)
        assert any("wsmon.demo.loadgen" in _cmdline(child) for child in children)
        os.kill(pid, signal.SIGHUP)
        os.close(fd)
        deadline = time.monotonic() + 20
        while not os.waitpid(pid, os.WNOHANG)[0]:
            assert time.monotonic() < deadline, "wsmon did not end on SIGHUP"
            time.sleep(0.2)
        deadline = time.monotonic() + GONE_WITHIN_S
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [_cmdline(proc) for proc in _alive(children)]
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for proc in _alive(children):
            proc.kill()
