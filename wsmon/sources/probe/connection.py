"""One probe connection's plumbing: knowing when TCP and TLS are done (so a silent upgrade is told
apart from a slow connect), reading every message, closing without waiting for ever."""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection

from wsmon.core.redact import redact_url
from wsmon.sources.probe.config import CLOSE_TIMEOUT_S


def marking(reached: list[bool]) -> type[ClientConnection]:
    """A ClientConnection that notes when its transport is up (TCP and TLS done, HTTP not yet)."""

    class Marking(ClientConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            reached.append(True)
            super().connection_made(transport)

    return Marking


async def drain_messages(ws: ClientConnection, waiting: dict[str, asyncio.Future[None]]) -> None:
    """Read every message; mark the round trip whose reply it is. Ends with ConnectionClosed."""
    while True:
        text = as_text(await ws.recv())
        for expected, arrived in list(waiting.items()):
            if expected in text and not arrived.done():
                arrived.set_result(None)


def retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def as_text(message: str | bytes) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", "replace")


def host_port(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address or "")


def redacted_path(ws: ClientConnection) -> str:
    path = ws.request.path if ws.request is not None else ""
    if "?" not in path:
        return path
    return redact_url("ws://h" + path).removeprefix("ws://h")


async def close_quietly(ws: ClientConnection, code: int = 1000, reason: str = "") -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason), timeout=CLOSE_TIMEOUT_S + 1.0)
