"""A server process stopped with SIGSTOP is STOPPED, not UP, until SIGCONT: a real child process, the
process source, a real `wsmon attach` recording, and the header drawn from the replayed state."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import clean_env, wait_for_events
from test_cli_attach import LiveRecording
from test_probe import run_until as run_probe_until
from test_process_source import Events, of

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.core.state import State
from wsmon.sources.probe import ProbeConfig, ProbeSource
from wsmon.sources.process import ProcessSource
from wsmon.store.reader import RecordingReader
from wsmon.ui.widgets.header_bar import HeaderBar
from wsmon.ui.widgets.target_panel import status_parts


@contextlib.contextmanager
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield child
    finally:
        child.kill()
        child.wait(10)


def process_transitions(events: list[ev.Event]) -> list[tuple[str, str]]:
    return [
        (type(e).__name__, e.kind if isinstance(e, ev.TargetDown) else e.detail)
        for e in events
        if isinstance(e, ev.TargetUp | ev.TargetDown) and e.target == "process"
    ]


async def test_sigstop_is_stopped_and_sigcont_brings_it_back() -> None:
    with sleeper() as child:
        source = ProcessSource.for_pid(child.pid, interval=0.05)
        events: Events = []
        task = asyncio.create_task(source.run(events.append))
        try:
            await wait_for_events(events, lambda es: bool(of(es, ev.TargetUp)))
            os.kill(child.pid, signal.SIGSTOP)
            await wait_for_events(events, lambda es: bool(of(es, ev.TargetDown)))
            await asyncio.sleep(0.3)  # more samples while stopped: still one down, no up
            assert len(of(events, ev.TargetDown)) == 1 and len(of(events, ev.TargetUp)) == 1
            os.kill(child.pid, signal.SIGCONT)
            await wait_for_events(events, lambda es: len(of(es, ev.TargetUp)) == 2)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    (down,) = of(events, ev.TargetDown)
    assert down.kind == "stopped"
    assert down.error == f"process {child.pid} is stopped (SIGSTOP or job control): it answers nothing"
    assert of(events, ev.TargetUp)[1].detail == f"pid {child.pid} continued"
    # A stopped process still has its memory and its threads: the samples go on.
    stopped_at, continued_at = events.index(down), events.index(of(events, ev.TargetUp)[1])
    assert any(isinstance(e, ev.ProcessSample) for e in events[stopped_at:continued_at])


async def test_a_stopped_process_that_is_killed_says_so() -> None:
    with sleeper() as child:
        source = ProcessSource.for_pid(child.pid, interval=0.05)
        events: Events = []
        task = asyncio.create_task(source.run(events.append))
        try:
            await wait_for_events(events, lambda es: bool(of(es, ev.TargetUp)))
            os.kill(child.pid, signal.SIGSTOP)
            await wait_for_events(events, lambda es: bool(of(es, ev.TargetDown)))
            os.kill(child.pid, signal.SIGKILL)
            await wait_for_events(events, lambda es: len(of(es, ev.TargetDown)) == 2)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [d.kind for d in of(events, ev.TargetDown)] == ["stopped", "exited"]
    assert of(events, ev.TargetDown)[1].error == f"process {child.pid} was killed by signal 9 (SIGKILL)"


def test_header_and_panels_say_stopped_from_the_state() -> None:
    reducer = Reducer()
    reducer.apply_many(
        [
            ev.TargetAdded(wall=1.0, mono=1.0, target="process", kind="process", address="pid 7"),
            ev.TargetUp(wall=1.0, mono=1.0, target="process", detail="pid 7"),
            ev.TargetDown(wall=3.0, mono=3.0, target="process", error="process 7 is stopped", kind="stopped"),
        ]
    )
    line = targets_line(reducer.state)
    assert "process: STOPPED" in line and "DOWN" not in line
    text = "".join(
        p if isinstance(p, str) else p[0] for p in status_parts(reducer.state.targets["process"], 5)
    )
    assert text.startswith("STOPPED 2s")
    reducer.apply(ev.TargetUp(wall=4.0, mono=4.0, target="process", detail="pid 7 continued"))
    assert "process: UP" in targets_line(reducer.state)


@pytest.mark.slow
def test_attach_records_stopped_and_continued(tmp_path: Path) -> None:
    record = tmp_path / "stop.wsmon"
    with sleeper() as child:
        attach = subprocess.Popen(
            [
                *(sys.executable, "-m", "wsmon", "attach", "--pid", str(child.pid), "--interval", "0.2"),
                *("--headless", "--duration", "30", "--record", str(record)),
            ],
            cwd=tmp_path,
            env=clean_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        live = LiveRecording(record)
        try:
            live.wait_for("process up", lambda es: bool(process_transitions(es)), 30)
            os.kill(child.pid, signal.SIGSTOP)
            live.wait_for("process stopped", lambda es: len(process_transitions(es)) == 2, 15)
            time.sleep(0.5)
            os.kill(child.pid, signal.SIGCONT)
            live.wait_for("process continued", lambda es: len(process_transitions(es)) == 3, 15)
        finally:
            os.kill(child.pid, signal.SIGCONT)
            live.close()
            attach.send_signal(signal.SIGINT)
            attach.communicate(timeout=30)
    reader = RecordingReader(record)
    events = list(reader.iter_events())
    assert process_transitions(events) == [
        ("TargetUp", f"pid {child.pid}"),
        ("TargetDown", "stopped"),
        ("TargetUp", f"pid {child.pid} continued"),
    ]
    stopped_seq = next(
        seq for seq, e in enumerate(events, 1) if isinstance(e, ev.TargetDown) and e.target == "process"
    )
    state = reader.state_at_seq(stopped_seq)
    assert "process: STOPPED" in targets_line(state)
    reader.close()


def targets_line(state: State) -> str:
    """The header's target states as written when they fit (not abbreviated)."""
    return "   ".join(unit.plain for unit in HeaderBar._target_units(state, short=False))


def transitions_of(events: list[ev.Event], target: str) -> list[tuple[str, str]]:
    """Ups and downs from the first up on (the process is missing until the server has started)."""
    seen = [
        (type(e).__name__, e.kind if isinstance(e, ev.TargetDown) else e.detail)
        for e in events
        if isinstance(e, ev.TargetUp | ev.TargetDown) and e.target == target
    ]
    ups = [i for i, (name, _) in enumerate(seen) if name == "TargetUp"]
    return seen[ups[0] :] if ups else []


@pytest.mark.slow
def test_a_server_wsmon_started_shows_stopped_as_server_and_as_process(tmp_path: Path) -> None:
    record = tmp_path / "server.wsmon"
    command = f"{sys.executable} -c 'import time; time.sleep(120)'"
    attach = subprocess.Popen(
        [
            *(sys.executable, "-m", "wsmon", "attach", "--server", command, "--interval", "0.2"),
            *("--headless", "--duration", "60", "--record", str(record)),
        ],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    live = LiveRecording(record)
    pid = 0
    try:
        live.wait_for("server up", lambda es: bool(transitions_of(es, "server")), 30)
        pid = int(transitions_of(live.events, "server")[0][1].removeprefix("pid "))
        live.wait_for("process up", lambda es: bool(transitions_of(es, "process")), 30)
        os.kill(pid, signal.SIGSTOP)
        both_stopped = lambda es: all(len(transitions_of(es, t)) == 2 for t in ("server", "process"))  # noqa: E731
        live.wait_for("both stopped", both_stopped, 15)
        os.kill(pid, signal.SIGCONT)
        both_back = lambda es: all(len(transitions_of(es, t)) == 3 for t in ("server", "process"))  # noqa: E731
        live.wait_for("both continued", both_back, 15)
        os.kill(pid, signal.SIGSTOP)  # wsmon ends while its server is stopped: it must still end it
        live.wait_for("stopped again", lambda es: len(transitions_of(es, "server")) == 4, 15)
    finally:
        live.close()
        started = time.monotonic()
        attach.send_signal(signal.SIGINT)
        _, stderr = attach.communicate(timeout=30)
        took = time.monotonic() - started
    assert took < 4.0, f"ending a stopped server took {took:.1f} s; {stderr}"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    events = list(RecordingReader(record).iter_events())
    assert transitions_of(events, "server")[:4] == [
        ("TargetUp", f"pid {pid}"),
        ("TargetDown", "stopped"),
        ("TargetUp", f"pid {pid} continued"),
        ("TargetDown", "stopped"),
    ]
    assert [t for t, _ in transitions_of(events, "process")[:3]] == ["TargetUp", "TargetDown", "TargetUp"]


async def test_a_probe_to_a_stopped_server_says_the_handshake_got_no_answer() -> None:
    """The kernel still accepts TCP connections for a stopped server: the step that fails is the
    HTTP upgrade, and the probe says so (while the process target says STOPPED)."""
    fixture = Path(__file__).parent / "fixtures" / "echo_server.py"
    server = subprocess.Popen([sys.executable, str(fixture)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        config = ProbeConfig(url=f"ws://127.0.0.1:{port}/", count=1, interval=0.1, open_timeout=0.5)
        up = await run_probe_until(ProbeSource(config), lambda es: bool(of(es, ev.TargetUp)))
        assert not of(up, ev.TargetDown)
        os.kill(server.pid, signal.SIGSTOP)
        events = await run_probe_until(ProbeSource(config), lambda es: bool(of(es, ev.TargetDown)))
        check = await ProbeSource(config).check()
    finally:
        server.kill()
        server.wait(10)
    down = of(events, ev.TargetDown)[0]
    assert down.kind == "timeout"
    assert (
        down.error == "handshake: no answer to the upgrade request within 0.5 s (the connection was accepted)"
    )
    assert not check.ok and check.error == down.error and "SIGSTOP" in check.hint
