"""`wsmon demo`: the reference server and its load generator, watched the way any server is watched.

The server is a child process whose stdout is read as its log; psutil samples it; probes connect to
it. The load generator is a second child process. Nothing here reaches into either process's memory
or makes up an event: what wsmon shows is what it observed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsmon.children import GroupWatchdog, start_guarded_exec
from wsmon.core import events as ev
from wsmon.core.limits import Limit
from wsmon.session import Session
from wsmon.sources.base import CheckResult, Emit, Source, StopOrder, now
from wsmon.sources.delivery import DeliveryRules
from wsmon.sources.probe import ProbeConfig, ProbeSource
from wsmon.sources.process import ProcessSource
from wsmon.sources.server import ServerSource
from wsmon.sources.tap import TapSource

# The demo's protocol: {"type": "message", "id": …} waits for the receiving device's
# {"type": "ack", "id": …}; the server's {"type": "error", "id": …, "error": …} is a failed delivery.
DEMO_DELIVERY_RULES = DeliveryRules(
    id_paths=("id",),
    ack_paths=("id",),
    request_types=frozenset({"message"}),
    ack_types=frozenset({"ack", "error"}),
)


TALLY_PREFIX = "wsmon loadgen tally: "  # the load generator's last stdout line (loadgen.Tally)
# A churned connection is open for its hold plus its handshakes; the server's limit leaves this much more
# room, so that churn measures set-up and tear-down, not refusals.
CHURN_OVERHEAD_S = 2.0


@dataclass(frozen=True)
class DemoLoad:
    """What the load generator does (loadgen's --load): the demo's misbehaving devices, a steady load,
    or churn. Each is measured apart; docs/demo.md."""

    mode: str = "demo"  # demo | steady | churn
    clients: int = 50
    rate: float = 1.0  # messages/s per client
    fault_rate: float = 1.0
    slow_acks: float | None = None
    connect_rate: float = 50.0  # churn: connections opened a second
    hold: float = 1.0  # churn: seconds each stays open

    def argv(self, url: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "wsmon.demo.loadgen",
            "--url",
            url,
            "--load",
            self.mode,
            "--clients",
            str(self.clients),
            "--fault-rate",
            str(self.fault_rate),
            "--rate",
            str(self.rate),
            "--connect-rate",
            str(self.connect_rate),
            "--hold",
            str(self.hold),
            *(["--slow-acks", str(self.slow_acks)] if self.slow_acks is not None else []),
        ]

    def max_connections(self) -> int:
        """The demo server's limit: the demo's over-capacity bursts must pass it (1013); a steady or
        churning load must stay under it."""
        if self.mode == "churn":
            return math.ceil(self.connect_rate * (self.hold + CHURN_OVERHEAD_S)) + 5
        if self.mode == "steady":
            return self.clients + max(5, self.clients // 10)
        return self.clients + 5

    def describe(self) -> str:
        if self.mode == "churn":
            return f"churn, {self.connect_rate:g} connections/s held {self.hold:g} s"
        if self.mode == "steady":
            return f"steady, {self.clients} clients × {self.rate:g} msg/s"
        return f"{self.clients} clients"


def load_generator_of(session: Session) -> LoadGenerator | None:
    return next((s for s in session.sources if isinstance(s, LoadGenerator)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoadGenerator(Source):
    """The demo's simulated clients, as a child process; its only event is a marker when it starts."""

    stop_order = StopOrder.CLIENTS  # the clients leave first, and close normally
    stop_ends_run = True  # run() reads the tally the clients print as they leave

    def __init__(self, url: str, port: int, load: DemoLoad) -> None:
        super().__init__()
        self.port = port
        self.argv = load.argv(url)
        self.load = load
        self.process: asyncio.subprocess.Process | None = None
        self.tally: dict[str, Any] | None = None  # what the clients saw, printed by the load generator
        # Ends the clients if wsmon dies without stopping them (kill -9, a closed terminal): they
        # would otherwise retry the dead tap for ever.
        self._watchdog = GroupWatchdog()

    async def run(self, emit: Emit) -> None:
        await wait_for_port(self.port)
        self.process = await start_guarded_exec(
            *self.argv,
            watchdog=self._watchdog,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        wall, mono = now()
        emit(ev.Marker(wall=wall, mono=mono, text=f"load generator started: {self.load.describe()}"))
        try:
            assert self.process.stdout is not None
            async for raw in self.process.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith(TALLY_PREFIX):
                    with contextlib.suppress(ValueError):
                        self.tally = json.loads(line.removeprefix(TALLY_PREFIX))
            await self.process.wait()
        finally:
            await self._watchdog.stop()

    async def check(self) -> CheckResult:
        """The clients are wsmon's own program: nothing to reach before they start."""
        return CheckResult(ok=True)

    def tally_line(self) -> str:
        """The load generator's own count, to hold the report's against."""
        if self.tally is None:
            return "load generator's tally: none (it did not finish)"
        closes = self.tally.get("closes", {})
        by_code = ", ".join(f"{code}×{n}" for code, n in closes.items()) or "none"
        return (
            f"load generator's tally: {self.tally.get('opened', 0)} connections opened, "
            f"{sum(closes.values())} closed ({by_code}), {self.tally.get('refused', 0)} refused, "
            f"{self.tally.get('sent', 0)} messages sent, {self.tally.get('received', 0)} received"
        )

    async def stop(self) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            await self._watchdog.stop()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        await self._watchdog.stop()


async def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port (the demo server has started)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class AfterListening(Source):
    """Starts a watcher once the demo server listens, so start-up is not reported as an outage."""

    def __init__(self, port: int, source: Source) -> None:
        super().__init__(source.target)
        self.port = port
        self.source = source

    async def run(self, emit: Emit) -> None:
        await wait_for_port(self.port)
        await self.source.run(emit)

    async def check(self) -> CheckResult:
        return await self.source.check()


def build_demo_session(
    *,
    clients: int,
    limits: tuple[Limit, ...],
    record: os.PathLike[str] | None,
    duration: float | None,
    fault_rate: float = 1.0,
    rate: float = 1.0,
    interval: float = 1.0,
    through_tap: bool = True,
    slow_acks: float | None = None,
    extra_sources: list[Source] | None = None,
    load: str = "demo",
    connect_rate: float = 50.0,
    hold: float = 1.0,
    max_connections: int | None = None,
) -> Session:
    """The demo: its server, the tap in front of it (unless ``through_tap`` is off), wsmon's probes and
    process sampler, and the load generator (``load``: demo, steady or churn; DemoLoad). The server
    refuses connections over ``max_connections`` (default: what the load needs, DemoLoad.max_connections)."""
    spec = DemoLoad(load, clients, rate, fault_rate, slow_acks, connect_rate, hold)
    capacity = max_connections if max_connections is not None else spec.max_connections()
    port = free_port()
    url = f"ws://127.0.0.1:{port}/"
    # The clients connect through wsmon's tap, as a user's clients would, so the demo shows the wire
    # (who closed, abnormal ends, acks) beside the server's own log.
    # The tap fronts the server whose log wsmon reads: its rows own the counts, the log's enrich them.
    tap = (
        TapSource(
            "127.0.0.1",
            free_port(),
            url,
            target="tap",
            interval=interval,
            rules=DEMO_DELIVERY_RULES,
            covers=["server"],
            starting=True,
        )
        if through_tap
        else None
    )
    client_url = f"ws://127.0.0.1:{tap.port}/" if tap is not None else url
    server = ServerSource(
        [
            sys.executable,
            "-u",
            "-m",
            "wsmon.demo.server",
            "--port",
            str(port),
            "--max-connections",
            str(capacity),
        ],
        target="server",
    )
    if tap is not None:
        server.exit_listeners.append(tap.upstream_exited)
    # The probe speaks the demo's heartbeat as its request/reply, so the server's heartbeat check
    # does not close it and the round trip through the server's event loop is measured too.
    probes = ProbeSource(
        ProbeConfig(
            url=url, interval=interval, request='{"type":"heartbeat"}', reply_contains="heartbeat_ack"
        )
    )
    process = ProcessSource(lambda: server.pid, port=port, target="process", interval=interval)
    generator = LoadGenerator(client_url, port, spec)
    sources: list[Source] = [
        server,
        *([tap] if tap is not None else []),
        AfterListening(port, process),
        AfterListening(port, probes),
        generator,
        *(extra_sources or []),
    ]
    return Session(
        sources,
        title=f"demo · {url}",
        limits=limits,
        record=Path(record) if record is not None else None,
        command=f"wsmon demo --load {load} --clients {clients}",
        targets=[
            {"name": "server", "kind": "server", "address": "wsmon.demo.server"},
            {"name": "process", "kind": "process", "address": f"port {port}"},
            {"name": "websocket", "kind": "websocket", "address": url},
            *(
                [{"name": "tap", "kind": "tap", "address": f"{client_url} → {url}"}]
                if tap is not None
                else []
            ),
        ],
        duration=duration,
        # wsmon starts the server: it and its watchers are STARTING, not down, until it first answers.
        starting=["server", "process", "websocket", *(["tap"] if tap is not None else [])],
    )
