"""`wsmon attach --server CMD --tap …` end to end, as child processes with real sockets.

The done-when of "see real traffic and the server's own failures": clients through the tap and a
server wsmon started show up live with their connections, close codes, delivery failures (from acks
and from the server's log lines), and a crash when the server dies. And wsmon's own exit, graceful or
kill -9, leaves no server process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import free_port, wait_until
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from wsmon.core import events as ev
from wsmon.store.format import RecordingError
from wsmon.store.reader import RecordingReader

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
CRASHING_SERVER = str(FIXTURES / "crashing_server.py")
ACK_SERVER = str(FIXTURES / "ack_server.py")
WAIT_S = 15.0
REFUSED_ATTEMPTS = 3



def alive(pid: int) -> bool:
    """Running, that is: a zombie (dead, not yet reaped by whoever adopted it) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def still_running_after(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return running


@dataclass
class Wsmon:
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def finish(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    @property
    def error_output(self) -> str:
        return self.stderr.read_text(errors="replace")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[Callable[..., Wsmon], list[int]]]:
    """Starts `python -m wsmon attach …`; at teardown wsmon and every pid the test noted are killed."""
    children: list[Wsmon] = []
    pids: list[int] = []

    def start(*args: str) -> Wsmon:
        env = {k: v for k, v in os.environ.items() if k not in ("WSMON_URL", "REDIS_URL", "DATABASE_URL")}
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no user wsmon.toml
        number = len(children)
        stdout, stderr = tmp_path / f"wsmon{number}.out", tmp_path / f"wsmon{number}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "wsmon", "attach", *args],
                cwd=tmp_path,  # no wsmon.toml or .env from the repository
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        children.append(Wsmon(proc, stdout, stderr))
        return children[-1]

    yield start, pids
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait(10)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class LiveRecording:
    """Reads a recording while wsmon writes it, keeping every event seen so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader: RecordingReader | None = None
        self.events: list[ev.Event] = []

    def poll(self) -> list[ev.Event]:
        if self.reader is None:
            # Until the writer's -wal file exists the reader would take the file for a finished one.
            if not Path(f"{self.path}-wal").exists():
                return self.events
            try:
                self.reader = RecordingReader(self.path)
            except RecordingError:  # created, its header not committed yet
                return self.events
        self.reader.refresh()
        self.events.extend(self.reader.iter_events(start_seq=len(self.events)))
        return self.events

    def wait_for(
        self, what: str, predicate: Callable[[list[ev.Event]], bool], timeout: float = WAIT_S
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.poll()):
            if time.monotonic() > deadline:
                tail = [type(e).__name__ for e in self.events[-30:]]
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; last events: {tail}")
            time.sleep(0.1)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def of(events: list[ev.Event], event_type: type[ev.Event], **fields: Any) -> list[Any]:
    return [
        e for e in events if isinstance(e, event_type) and all(getattr(e, k) == v for k, v in fields.items())
    ]


def server_pid(events: list[ev.Event]) -> int | None:
    for up in of(events, ev.TargetUp, target="server"):
        match = re.fullmatch(r"pid (\d+)", up.detail)
        if match:
            return int(match.group(1))
    return None


def upstream_reachable(events: list[ev.Event]) -> bool:
    return any(up.detail.startswith("upstream ") for up in of(events, ev.TargetUp, target="tap"))


# --- no orphans ------------------------------------------------------------------------------------


def start_spawning_server(
    start: Callable[..., Wsmon], pids: list[int], tmp_path: Path
) -> tuple[Wsmon, dict[str, int]]:
    """wsmon with a --server that starts a worker (in its group, sharing its output) and sleeps."""
    pids_file = tmp_path / "server-pids.json"
    command = shlex.join([sys.executable, CRASHING_SERVER, "spawn", "--pids", str(pids_file)])
    wsmon = start("--server", command, "--headless", "--duration", "30", "--interval", "0.5")
    wait_until(pids_file.exists, WAIT_S, "the server and its worker")
    started = {name: int(pid) for name, pid in json.loads(pids_file.read_text()).items()}
    pids.extend(started.values())
    server = psutil.Process(started["server"])
    assert server.ppid() == wsmon.proc.pid  # the command itself, not a shell, is wsmon's child
    assert os.getpgid(started["grandchild"]) == started["server"]  # its own group, led by the server
    return wsmon, started


def test_sigterm_to_wsmon_stops_the_server_and_its_worker(
    started: tuple[Callable[..., Wsmon], list[int]], tmp_path: Path
) -> None:
    start, pids = started
    wsmon, children = start_spawning_server(start, pids, tmp_path)
    wsmon.proc.send_signal(signal.SIGTERM)
    assert wsmon.finish(10) == 0, wsmon.error_output
    assert still_running_after(list(children.values()), 3.0) == []
    assert "Traceback" not in wsmon.error_output


def test_kill_9_of_wsmon_takes_the_server_with_it(
    started: tuple[Callable[..., Wsmon], list[int]], tmp_path: Path
) -> None:
    start, pids = started
    wsmon, children = start_spawning_server(start, pids, tmp_path)
    wsmon.proc.kill()
    wsmon.finish(5)
    # The parent-death signal (SIGTERM) reaches the server itself.
    assert still_running_after([children["server"]], 5.0) == []


def test_kill_9_of_wsmon_takes_the_servers_worker_with_it(
    started: tuple[Callable[..., Wsmon], list[int]], tmp_path: Path
) -> None:
    start, pids = started
    wsmon, children = start_spawning_server(start, pids, tmp_path)
    wsmon.proc.kill()
    wsmon.finish(5)
    assert still_running_after([children["server"]], 5.0) == []
    assert still_running_after([children["grandchild"]], 2.0) == []


# --- the done-when: tap + server -------------------------------------------------------------------


@dataclass
class ClientsSaw:
    delivered: list[str]  # message ids the sender was told were delivered
    not_open: list[str]  # message ids the sender got {"type":"error","error":"Connection not open"} for
    vanished_peer: str  # the vanished client's own address, as the tap saw it


async def register(url: str, device: str) -> ClientConnection:
    ws = await connect(url, proxy=None, ping_interval=None)
    await ws.send(json.dumps({"type": "register", "device": device}))
    assert json.loads(await ws.recv()) == {"type": "registered", "device": device}
    return ws


async def recv_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] == kind:
            return message


async def demo_clients(url: str) -> ClientsSaw:
    """Three devices through the tap: a delivered message, then one device vanishes and a message to it
    fails while the server still has it registered; the other two then leave normally."""
    alice, bob, carol = [await register(url, name) for name in ("alice", "bob", "carol")]
    await alice.send(json.dumps({"type": "message", "id": "m-ok", "to": "bob", "body": "hi"}))
    forwarded = await recv_type(bob, "message")
    await bob.send(json.dumps({"type": "ack", "id": forwarded["id"]}))
    delivered = await recv_type(alice, "delivered")

    vanished_peer = "{}:{}".format(*carol.local_address[:2])
    carol.transport.abort()  # no close frame: 1006 on both sides of the tap
    not_open: list[str] = []
    for attempt in range(25):
        # Until the server has seen carol go; its registry keeps her for the stale grace after that.
        message_id = f"m-lost-{attempt}"
        await alice.send(json.dumps({"type": "message", "id": message_id, "to": "carol", "body": "?"}))
        reply = json.loads(await asyncio.wait_for(alice.recv(), 5))
        if reply == {"type": "error", "id": message_id, "error": "Connection not open"}:
            not_open.append(message_id)
            break
        await asyncio.sleep(0.05)
    await alice.close(1000, "done")
    await bob.close(1000, "done")
    return ClientsSaw(delivered=[delivered["id"]], not_open=not_open, vanished_peer=vanished_peer)


async def clients_after_the_crash(url: str, attempts: int) -> int:
    """How many of ``attempts`` connections through the tap fail, now that the server is gone."""
    failed = 0
    for _ in range(attempts):
        try:
            async with connect(url, proxy=None, open_timeout=5):
                pass
        except (OSError, InvalidHandshake, ConnectionClosed):
            failed += 1
    return failed


def test_clients_through_the_tap_and_a_server_wsmon_started_show_up_live_with_failures_and_a_crash(
    started: tuple[Callable[..., Wsmon], list[int]], tmp_path: Path
) -> None:
    start, pids = started
    server_port, tap_port = free_port(), free_port()
    record = tmp_path / "run.wsmon"
    server_command = shlex.join(
        [sys.executable, "-u", "-m", "wsmon.demo.server", "--port", str(server_port),
         "--heartbeat-timeout", "2", "--stale-grace", "5"]
    )  # fmt: skip
    wsmon = start(
        "--server", server_command,
        "--tap", f"127.0.0.1:{tap_port}=ws://127.0.0.1:{server_port}/",
        "--headless", "--duration", "12", "--record", str(record), "--interval", "0.5",
    )  # fmt: skip
    live = LiveRecording(record)
    try:
        live.wait_for(
            "the server's pid and the tap's upstream", lambda e: bool(server_pid(e) and upstream_reachable(e))
        )
        pid = server_pid(live.events)
        assert pid is not None
        pids.append(pid)

        saw = asyncio.run(demo_clients(f"ws://127.0.0.1:{tap_port}/"))
        assert saw.delivered == ["m-ok"]
        assert len(saw.not_open) == 1, "the server's error reply never reached the sender through the tap"

        # Live: everything is in the recording while wsmon is still running.
        live.wait_for(
            "the vanished client's 1006 from both the tap and the server, and the failure",
            lambda e: (
                len(of(e, ev.ConnectionClosed, code=1006)) >= 2
                and bool(of(e, ev.DeliveryFailed, reason="Connection not open"))
                and len(of(e, ev.ConnectionClosed, code=1000)) >= 4
            ),
        )
        assert wsmon.proc.poll() is None
        os.kill(pid, signal.SIGKILL)
        live.wait_for("the server's exit", lambda e: bool(of(e, ev.ServerExit)))
        refused = asyncio.run(clients_after_the_crash(f"ws://127.0.0.1:{tap_port}/", REFUSED_ATTEMPTS))
        assert refused == REFUSED_ATTEMPTS
        live.wait_for("the refused attempts", lambda e: len(of(e, ev.ConnectFailed)) >= REFUSED_ATTEMPTS)
        # The headless verdict decides the exit code: 1 for a breach, else 0 (too few to judge is not one).
        code = wsmon.finish(WAIT_S)
        assert code == (1 if wsmon.stdout.read_text().startswith("wsmon report: BREACH") else 0), (
            wsmon.error_output
        )
    finally:
        live.close()
    assert "Traceback" not in wsmon.error_output, wsmon.error_output

    with RecordingReader(record) as reader:
        events = list(reader.iter_events())
        state = reader.state_at_seq(reader.event_count)

    # Connections: the tap's rows carry the clients' addresses; the server log's rows of the same
    # connections point at them and are not counted again.
    tap_rows = {c.id: c for c in state.connections.values() if c.source == "tap"}
    server_rows = [c for c in state.connections.values() if c.source == "server"]
    assert len(tap_rows) == 3
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", c.peer) for c in tap_rows.values())
    assert saw.vanished_peer in {c.peer for c in tap_rows.values()}
    assert len(server_rows) == 3
    assert {c.mirror_of for c in server_rows} == set(tap_rows)
    assert state.opened_total == 3

    # The vanished client: 1006 seen by both, counted once; the two who left: 1000, counted once each.
    assert sorted(e.source for e in of(events, ev.ConnectionClosed, code=1006)) == ["server", "tap"]
    assert state.close_codes == {1006: 1, 1000: 2}
    vanished = next(c for c in tap_rows.values() if c.peer == saw.vanished_peer)
    assert (vanished.close_code, vanished.closed_by) == (1006, "neither")

    # Delivery: the failure from the server's log, with the id the sender's error reply named; the
    # delivered message counts as delivered, once, although the tap (which does not know the demo's
    # ack protocol) later reports it unacknowledged.
    (failure,) = of(events, ev.DeliveryFailed, reason="Connection not open")
    assert (failure.message_id, failure.source) == (saw.not_open[0], "server")
    assert state.failure_reasons.get("Connection not open") == 1
    assert "m-ok" not in {f.message_id for f in state.failures}
    assert state.delivered == 1

    # The crash: an exit with the signal and the server's last lines, and the server DOWN with its cause.
    (exit_event,) = of(events, ev.ServerExit)
    assert (exit_event.pid, exit_event.code, exit_event.signal) == (pid, None, signal.SIGKILL.value)
    assert exit_event.last_lines
    assert json.loads(exit_event.last_lines[-1])["msg"]  # the server's own JSON log lines
    assert any("Connection not open" in line for line in exit_event.last_lines)
    server_target = state.targets["server"]
    assert (server_target.up, server_target.error, server_target.error_kind) == (
        False,
        "killed by SIGKILL",
        "exited",
    )
    # A crash, not a wall of refusals: the clients' attempts after it are each counted, but the tap's
    # upstream goes DOWN once, after the server's exit and its cause were recorded.
    refusals = of(events, ev.ConnectFailed)
    assert [(f.target, f.kind) for f in refusals] == [("tap", "refused")] * REFUSED_ATTEMPTS
    after_crash = [e for e in events if e.mono >= exit_event.mono]
    (tap_down,) = of(after_crash, ev.TargetDown, target="tap")
    # The tap learns of the death from the server's exit, before any client's refused attempt.
    assert (tap_down.kind, tap_down.error) == ("exited", "upstream server killed by SIGKILL")
    server_down = of(events, ev.TargetDown, target="server")
    assert [d.error for d in server_down] == ["killed by SIGKILL"]
    assert exit_event.mono <= server_down[0].mono <= tap_down.mono <= refusals[0].mono
    # The server's process was watched while it ran (the process panel).
    assert of(events, ev.ProcessSample)
    assert still_running_after([pid], 1.0) == []


def test_a_failure_from_an_ack_through_the_tap(
    started: tuple[Callable[..., Wsmon], list[int]], tmp_path: Path
) -> None:
    start, pids = started
    server_port, tap_port = free_port(), free_port()
    record = tmp_path / "acks.wsmon"
    wsmon = start(
        "--server", shlex.join([sys.executable, ACK_SERVER, "--port", str(server_port)]),
        "--tap", f"127.0.0.1:{tap_port}=ws://127.0.0.1:{server_port}/",
        "--headless", "--duration", "30", "--record", str(record), "--interval", "0.5",
    )  # fmt: skip
    live = LiveRecording(record)

    async def client() -> list[dict[str, Any]]:
        async with connect(f"ws://127.0.0.1:{tap_port}/", proxy=None) as ws:
            replies = []
            for message_id in ("ok-1", "fail-1"):
                await ws.send(json.dumps({"id": message_id, "body": "x"}))
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            return replies

    try:
        live.wait_for(
            "the server's pid and the tap's upstream", lambda e: bool(server_pid(e) and upstream_reachable(e))
        )
        pid = server_pid(live.events)
        assert pid is not None
        pids.append(pid)
        replies = asyncio.run(client())
        assert [r["status"] for r in replies] == ["ok", "failed"]
        live.wait_for(
            "the failure from the ack",
            lambda e: bool(of(e, ev.DeliveryFailed)) and bool(of(e, ev.LatencySample)),
        )
        wsmon.proc.send_signal(signal.SIGTERM)  # done: stop early, as Ctrl-C would
        # The headless verdict decides the exit code: 1 for a breach, else 0 (too few to judge is not one).
        code = wsmon.finish(WAIT_S)
        assert code == (1 if wsmon.stdout.read_text().startswith("wsmon report: BREACH") else 0), (
            wsmon.error_output
        )
    finally:
        live.close()
    assert "Traceback" not in wsmon.error_output, wsmon.error_output

    with RecordingReader(record) as reader:
        events = list(reader.iter_events())
        state = reader.state_at_seq(reader.event_count)
    (failure,) = of(events, ev.DeliveryFailed)
    assert (failure.message_id, failure.reason, failure.source) == ("fail-1", "queue full", "tap")
    assert failure.conn in state.connections
    assert [s.ref for s in of(events, ev.LatencySample, kind="delivery")] == ["ok-1"]
    assert (state.delivered, state.delivery_failed, state.failure_reasons) == (1, 1, {"queue full": 1})
    # wsmon stopped its own server on the way out: an exit, and no outage.
    (exit_event,) = of(events, ev.ServerExit)
    assert (exit_event.code, exit_event.signal) == (0, None)  # it shut down on wsmon's SIGTERM
    assert of(events, ev.TargetDown, target="server") == []
    assert still_running_after([pid], 3.0) == []


def tap_workers_of(pid: int) -> list[int]:
    workers = []
    for child in psutil.Process(pid).children():
        # A short-lived child of wsmon's may be a zombie, or gone, by the time its command line is read
        # (it failed CI once: psutil.ZombieProcess): it is no tap worker either way.
        with contextlib.suppress(psutil.ZombieProcess, psutil.NoSuchProcess):
            if "wsmon.sources.tap_worker" in child.cmdline():
                workers.append(child.pid)
    return workers


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_wsmon_ending_ends_its_tap_worker(
    started: tuple[Callable[..., Wsmon], list[int]], tmp_path: Path, how: str
) -> None:
    """The tap's worker process (it forwards the clients' bytes) never outlives wsmon, however it ends."""
    start, pids = started
    wsmon = start("--tap", f"127.0.0.1:{free_port()}=ws://127.0.0.1:{free_port()}", "--headless")
    wait_until(lambda: bool(tap_workers_of(wsmon.proc.pid)), WAIT_S, "the tap worker")
    workers = tap_workers_of(wsmon.proc.pid)
    pids.extend(workers)
    wsmon.proc.send_signal(signal.Signals[how])
    wsmon.finish(10)
    assert still_running_after(workers, 5.0) == []
    if how == "SIGTERM":
        assert "Traceback" not in wsmon.error_output
