"""ServerSource with real child processes: a crash is one error event with its stack trace, an exit
with its code or signal and the last lines, and a DOWN; wsmon stopping its own server is no outage,
takes the server's children too, and gets past a server that ignores SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from wsmon.core import events as ev
from wsmon.sources.server import ServerSource

FIXTURE = str(Path(__file__).parent / "fixtures" / "crashing_server.py")
STACK_LINES = ["Error: boom", "    at foo (/srv/app/x.js:1:1)", "    at bar (/srv/app/y.js:2:7)"]
WAIT_S = 10.0


def alive(pid: int) -> bool:
    """Running, that is: a zombie (dead, not yet reaped by whoever adopted it) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def gone_within(pids: list[int], timeout: float) -> list[int]:
    """The pids still running after ``timeout`` (an empty list as soon as all are gone)."""
    deadline = time.monotonic() + timeout
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return running


async def pids_from(path: Path, timeout: float = WAIT_S) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"the fixture never wrote {path}")
        await asyncio.sleep(0.02)
    return {name: int(pid) for name, pid in json.loads(path.read_text()).items()}


class Recorder:
    """The emit callback: keeps every event and wakes whoever waits for a condition on them."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, what: str, condition: Callable[[Recorder], bool], timeout: float = WAIT_S) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition(self):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{what}: not within {timeout} s; events: {self.events}") from None


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids a test started, directly or not: whatever still runs at teardown is killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def running(source: ServerSource, leftovers: list[int]) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    task = asyncio.create_task(source.run(recorder))
    try:
        await asyncio.wait_for(source.started.wait(), WAIT_S)
        assert source.process is not None
        leftovers.append(source.process.pid)
        yield recorder
    finally:
        # Everything the test started goes first: a survivor holding the log pipes would keep run() going.
        if source.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(source.process.pid, signal.SIGKILL)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def exited(recorder: Recorder) -> bool:
    return bool(recorder.of(ev.ServerExit))


async def test_a_crash_is_one_error_with_its_stack_an_exit_with_code_and_last_lines_and_a_down(
    leftovers: list[int],
) -> None:
    source = ServerSource([sys.executable, FIXTURE, "crash"], target="server")
    async with running(source, leftovers) as recorder:
        await recorder.until("the exit", exited)
        await recorder.until("the DOWN", lambda r: bool(r.of(ev.TargetDown)))

    errors = [line for line in recorder.of(ev.LogLine) if line.level == "error"]
    assert len(errors) == 1, errors
    # The whole trace folded into the error line it follows: one event with its cause, not four lines.
    assert errors[0].text.splitlines()[:3] == STACK_LINES
    assert errors[0].source == "server"
    # The JSON log lines before it were parsed as log lines, not as text.
    texts = [line.text for line in recorder.of(ev.LogLine)]
    assert "server listening" in texts
    assert ("warn", "about to fail") in [(line.level, line.text) for line in recorder.of(ev.LogLine)]
    assert [c.conn for c in recorder.of(ev.ConnectionOpened)] == ["c1"]

    (exit_event,) = recorder.of(ev.ServerExit)
    assert exit_event.code == 3
    assert exit_event.signal is None
    assert exit_event.pid == source.process.pid  # type: ignore[union-attr]
    assert exit_event.last_lines[-4:-1] == STACK_LINES
    assert json.loads(exit_event.last_lines[-5])["msg"] == "about to fail"

    (down,) = recorder.of(ev.TargetDown)
    assert (down.target, down.kind, down.error) == ("server", "exited", "exited with code 3")
    # The order a reader sees: the error and its cause, then the exit, then the outage.
    order = [type(e) for e in recorder.events if isinstance(e, ev.LogLine | ev.ServerExit | ev.TargetDown)]
    assert order[-3:] == [ev.LogLine, ev.ServerExit, ev.TargetDown]


async def test_a_server_killed_by_sigkill_is_recorded_with_the_signal(leftovers: list[int]) -> None:
    source = ServerSource([sys.executable, FIXTURE, "run"])
    async with running(source, leftovers) as recorder:
        await recorder.until("the ready line", lambda r: any(x.text == "ready" for x in r.of(ev.LogLine)))
        assert source.pid is not None
        os.kill(source.pid, signal.SIGKILL)
        await recorder.until("the DOWN", lambda r: bool(r.of(ev.TargetDown)))

    (exit_event,) = recorder.of(ev.ServerExit)
    assert (exit_event.code, exit_event.signal) == (None, signal.SIGKILL.value)
    assert json.loads(exit_event.last_lines[-1])["msg"] == "ready"
    (down,) = recorder.of(ev.TargetDown)
    assert (down.kind, down.error) == ("exited", "killed by SIGKILL")
    assert source.pid is None


async def test_stop_kills_a_server_that_ignores_sigterm_within_the_stop_timeout_and_is_no_outage(
    leftovers: list[int],
) -> None:
    source = ServerSource([sys.executable, FIXTURE, "ignore-term"], stop_timeout=1.0)
    async with running(source, leftovers) as recorder:
        await recorder.until("the ready line", lambda r: any(x.text == "ready" for x in r.of(ev.LogLine)))
        pid = source.pid
        assert pid is not None
        started = time.monotonic()
        await asyncio.wait_for(source.stop(), 5)
        took = time.monotonic() - started
        await recorder.until("the exit", exited)

    assert not alive(pid)
    assert 1.0 <= took < 2.5, f"stop() took {took:.2f} s with stop_timeout 1.0"
    (exit_event,) = recorder.of(ev.ServerExit)
    assert exit_event.signal == signal.SIGKILL.value  # SIGTERM was ignored, so SIGKILL it was
    assert recorder.of(ev.TargetDown) == []  # wsmon stopped it: not an outage


async def test_stop_takes_the_servers_children_with_it(tmp_path: Path, leftovers: list[int]) -> None:
    pids_file = tmp_path / "pids.json"
    sleeper_file = tmp_path / "sleeper.pid"
    # A shell that starts a background worker, then becomes the server: the worker is in its group.
    server = shlex.join([sys.executable, FIXTURE, "run", "--pids", str(pids_file)])
    script = f"sleep 300 & echo $! > {shlex.quote(str(sleeper_file))}; exec {server}"
    source = ServerSource(["sh", "-c", script], stop_timeout=3.0)
    async with running(source, leftovers) as recorder:
        pids = await pids_from(pids_file)
        sleeper = int(sleeper_file.read_text())
        leftovers.append(sleeper)
        assert pids["server"] == source.pid  # the shell exec'd the server: its pid is the one watched
        assert alive(pids["server"]) and alive(sleeper)
        await asyncio.wait_for(source.stop(), 8)
        await recorder.until("the exit", exited)
        still_running = await gone_within([pids["server"], sleeper], 3.0)

    assert still_running == [], f"left running after stop(): {still_running}"
    (exit_event,) = recorder.of(ev.ServerExit)
    assert exit_event.signal == signal.SIGTERM.value
    assert recorder.of(ev.TargetDown) == []


async def test_a_crash_that_leaves_a_worker_behind_is_still_recorded_and_the_worker_is_stopped(
    tmp_path: Path, leftovers: list[int]
) -> None:
    pids_file = tmp_path / "pids.json"
    source = ServerSource([sys.executable, FIXTURE, "orphaning-crash", "--pids", str(pids_file)])
    async with running(source, leftovers) as recorder:
        pids = await pids_from(pids_file)
        leftovers.append(pids["grandchild"])
        try:
            await recorder.until("the exit of the crashed server", exited, timeout=5.0)
        finally:
            await asyncio.wait_for(source.stop(), 8)
        still_running = await gone_within([pids["grandchild"]], 3.0)

    (exit_event,) = recorder.of(ev.ServerExit)
    assert exit_event.code == 3
    assert [d.error for d in recorder.of(ev.TargetDown)] == ["exited with code 3"]
    assert still_running == [], "the crashed server's worker was left running"


async def test_a_python_servers_log_arrives_line_by_line_without_dash_u(leftovers: list[int]) -> None:
    """A pipe makes Python's stdout block-buffered: without PYTHONUNBUFFERED the line would wait in
    the server's buffer (here for ever: the server sleeps, then is killed)."""
    script = "import time; print('client c1 connected'); time.sleep(60)"
    source = ServerSource([sys.executable, "-c", script])
    saved = os.environ.pop("PYTHONUNBUFFERED", None)
    try:
        async with running(source, leftovers) as recorder:
            await recorder.until("the line", lambda r: bool(r.of(ev.ConnectionOpened)))
            assert recorder.of(ev.ConnectionOpened)[0].conn == "c1"
    finally:
        if saved is not None:
            os.environ["PYTHONUNBUFFERED"] = saved
