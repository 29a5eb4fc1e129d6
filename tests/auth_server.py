"""A small real WebSocket server that only lets registered clients in, as real servers do.

The handshake needs ``Authorization: Bearer <token>`` (401 otherwise), ``Origin: <origin>`` (403
otherwise) and the subprotocol ``chat.v1`` (400 otherwise). The first message must be
``{"type": "register", "deviceId": …}``, answered by ``{"type": "registered", …}``; anything else is
closed with 1008. After that every message is echoed. Runs on a thread with its own loop, so a
synchronous test can drive a `wsmon` subprocess against it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus

from websockets.asyncio.server import Request, Response, ServerConnection, serve

SUBPROTOCOL = "chat.v1"


@dataclass
class AuthServer:
    token: str
    origin: str = "https://app.example.com"
    port: int = 0
    registered: list[str] = field(default_factory=list)  # device ids, in order
    rejected: list[int] = field(default_factory=list)  # HTTP statuses sent
    # A reply with a session secret in it: it must not reach an error message either.
    session_secret: str = "sess-9d8e7f6a5b4c"

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reject(connection, HTTPStatus.UNAUTHORIZED, "missing or bad token\n")
        if request.headers.get("Origin") != self.origin:
            return self._reject(connection, HTTPStatus.FORBIDDEN, "origin not allowed\n")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if SUBPROTOCOL not in offered:
            return self._reject(connection, HTTPStatus.BAD_REQUEST, "subprotocol chat.v1 required\n")
        return None

    def _reject(self, connection: ServerConnection, status: HTTPStatus, body: str) -> Response:
        self.rejected.append(int(status))
        return connection.respond(status, body)

    async def handler(self, ws: ServerConnection) -> None:
        try:
            first = json.loads(await ws.recv())
        except ValueError:
            first = None
        if not isinstance(first, dict) or first.get("type") != "register" or not first.get("deviceId"):
            await ws.close(1008, "register first")
            return
        self.registered.append(str(first["deviceId"]))
        await ws.send(json.dumps({"type": "welcome"}))  # something else first, as chatty servers do
        await ws.send(json.dumps({"type": "registered", "session": self.session_secret}))
        async for message in ws:
            await ws.send(message)


@contextmanager
def running(server: AuthServer, *, subprotocols: list[str] | None = None) -> Iterator[AuthServer]:
    """Serve on 127.0.0.1 on a free port (``server.port``) until the block ends."""
    ready = threading.Event()
    stop: dict[str, asyncio.Event | asyncio.AbstractEventLoop] = {}

    async def main() -> None:
        stopping = asyncio.Event()
        stop["event"], stop["loop"] = stopping, asyncio.get_running_loop()
        async with serve(
            server.handler,
            "127.0.0.1",
            0,
            process_request=server.check_request,
            subprotocols=[SUBPROTOCOL] if subprotocols is None else subprotocols,  # type: ignore[list-item]
            ping_interval=None,
        ) as ws_server:
            server.port = ws_server.sockets[0].getsockname()[1]
            ready.set()
            await stopping.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the auth server did not start"
    try:
        yield server
    finally:
        loop = stop["loop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        loop.call_soon_threadsafe(stop["event"].set)  # type: ignore[union-attr]
        thread.join(10)
