"""The demo's reference WebSocket server: a small device-messaging server with deliberate flaws.

It is a stand-alone program (it imports nothing of wsmon's): wsmon observes it only as it observes any
server, through its JSON log lines on stdout, psutil on its process and its own probe connections.
The log lines are therefore the contract; docs/demo.md lists them.

Deliberate flaws, so the dashboard has something to show:
- a closed device stays in the registry for ``--stale-grace`` seconds, so messages routed to it in that
  window fail with "Message delivery failed: <id> - Connection not open" (logged, never fatal);
- every routed message retains ``--leak-kb`` KB forever, so RSS grows slowly.

Run: ``python -m wsmon.demo.server --port 0``; the first stdout line says where it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

# The leak is the point: it must survive for the life of the process so RSS grows visibly.
_LEAK: list[bytes] = []

_QUIET_CLOSE_CODES = frozenset({1000, 1001})


class JsonLog:
    """Pino-like JSON lines on stdout.

    Lines are batched per event-loop tick: under load one write per tick is far cheaper than one per
    line, and a tick never lasts anywhere near the 100 ms a reader may wait for a line.
    """

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._pending: list[str] = []
        self._scheduled = False

    def __call__(self, level: str, msg: str, **fields: Any) -> None:
        record: dict[str, Any] = {"time": int(time.time() * 1000), "level": level, "msg": msg}
        record.update(fields)
        self._pending.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = "\n".join(self._pending) + "\n"
        self._pending.clear()
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            # The reader went away; the server keeps serving rather than dying on its log.
            pass


@dataclass(eq=False)
class Conn:
    id: str
    ws: ServerConnection
    peer: str
    path: str
    opened: float
    last_seen: float
    device: str | None = None
    closing: bool = False
    msgs_in: int = 0
    msgs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    pending_acks: set[str] = field(default_factory=set)

    @property
    def is_open(self) -> bool:
        return self.ws.state is State.OPEN


@dataclass(frozen=True)
class Pending:
    sender: Conn
    forwarded: float


def close_outcome(ws: ServerConnection) -> tuple[int, str, str]:
    """Close code, reason and who closed first, seen from the server after the connection ended.

    ``ws.close_code`` is only what the peer sent, so it cannot tell who started the closing handshake;
    the sans-I/O protocol's ``close_rcvd`` / ``close_sent`` / ``close_rcvd_then_sent`` can.
    """
    proto = ws.protocol
    rcvd, sent = proto.close_rcvd, proto.close_sent
    if rcvd is None and sent is None:
        return 1006, "", "neither"
    client_first = proto.close_rcvd_then_sent
    if client_first is None:
        # Only one side's frame made it: that side started the close.
        client_first = rcvd is not None
    frame = rcvd if client_first else sent
    assert frame is not None
    # Close.parse already turns an empty close payload into 1005.
    return int(frame.code), frame.reason, "client" if client_first else "server"


class DemoServer:
    def __init__(
        self,
        *,
        max_connections: int,
        heartbeat_timeout: float,
        stale_grace: float,
        leak_kb: float,
        log: JsonLog,
    ) -> None:
        self.max_connections = max_connections
        self.heartbeat_timeout = heartbeat_timeout
        self.stale_grace = stale_grace
        self.leak_bytes = max(0, int(leak_kb * 1024))
        self.log = log
        self.conns: dict[str, Conn] = {}
        self.devices: dict[str, Conn] = {}
        # Keyed by (receiver conn id, message id): clients choose the ids, so they may collide across senders.
        self.pending: dict[tuple[str, str], Pending] = {}
        self._traffic: set[Conn] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self._last_stats = time.monotonic()

    # --- connection lifecycle -------------------------------------------------------------------------

    async def handler(self, ws: ServerConnection) -> None:
        self._next_id += 1
        now = time.monotonic()
        peer = _format_peer(ws.remote_address)
        path = ws.request.path if ws.request is not None else "/"
        conn = Conn(id=f"c{self._next_id}", ws=ws, peer=peer, path=path, opened=now, last_seen=now)
        self.log("info", "connection opened", conn=conn.id, peer=peer, path=path)
        others = len(self.conns)
        self.conns[conn.id] = conn
        try:
            if others >= self.max_connections:
                self.log("warn", "too many connections", conn=conn.id, open=others)
                await self._close(conn, 1013, "too many connections")
            else:
                await self._serve(conn)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            self._finish(conn)

    def _finish(self, conn: Conn) -> None:
        self.conns.pop(conn.id, None)
        code, reason, closed_by = close_outcome(conn.ws)
        self.log(
            "info" if code in _QUIET_CLOSE_CODES else "warn",
            "connection closed",
            conn=conn.id,
            device=conn.device,
            code=code,
            reason=reason,
            closed_by=closed_by,
            duration_ms=int((time.monotonic() - conn.opened) * 1000),
        )
        for msg_id in conn.pending_acks:
            self.pending.pop((conn.id, msg_id), None)
        conn.pending_acks.clear()
        device = conn.device
        if device is not None and self.devices.get(device) is conn:
            # The deliberate bug: the registry forgets a closed device only after a grace period.
            asyncio.get_running_loop().call_later(self.stale_grace, self._forget, device, conn)

    def _forget(self, device: str, conn: Conn) -> None:
        if self.devices.get(device) is conn:
            del self.devices[device]

    async def _close(self, conn: Conn, code: int, reason: str) -> None:
        conn.closing = True
        await conn.ws.close(code, reason)

    async def _send(self, conn: Conn, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        await conn.ws.send(text)
        conn.msgs_out += 1
        conn.bytes_out += len(text.encode())
        self._traffic.add(conn)

    # --- protocol -------------------------------------------------------------------------------------

    async def _serve(self, conn: Conn) -> None:
        while True:
            first = await conn.ws.recv()
            self._count_in(conn, first)
            parsed = _parse(first)
            # Heartbeats are answered before registration too, so a monitor's probe can measure the
            # round trip (and stay open) without posing as a device. Anything else must register.
            if parsed is None or parsed.get("type") != "heartbeat":
                break
            await self._send(conn, {"type": "heartbeat_ack"})
        device = _registration(first)
        if device is None:
            self.log("warn", "registration rejected", conn=conn.id, reason="invalid registration")
            await self._close(conn, 1008, "invalid registration")
            return
        conn.device = device
        self.devices[device] = conn
        self.log("info", "device registered", conn=conn.id, device=device)
        await self._send(conn, {"type": "registered", "device": device})
        async for raw in conn.ws:
            self._count_in(conn, raw)
            await self._dispatch(conn, raw)

    def _count_in(self, conn: Conn, raw: str | bytes) -> None:
        conn.last_seen = time.monotonic()
        conn.msgs_in += 1
        conn.bytes_in += len(raw.encode() if isinstance(raw, str) else raw)
        self._traffic.add(conn)

    async def _dispatch(self, conn: Conn, raw: str | bytes) -> None:
        data = _parse(raw)
        kind = data.get("type") if data is not None else None
        if data is not None and kind == "heartbeat":
            await self._send(conn, {"type": "heartbeat_ack"})
        elif data is not None and kind == "message" and _valid_message(data):
            await self._route(conn, data)
        elif data is not None and kind == "ack" and isinstance(data.get("id"), str):
            await self._ack(conn, data["id"])
        else:
            self.log("warn", "Invalid message format", conn=conn.id)
            await self._send(conn, {"type": "error", "error": "Invalid message format"})

    async def _route(self, sender: Conn, data: dict[str, Any]) -> None:
        msg_id: str = data["id"]
        target = self.devices.get(data["to"])
        if target is None:
            await self._send(sender, {"type": "error", "id": msg_id, "error": "unknown device"})
            return
        if not target.is_open:
            self._delivery_failed(msg_id, target)
            await self._send(sender, {"type": "error", "id": msg_id, "error": "Connection not open"})
            return
        key = (target.id, msg_id)
        # Recorded before the send: the ack can be handled while this send still waits on drain().
        self.pending[key] = Pending(sender=sender, forwarded=time.monotonic())
        target.pending_acks.add(msg_id)
        if self.leak_bytes:
            _LEAK.append(b"L" * self.leak_bytes)
        try:
            await self._send(
                target, {"type": "message", "id": msg_id, "from": sender.device, "body": data.get("body")}
            )
        except ConnectionClosed:
            self.pending.pop(key, None)
            target.pending_acks.discard(msg_id)
            self._delivery_failed(msg_id, target)
            await self._send(sender, {"type": "error", "id": msg_id, "error": "Connection not open"})
            return
        await self._send(sender, {"type": "accepted", "id": msg_id})

    def _delivery_failed(self, msg_id: str, target: Conn) -> None:
        self.log(
            "error",
            f"Message delivery failed: {msg_id} - Connection not open",
            err="MessageDeliveryError",
            msg_id=msg_id,
            conn=target.id,
            device=target.device,
        )

    async def _ack(self, receiver: Conn, msg_id: str) -> None:
        pending = self.pending.pop((receiver.id, msg_id), None)
        if pending is None:
            return
        receiver.pending_acks.discard(msg_id)
        latency_ms = round((time.monotonic() - pending.forwarded) * 1000, 3)
        self.log(
            "info",
            "message delivered",
            msg_id=msg_id,
            conn=receiver.id,
            from_conn=pending.sender.id,
            latency_ms=latency_ms,
        )
        if pending.sender.is_open:
            try:
                await self._send(pending.sender, {"type": "delivered", "id": msg_id})
            except ConnectionClosed:
                pass

    # --- periodic work --------------------------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in list(self.conns.values()):
                silent = now - conn.last_seen
                if conn.closing or not conn.is_open or silent <= self.heartbeat_timeout:
                    continue
                self.log(
                    "warn",
                    "heartbeat timeout",
                    conn=conn.id,
                    device=conn.device,
                    silent_ms=int(silent * 1000),
                )
                # In a task: one slow closing handshake must not delay the check of the others.
                conn.closing = True
                task = asyncio.get_running_loop().create_task(conn.ws.close(1001, "heartbeat timeout"))
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)

    async def stats_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.flush_stats()

    def flush_stats(self) -> None:
        now = time.monotonic()
        interval_ms = int((now - self._last_stats) * 1000)
        self._last_stats = now
        traffic, self._traffic = self._traffic, set()
        for conn in sorted(traffic, key=lambda c: int(c.id[1:])):
            self.log(
                "info",
                "connection stats",
                conn=conn.id,
                msgs_in=conn.msgs_in,
                msgs_out=conn.msgs_out,
                bytes_in=conn.bytes_in,
                bytes_out=conn.bytes_out,
                interval_ms=interval_ms,
            )
            conn.msgs_in = conn.msgs_out = conn.bytes_in = conn.bytes_out = 0


def _format_peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _registration(raw: str | bytes) -> str | None:
    data = _parse(raw)
    if data is None or data.get("type") != "register":
        return None
    device = data.get("device")
    return device if isinstance(device, str) and device else None


def _valid_message(data: dict[str, Any]) -> bool:
    return (
        isinstance(data.get("id"), str)
        and bool(data["id"])
        and isinstance(data.get("to"), str)
        and bool(data["to"])
    )


async def run(args: argparse.Namespace) -> int:
    log = JsonLog()
    app = DemoServer(
        max_connections=args.max_connections,
        heartbeat_timeout=args.heartbeat_timeout,
        stale_grace=args.stale_grace,
        leak_kb=args.leak_kb,
        log=log,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    server: Server = await serve(
        app.handler,
        args.host,
        args.port,
        ping_interval=None,  # heartbeats are the application's job here
        compression=None,
        close_timeout=5,
    )
    port = server.sockets[0].getsockname()[1]
    log(
        "info",
        "server listening",
        host=args.host,
        port=port,
        pid=os.getpid(),
        max_connections=args.max_connections,
    )
    log.flush()
    tasks = [loop.create_task(app.heartbeat_loop()), loop.create_task(app.stats_loop())]
    try:
        await stop.wait()
        log("info", "server stopping")
        log.flush()
        server.close(close_connections=True, code=1001, reason="server shutting down")
        await server.wait_closed()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        app.flush_stats()
        log.flush()
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wsmon.demo.server",
        description="wsmon's demo device-messaging WebSocket server (JSON log lines on stdout).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument(
        "--max-connections", type=int, default=200, help="refuse more with close 1013 (default 200)"
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=6.0,
        help="close a client silent this many seconds with 1001 (default 6)",
    )
    parser.add_argument(
        "--stale-grace",
        type=float,
        default=2.0,
        help="seconds a closed device stays registered: the deliberate delivery-failure bug (default 2.0)",
    )
    parser.add_argument(
        "--leak-kb",
        type=float,
        default=2.0,
        help="KB retained per routed message: the deliberate leak (default 2)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except OSError as exc:
        print(f"wsmon demo server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
