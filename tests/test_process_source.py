"""The process source against real child processes: CPU and RSS against /proc, exits, restarts, sockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for_events

from wsmon.core import events as ev
from wsmon.sources.process import (
    ProcessSampler,
    ProcessSource,
    pid_from_name,
    pid_from_port,
    port_of_local_url,
    tcp_states_on_port,
)

BURNER = Path(__file__).with_name("cpu_burner.py")
MIB = 1024 * 1024
Events = list[ev.Event]


class Burner:
    """tests/cpu_burner.py as a child; ``port`` is where it listens (0 when it does not)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BURNER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), f"burner did not start: {line!r}"
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def quit(self) -> None:
        """Ask it to exit with its --exit-code; it stays a zombie until ``reap``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()

    def reap(self) -> int:
        return self.proc.wait(timeout=5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def burner(*args: str) -> Iterator[Burner]:
    child = Burner(*args)
    try:
        yield child
    finally:
        child.kill()


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def vm_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_cpu_is_the_burned_share_of_one_core_and_rss_matches_proc() -> None:
    share, mib = 0.40, 64
    with burner("--share", str(share), "--mib", str(mib)) as child:
        per_core, per_machine = ProcessSampler(), ProcessSampler(cpu_basis="machine")
        per_core.sample(child.pid, None)
        per_machine.sample(child.pid, None)
        ticks_before, wall_before = cpu_ticks(child.pid), time.monotonic()
        time.sleep(5.0)  # the measuring window itself, not a wait for something to happen
        before = vm_rss_bytes(child.pid)
        sample = per_core.sample(child.pid, None)
        ticks_after, wall_after = cpu_ticks(child.pid), time.monotonic()
        machine = per_machine.sample(child.pid, None)
        after = vm_rss_bytes(child.pid)
    # What the burner really got, from /proc: on a loaded machine it gets less than it asks for.
    got = (ticks_after - ticks_before) / os.sysconf("SC_CLK_TCK") / (wall_after - wall_before) * 100

    cpu, rss_mib = sample.cpu_percent, sample.rss_bytes / MIB
    print(f"cpu {cpu:.1f} % of a core (target {share * 100:.0f}), rss {rss_mib:.1f} MiB")
    assert sample.cpu_percent == pytest.approx(got, abs=5.0)
    assert got > share * 100 * 0.5  # the burner did burn: the comparison means something
    assert machine.cpu_percent == pytest.approx(
        sample.cpu_percent / per_machine.cores, abs=5.0 / per_machine.cores
    )
    proc_rss = (before + after) / 2
    assert sample.rss_bytes == pytest.approx(proc_rss, rel=0.02)
    assert mib * MIB <= sample.rss_bytes < (mib + 40) * MIB  # the allocation, plus the interpreter
    assert sample.processes == 1 and sample.threads >= 1 and sample.fds >= 3


async def run_until(source: ProcessSource, done: Callable[[Events], bool], timeout: float = 10.0) -> Events:
    events: Events = []
    reached = asyncio.Event()

    def emit(event: ev.Event) -> None:
        events.append(event)
        if done(events):
            reached.set()

    task = asyncio.create_task(source.run(emit))
    try:
        await asyncio.wait_for(reached.wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"condition not reached; events: {events}") from None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return events


def of(events: Events, kind: type[ev.Event]) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


async def test_an_exit_is_down_with_the_exit_code_of_a_child() -> None:
    with burner("--exit-code", "3") as child:
        source = ProcessSource.for_pid(child.pid, interval=0.05)
        events: Events = []
        task = asyncio.create_task(source.run(events.append))
        try:
            await wait_for_events(events, lambda es: bool(of(es, ev.ProcessSample)))
            child.quit()
            await wait_for_events(events, lambda es: bool(of(es, ev.TargetDown)))
            await asyncio.sleep(0.2)  # a few more samples: still down once, nothing else
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # wsmon only peeked at the status: whoever started the child still reaps it, with its code.
        assert child.reap() == 3
    (down,) = of(events, ev.TargetDown)
    assert (down.error, down.kind) == (f"process {child.pid} exited with code 3", "exited")
    assert of(events, ev.TargetUp)[0].detail == f"pid {child.pid}"
    assert all(s.pid == child.pid for s in of(events, ev.ProcessSample))
    assert events.index(down) > events.index(of(events, ev.ProcessSample)[-1])


async def test_a_new_process_on_the_same_port_is_followed() -> None:
    first = Burner("--listen", "0")
    port = first.port
    second: Burner | None = None
    source = ProcessSource.for_port(port, interval=0.05)
    events: Events = []
    task = asyncio.create_task(source.run(events.append))
    try:
        await wait_for_events(events, lambda es: bool(of(es, ev.ProcessSample)))
        first.quit()
        await wait_for_events(events, lambda es: bool(of(es, ev.TargetDown)))
        second = Burner("--listen", str(port))
        await wait_for_events(events, lambda es: any(s.pid == second.pid for s in of(es, ev.ProcessSample)))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        first.kill()
        if second is not None:
            second.kill()
    assert second is not None
    added = of(events, ev.TargetAdded)[0]
    assert added.address == f"listening on port {port}"
    ups = of(events, ev.TargetUp)
    assert [u.detail for u in ups] == [
        f"pid {first.pid} (listening on port {port})",
        f"pid {second.pid} (listening on port {port})",
    ]
    (down,) = of(events, ev.TargetDown)
    assert down.error == f"process {first.pid} exited with code 0"
    assert {s.pid for s in of(events, ev.ProcessSample)} == {first.pid, second.pid}
    assert all(s.tcp.get("LISTEN") == 1 for s in of(events, ev.ProcessSample))


def test_pid_from_port_finds_the_listening_child_and_tcp_states_follow_its_sockets() -> None:
    with burner("--listen", "0") as child:
        assert pid_from_port(child.port) == child.pid
        clients = [socket.create_connection(("127.0.0.1", child.port)) for _ in range(3)]
        try:
            poll(lambda: tcp_states_on_port(child.port) == {"LISTEN": 1, "ESTABLISHED": 3})
        finally:
            for client in clients:
                client.close()
        # The child never closes what it accepted: the clients' FINs leave its ends in CLOSE_WAIT.
        poll(lambda: tcp_states_on_port(child.port) == {"LISTEN": 1, "CLOSE_WAIT": 3})
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        assert pid_from_port(unused.getsockname()[1]) is None  # bound, not listening


def poll(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_pid_from_name_finds_the_oldest_match_and_never_wsmon_itself() -> None:
    tag = f"wsmon-test-{uuid.uuid4().hex}"
    with burner("--tag", tag) as older, burner("--tag", tag):
        assert pid_from_name(tag) == older.pid
    assert pid_from_name(tag) is None
    # This very process's command line names pytest: it must not find itself.
    assert pid_from_name("pytest") != os.getpid()


async def test_a_process_not_there_at_start_is_down_until_it_appears() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = ProcessSource.for_port(port, interval=0.05)
    events: Events = []
    task = asyncio.create_task(source.run(events.append))
    child: Burner | None = None
    try:
        await wait_for_events(events, lambda es: bool(of(es, ev.TargetDown)))
        child = Burner("--listen", str(port))
        await wait_for_events(events, lambda es: bool(of(es, ev.ProcessSample)))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if child is not None:
            child.kill()
    (down,) = of(events, ev.TargetDown)
    assert (down.kind, down.error) == ("missing", f"no process found listening on port {port}")
    assert of(events, ev.TargetUp)[0].mono > down.mono


def test_the_default_port_comes_from_a_local_url_only() -> None:
    assert port_of_local_url("ws://127.0.0.1:8080/ws") == 8080
    assert port_of_local_url("ws://localhost/") == 80
    assert port_of_local_url("wss://[::1]/") == 443
    assert port_of_local_url("ws://example.com:8080/") is None


def test_netlink_and_proc_count_the_same_tcp_states() -> None:
    """The cheap netlink query must agree with /proc/net/tcp, the text every tool reads."""
    import socket as _socket

    from wsmon.sources.process import tcp_states_from_proc
    from wsmon.sources.sockdiag import tcp_states_netlink

    server = _socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(20)
    port = server.getsockname()[1]
    clients = [_socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
    accepted = [server.accept()[0] for _ in range(6)]
    try:
        for client in clients[:2]:
            client.close()  # their server-side ends go to CLOSE_WAIT
        deadline = time.monotonic() + 2
        while tcp_states_from_proc(port).get("CLOSE_WAIT", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        from_proc = tcp_states_from_proc(port)
        assert from_proc == {"LISTEN": 1, "ESTABLISHED": 4, "CLOSE_WAIT": 2}
        assert tcp_states_netlink(port) == from_proc
    finally:
        for sock in [*clients, *accepted, server]:
            sock.close()


async def test_samples_are_an_interval_apart_start_to_start_even_when_a_step_is_slow() -> None:
    # Finding a port's owner scans /proc, which on a busy machine takes a good part of an interval; the
    # next step must not wait a whole interval more, or a restarted server is UP later than two intervals.
    def slow_find() -> int:
        time.sleep(0.3)
        return os.getpid()

    source = ProcessSource(slow_find, interval=0.5)
    events = await run_until(source, lambda es: len(of(es, ev.ProcessSample)) >= 4)
    times = [sample.mono for sample in of(events, ev.ProcessSample)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap < 0.5 + 0.15 for gap in gaps), gaps
