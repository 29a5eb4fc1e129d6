"""Test starts and ends, live, from the pytest plugin (or anything else) over a local TCP port.

One JSON object a line: ``{"phase": "start"|"end", "name": "...", "outcome": "failed",
"duration": 0.5, "message": "..."}`` or ``{"marker": "free text"}``. A bad line is a warning log
event, never an error: the suite under test must not be able to break wsmon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from wsmon.core import events as ev
from wsmon.sources.base import CheckResult, Emit, Source, now

MAX_LINE = 64 * 1024


class TestMarkerSource(Source):
    """Watches no target: the test suite connects to it."""

    __test__ = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.address = ""
        self.listening = asyncio.Event()
        self.clients = 0  # connections so far: a suite with the plugin on connects even if it runs no test
        self.open = 0  # connections not yet read to their end

    async def run(self, emit: Emit) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.clients += 1
            self.open += 1
            try:
                while line := await reader.readline():
                    for event in parse_marker_line(line[:MAX_LINE]):
                        emit(event)
            except (ConnectionError, asyncio.LimitOverrunError, ValueError):
                pass
            finally:
                self.open -= 1
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

        server = await asyncio.start_server(handle, self.host, self.port, limit=MAX_LINE)
        sock = server.sockets[0].getsockname()
        self.address = f"{sock[0]}:{sock[1]}"
        self.listening.set()
        async with server:
            await server.serve_forever()

    async def check(self) -> CheckResult:
        """Nothing outside wsmon to reach: the port it listens on is its own."""
        return CheckResult(ok=True)

    async def drained(self, timeout: float = 2.0) -> None:
        """Wait (a bounded time) until every connection was read to its end: the test command has
        exited, but its last lines may still be in the socket buffer."""
        await asyncio.sleep(0.05)  # a connection accepted but not yet handled gets its turn first
        deadline = asyncio.get_running_loop().time() + timeout
        while self.open and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)


def parse_marker_line(raw: bytes) -> list[ev.Event]:
    wall, mono = now()
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return [
            ev.LogLine(wall=wall, mono=mono, level="warn", text="test marker: not JSON", source="markers")
        ]
    if not isinstance(data, dict):
        return [
            ev.LogLine(
                wall=wall, mono=mono, level="warn", text="test marker: not an object", source="markers"
            )
        ]
    if "marker" in data:
        return [ev.Marker(wall=wall, mono=mono, text=str(data["marker"])[:500])]
    phase, name = data.get("phase"), data.get("name")
    if phase not in ("start", "end") or not isinstance(name, str) or not name:
        return [
            ev.LogLine(
                wall=wall, mono=mono, level="warn", text="test marker: needs phase and name", source="markers"
            )
        ]
    duration = data.get("duration")
    return [
        ev.TestEvent(
            wall=wall,
            mono=mono,
            name=name[:500],
            phase=phase,
            outcome=str(data.get("outcome", ""))[:20],
            duration_s=float(duration) if isinstance(duration, int | float) else None,
            message=str(data.get("message", ""))[:300],
        )
    ]
