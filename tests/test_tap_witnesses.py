"""The tap and the server wsmon starts, with real processes and sockets: start-up is not an outage, the
tap learns of its upstream's death at once, illegal close codes on the wire are protocol errors, and a
server log without peer addresses does not count the tap's connections twice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shlex
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import free_port
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from wsmon.attach import AttachOptions, build_attach_session
from wsmon.config import parse_tap_spec
from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import fold
from wsmon.core.state import State
from wsmon.session import Session
from wsmon.sources.tap import TapSource

# An echo server that logs like real servers do: a connection id, never the peer's address. It waits
# --delay seconds before it listens (a server that takes a while to start).
ID_LOGGING_SERVER = """
import asyncio, itertools, json, sys
from websockets.asyncio.server import serve

ids = itertools.count(1)

def log(msg, **fields):
    print(json.dumps({"level": "info", "msg": msg, **fields}), flush=True)

async def handler(ws):
    conn = f"c{next(ids)}"
    log("connection opened", conn=conn)
    try:
        async for message in ws:
            await ws.send(message)
    finally:
        code = ws.close_code if ws.close_code is not None else 1006
        log("connection closed", conn=conn, code=code)

async def main():
    await asyncio.sleep(float(sys.argv[2]))
    async with serve(handler, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()

asyncio.run(main())
"""


def server_command(port: int, delay: float = 0.0) -> str:
    return shlex.join([sys.executable, "-u", "-c", ID_LOGGING_SERVER, str(port), str(delay)])


@contextlib.asynccontextmanager
async def attached(options: AttachOptions, **session_options: Any) -> AsyncIterator[Session]:
    session = build_attach_session(options, limits=DEFAULT_LIMITS, record=None, duration=None)
    for key, value in session_options.items():
        setattr(session, key, value)
    task = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        session.stop()
        async with asyncio.timeout(30):
            await task


async def until(session: Session, what: str, predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(session.state):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {session.state.targets}")
        await asyncio.sleep(0.05)


def up(state: State, name: str) -> bool:
    target = state.targets.get(name)
    return target is not None and target.up is True


# --- 6: start-up is not an outage --------------------------------------------------------------------


async def test_a_server_that_takes_a_while_to_listen_is_starting_not_down() -> None:
    port, tap_port = free_port(), free_port()
    options = AttachOptions(
        url=f"ws://127.0.0.1:{port}/",
        server=server_command(port, delay=1.5),
        taps=[parse_tap_spec(f"127.0.0.1:{tap_port}=ws://127.0.0.1:{port}/")],
        interval=0.3,
    )
    async with attached(options) as session:
        await until(session, "the server process", lambda s: up(s, "server"))
        state = session.state
        # The tap and the probe tried their upstream before it listened: that is starting, not down.
        assert state.targets["tap"].status == "STARTING"
        await until(session, "tap and probe up", lambda s: up(s, "tap") and up(s, "websocket"), timeout=30)
    targets = session.state.targets
    for name in ("server", "tap", "websocket"):
        assert (targets[name].down_count, targets[name].down_total_s) == (0, 0.0), targets[name]


async def test_a_server_that_never_listens_is_down_after_the_startup_timeout() -> None:
    port, tap_port = free_port(), free_port()
    options = AttachOptions(
        server=server_command(port, delay=3600),
        taps=[parse_tap_spec(f"127.0.0.1:{tap_port}=ws://127.0.0.1:{port}/")],
    )
    async with attached(options, startup_timeout_s=1.5) as session:
        await until(session, "the tap STARTING", lambda s: s.targets.get("tap", None) is not None)
        assert session.state.targets["tap"].status == "STARTING"
        await until(session, "the start-up timeout", lambda s: s.targets["tap"].status == "DOWN", timeout=15)
        tap = session.state.targets["tap"]
        assert tap.down_count == 1 and tap.error_kind == "start-timeout"
        assert "did not answer within 1.5 s" in tap.error


# --- 7: the tap learns of upstream death at once -------------------------------------------------------


async def test_the_tap_is_down_as_soon_as_the_server_wsmon_started_exits() -> None:
    """No client is connected when the server dies: before, the tap said UP until a client failed."""
    port, tap_port = free_port(), free_port()
    options = AttachOptions(
        server=server_command(port),
        taps=[parse_tap_spec(f"127.0.0.1:{tap_port}=ws://127.0.0.1:{port}/")],
        interval=5.0,
    )
    async with attached(options) as session:
        await until(session, "the tap's upstream", lambda s: up(s, "tap"))
        server = next(s for s in session.sources if type(s).__name__ == "ServerSource")
        pid = server.pid  # type: ignore[attr-defined]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        await until(session, "the tap DOWN", lambda s: s.targets["tap"].up is False, timeout=10)
        noticed = time.monotonic() - killed
        tap = session.state.targets["tap"]
        assert tap.error_kind == "exited" and "killed by SIGKILL" in tap.error
    assert noticed < 2.0  # the exit is seen within the server source's poll, not at the next client


# --- 8: illegal close codes on the wire ----------------------------------------------------------------


def masked_close_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x88, 0x80 | len(payload)]) + mask + masked


async def raw_client_sends_close(port: int, payload: bytes) -> bytes:
    """A hand-made client: the upgrade, then one close frame as given, then what the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(masked_close_frame(payload))
    async with asyncio.timeout(10):
        answer = await reader.read()  # the server's close frame, then its TCP close
    writer.close()
    return answer


@pytest.mark.parametrize("code", [1005, 1006, 1015, 2000])
async def test_an_illegal_close_code_from_the_client_is_its_protocol_error(code: int) -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    events: list[ev.Event] = []
    async with serve(echo, "127.0.0.1", 0) as server:
        upstream = server.sockets[0].getsockname()[1]
        tap = TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{upstream}", interval=0.1)
        task = asyncio.create_task(tap.run(events.append))
        try:
            await asyncio.wait_for(tap.listening.wait(), 5)
            answer = await raw_client_sends_close(tap.port, struct.pack("!H", code) + b"bad")
            deadline = time.monotonic() + 10
            while not any(isinstance(e, ev.ConnectionClosed) for e in events):
                assert time.monotonic() < deadline, events
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # The server failed the connection with 1002, as RFC 6455 asks.
    assert answer[:1] == b"\x88" and struct.unpack("!H", answer[2:4])[0] == 1002
    (closed,) = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert (closed.code, closed.closed_by, closed.answered) == (1002, "client", True)
    assert f"client sent close code {code}" in closed.reason and "server answered 1002" in closed.reason
    state = fold(events)
    assert state.close_codes == {1002: 1} and state.closed_by == {"client": 1}


async def test_an_empty_close_frame_is_still_1005_no_status() -> None:
    """Sending no status is legal; only the code 1005 itself must not be on the wire."""
    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as server:
        upstream = server.sockets[0].getsockname()[1]
        events: list[ev.Event] = []
        tap = TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{upstream}", interval=0.1)
        task = asyncio.create_task(tap.run(events.append))
        try:
            await asyncio.wait_for(tap.listening.wait(), 5)
            await raw_client_sends_close(tap.port, b"")
            deadline = time.monotonic() + 10
            while not any(isinstance(e, ev.ConnectionClosed) for e in events):
                assert time.monotonic() < deadline, events
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    (closed,) = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert (closed.code, closed.closed_by) == (1005, "client")


# --- 5: a server log without peer addresses, behind the tap -------------------------------------------


async def test_a_tapped_server_logging_only_connection_ids_counts_each_connection_once() -> None:
    port, tap_port = free_port(), free_port()
    options = AttachOptions(
        server=server_command(port), taps=[parse_tap_spec(f"127.0.0.1:{tap_port}=ws://127.0.0.1:{port}/")]
    )
    async with attached(options) as session:
        await until(session, "the tap's upstream", lambda s: up(s, "tap"))
        for i in range(14):
            async with connect(f"ws://127.0.0.1:{tap_port}/") as ws:
                await ws.send(f"hello {i}")
                assert await ws.recv() == f"hello {i}"
                if i % 2:
                    await ws.close(4000 + i, "bye")
        await until(
            session,
            "every close from both witnesses",
            lambda s: sum(1 for c in s.connections.values() if c.close_code is not None) >= 28,
        )
        state = session.state
        assert state.opened_total == 14 and state.open_count == 0
        assert sum(state.close_codes.values()) == 14
        assert state.close_codes == {1000: 7, **{4000 + i: 1 for i in range(1, 14, 2)}}
        # One row a connection: each log row is folded into the tap's row it closed with.
        shown = [c for c in state.connections.values() if not c.mirror_of]
        assert len(shown) == 14 and all(c.source == "tap" and c.server_conn for c in shown)


async def test_an_upstream_reset_of_a_live_connection_is_checked_at_once() -> None:
    """A dying server resets its connections: the tap checks the upstream at once instead of after the
    grace it gives a server that merely closed one."""
    held: list[ServerConnection] = []

    async def hold(ws: ServerConnection) -> None:
        held.append(ws)
        await ws.wait_closed()

    events: list[ev.Event] = []
    async with serve(hold, "127.0.0.1", 0) as server:
        upstream = server.sockets[0].getsockname()[1]
        tap = TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{upstream}", interval=0.1)
        task = asyncio.create_task(tap.run(events.append))
        try:
            await asyncio.wait_for(tap.listening.wait(), 5)
            async with connect(f"ws://127.0.0.1:{tap.port}/") as client:
                while not held or not any(
                    isinstance(e, ev.TargetUp) and "reachable" in e.detail for e in events
                ):
                    await asyncio.sleep(0.01)
                # The server dies: its listener is gone and its connection is reset.
                server.server.close()
                transport = held[0].transport
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                transport.abort()
                reset = time.monotonic()
                deadline = reset + 5
                while not any(isinstance(e, ev.TargetDown) for e in events):
                    assert time.monotonic() < deadline, "the tap never checked its upstream"
                    await asyncio.sleep(0.005)
                noticed = time.monotonic() - reset
                with contextlib.suppress(Exception):
                    await client.recv()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    (down,) = [e for e in events if isinstance(e, ev.TargetDown)]
    assert down.kind == "refused"
    assert noticed < 0.45  # before, the tap waited 0.5 s before it even checked
