"""The demo server and load generator, over real sockets, judged by the server's log lines (its contract)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from wsmon.demo.loadgen import send_empty_close

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
Line = dict[str, Any]


class ServerProc:
    """A demo server child process whose stdout lines are collected by a thread as parsed JSON."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsmon.demo.server", "--port", "0", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[Line] = []
        self.raw: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(10):
            self.kill()
            raise AssertionError(
                f"server did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        first = self.lines[0]
        assert first["msg"] == "server listening", first
        self.port: int = first["port"]
        self.url = f"ws://127.0.0.1:{self.port}/"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.raw.append(raw)
            self.lines.append(json.loads(raw))
            self._ready.set()

    def find(self, msg: str, **fields: Any) -> list[Line]:
        return [
            line
            for line in list(self.lines)
            if line["msg"] == msg and all(line.get(k) == v for k, v in fields.items())
        ]

    async def wait_for(self, msg: str, timeout: float = 5.0, **fields: Any) -> Line:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(msg, **fields)
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no log line {msg!r} {fields} within {timeout}s; got:\n{''.join(self.raw)}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProc]]:
    started: list[ServerProc] = []

    def start(*args: str) -> ServerProc:
        server = ServerProc(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def server(start_server: Callable[..., ServerProc]) -> ServerProc:
    return start_server("--heartbeat-timeout", "2", "--max-connections", "20")


async def client(url: str) -> ClientConnection:
    return await connect(url, proxy=None, ping_interval=None, open_timeout=5)


async def registered(server: ServerProc, device: str) -> tuple[ClientConnection, str]:
    """A connection registered as ``device``, and the server's conn id for it."""
    ws = await client(server.url)
    await ws.send(json.dumps({"type": "register", "device": device}))
    assert json.loads(await recv(ws)) == {"type": "registered", "device": device}
    line = await server.wait_for("device registered", device=device)
    return ws, line["conn"]


async def recv(ws: ClientConnection, timeout: float = 5.0) -> str | bytes:
    async with asyncio.timeout(timeout):
        return await ws.recv()


async def test_listening_line_and_routing_with_ack(server: ServerProc) -> None:
    first = server.lines[0]
    assert first["level"] == "info" and isinstance(first["time"], int)
    assert first["host"] == "127.0.0.1" and first["pid"] == server.proc.pid
    assert first["max_connections"] == 20

    alice, alice_conn = await registered(server, "dev-a")
    bob, bob_conn = await registered(server, "dev-b")
    opened = await server.wait_for("connection opened", conn=alice_conn)
    assert opened["path"] == "/" and opened["peer"].startswith("127.0.0.1:")

    await alice.send(json.dumps({"type": "message", "id": "msg_1", "to": "dev-b", "body": "hi"}))
    forwarded = json.loads(await recv(bob))
    assert forwarded == {"type": "message", "id": "msg_1", "from": "dev-a", "body": "hi"}
    assert json.loads(await recv(alice)) == {"type": "accepted", "id": "msg_1"}
    await asyncio.sleep(0.05)
    await bob.send(json.dumps({"type": "ack", "id": "msg_1"}))
    assert json.loads(await recv(alice)) == {"type": "delivered", "id": "msg_1"}

    delivered = await server.wait_for("message delivered", msg_id="msg_1")
    assert delivered["conn"] == bob_conn and delivered["from_conn"] == alice_conn
    assert isinstance(delivered["latency_ms"], float) and 40 <= delivered["latency_ms"] < 2000

    await alice.send(json.dumps({"type": "heartbeat"}))
    assert json.loads(await recv(alice)) == {"type": "heartbeat_ack"}
    await alice.send(json.dumps({"type": "message", "id": "msg_2", "to": "dev-nobody", "body": ""}))
    assert json.loads(await recv(alice)) == {"type": "error", "id": "msg_2", "error": "unknown device"}
    await alice.send("{not json")
    assert json.loads(await recv(alice)) == {"type": "error", "error": "Invalid message format"}
    invalid = await server.wait_for("Invalid message format", conn=alice_conn)
    assert invalid["level"] == "warn"

    stats = await server.wait_for("connection stats", conn=alice_conn)
    assert stats["msgs_in"] >= 1 and stats["bytes_in"] > 0 and 500 <= stats["interval_ms"] <= 2000
    assert {"msgs_out", "bytes_out"} <= stats.keys()

    await alice.close()
    await bob.close()


async def test_heartbeat_before_registration_is_answered(server: ServerProc) -> None:
    # wsmon's probe heartbeats without registering; it must neither be rejected nor time out.
    ws = await client(server.url)
    for _ in range(3):
        await ws.send('{"type":"heartbeat"}')
        assert json.loads(await recv(ws)) == {"type": "heartbeat_ack"}
        await asyncio.sleep(0.9)
    assert ws.close_code is None and not server.find("registration rejected")
    await ws.send(json.dumps({"type": "register", "device": "dev-late"}))
    assert json.loads(await recv(ws)) == {"type": "registered", "device": "dev-late"}
    await ws.close()


async def test_normal_close_is_1000_by_client(server: ServerProc) -> None:
    ws, conn = await registered(server, "dev-n")
    await ws.close(1000, "bye")
    closed = await server.wait_for("connection closed", conn=conn)
    assert closed["code"] == 1000 and closed["closed_by"] == "client" and closed["reason"] == "bye"
    assert (
        closed["device"] == "dev-n" and closed["level"] == "info" and isinstance(closed["duration_ms"], int)
    )


@pytest.mark.parametrize("registration", ['{"type":"register"}', '{"type":"register","device":""}', "nope"])
async def test_bad_registration_is_closed_1008(server: ServerProc, registration: str) -> None:
    ws = await client(server.url)
    await ws.send(registration)
    async with asyncio.timeout(5):
        await ws.wait_closed()
    assert ws.close_code == 1008 and ws.close_reason == "invalid registration"
    rejected = await server.wait_for("registration rejected")
    assert rejected["level"] == "warn" and rejected["reason"] == "invalid registration"
    closed = await server.wait_for("connection closed", conn=rejected["conn"])
    assert closed["code"] == 1008 and closed["closed_by"] == "server" and closed["device"] is None


async def test_silent_client_is_closed_1001(server: ServerProc) -> None:
    ws, conn = await registered(server, "dev-quiet")
    async with asyncio.timeout(6):
        await ws.wait_closed()
    assert ws.close_code == 1001 and ws.close_reason == "heartbeat timeout"
    timeout = await server.wait_for("heartbeat timeout", conn=conn)
    assert timeout["device"] == "dev-quiet" and timeout["silent_ms"] >= 2000
    closed = await server.wait_for("connection closed", conn=conn)
    assert closed["code"] == 1001 and closed["closed_by"] == "server"


async def test_abort_is_1006_by_neither(server: ServerProc) -> None:
    ws, conn = await registered(server, "dev-gone")
    ws.transport.abort()
    closed = await server.wait_for("connection closed", conn=conn)
    assert closed["code"] == 1006 and closed["closed_by"] == "neither" and closed["level"] == "warn"


async def test_empty_close_frame_is_1005_by_client(server: ServerProc) -> None:
    ws, conn = await registered(server, "dev-mute")
    await send_empty_close(ws)
    closed = await server.wait_for("connection closed", conn=conn)
    assert closed["code"] == 1005 and closed["closed_by"] == "client" and closed["reason"] == ""


async def test_over_capacity_is_closed_1013(start_server: Callable[..., ServerProc]) -> None:
    server = start_server("--max-connections", "2")
    keep = [await client(server.url), await client(server.url)]
    extra = await client(server.url)
    async with asyncio.timeout(5):
        await extra.wait_closed()
    assert extra.close_code == 1013 and extra.close_reason == "too many connections"
    refused = await server.wait_for("too many connections")
    assert refused["open"] == 2 and refused["level"] == "warn"
    closed = await server.wait_for("connection closed", conn=refused["conn"])
    assert closed["code"] == 1013 and closed["closed_by"] == "server"
    for ws in keep:
        await ws.close()


async def test_routing_to_a_vanished_device_fails_without_crashing(server: ServerProc) -> None:
    alice, _ = await registered(server, "dev-a")
    bob, bob_conn = await registered(server, "dev-b")
    bob.transport.abort()
    await server.wait_for("connection closed", conn=bob_conn)

    await alice.send(json.dumps({"type": "message", "id": "msg_77", "to": "dev-b", "body": "x"}))
    assert json.loads(await recv(alice)) == {"type": "error", "id": "msg_77", "error": "Connection not open"}
    failed = await server.wait_for("Message delivery failed: msg_77 - Connection not open")
    assert failed["level"] == "error" and failed["err"] == "MessageDeliveryError"
    assert failed["msg_id"] == "msg_77" and failed["conn"] == bob_conn and failed["device"] == "dev-b"

    await alice.send(json.dumps({"type": "heartbeat"}))
    assert json.loads(await recv(alice)) == {"type": "heartbeat_ack"}
    assert server.proc.poll() is None
    await alice.close()


async def test_sigterm_closes_connections_1001_and_exits_0(server: ServerProc) -> None:
    ws, conn = await registered(server, "dev-last")
    server.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(5):
        await ws.wait_closed()
    assert ws.close_code == 1001 and ws.close_reason == "server shutting down"
    assert await asyncio.to_thread(server.proc.wait, 10) == 0
    await server.wait_for("server stopping")
    closed = await server.wait_for("connection closed", conn=conn)
    assert closed["code"] == 1001 and closed["closed_by"] == "server"


async def test_loadgen_produces_the_faults(start_server: Callable[..., ServerProc]) -> None:
    clients = 20
    server = start_server("--max-connections", str(clients + 5))
    loadgen = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsmon.demo.loadgen",
        "--url",
        server.url,
        "--clients",
        str(clients),
        "--duration",
        "12",
        "--seed",
        "7",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        async with asyncio.timeout(30):
            stdout, stderr = await loadgen.communicate()
    finally:
        if loadgen.returncode is None:
            loadgen.kill()
            await loadgen.wait()
    assert loadgen.returncode == 0, stderr.decode()
    # Its only output is its own tally, one line at the end (what `wsmon demo` compares the report with).
    assert [line.split(b"{")[0] for line in stdout.splitlines()] == [b"wsmon loadgen tally: "]

    codes = {(line["code"], line["closed_by"]) for line in server.find("connection closed")}
    assert {(1001, "server"), (1005, "client"), (1006, "neither"), (1008, "server")} <= codes, codes
    assert (1000, "client") in codes
    failures = [line for line in server.lines if line["msg"].startswith("Message delivery failed: ")]
    assert failures and all(line["msg"].endswith(" - Connection not open") for line in failures)
    assert server.find("message delivered")
    assert server.find("Invalid message format")
    assert server.proc.poll() is None
