"""What the tap costs: its added round-trip latency and its throughput against a direct connection.

The echo server, each route and the load clients run in their own processes; every route is measured
in the same run against the same echo server with the same client code, so only the route differs:

- direct;
- the tap (a session process, as wsmon's, folding the events into a Reducer, and its worker processes
  that forward and parse), on asyncio and on uvloop (when installed: `pip install 'wsmon[fast]'`);
- the reference: a plain asyncio byte proxy (no parsing, no events), on asyncio and on uvloop, what
  any Python forwarder costs on this machine.

Figures (issue 13): the added round-trip latency p50/p99 at a steady 1,000 messages/s over 100
connections (goal: p99 ≤ 1 ms); saturated throughput as a ratio of direct (goal ≥ 0.9); each route's
CPU (% of one core; the tap's session and workers apart) and RSS.

    python bench/bench_tap.py [--seconds 10] [--rounds 3] [--connections 100] [--rate 1000]
                              [--compression] [--tap-workers N]

Messages are ~130-byte JSON objects (read by the tap's delivery pairing); compression is off by
default, as in Node's `ws`, and on with --compression.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WINDOW = 8  # messages in flight per connection when saturating


# --- the processes ---------------------------------------------------------------------------------


async def echo_server(compression: bool) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws):  # type: ignore[no-untyped-def]
        async for message in ws:
            await ws.send(message)

    options = {} if compression else {"compression": None}
    async with serve(echo, "127.0.0.1", 0, ping_interval=None, **options) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


async def tap_process(upstream: str, uvloop: bool, workers: int) -> None:
    from wsmon.core.reducer import Reducer
    from wsmon.sources.tap import TapSource

    tap = TapSource("127.0.0.1", 0, upstream, uvloop=uvloop, workers=workers)
    if uvloop and not tap.uses_uvloop:
        raise SystemExit("uvloop is not installed: pip install 'wsmon[fast]'")
    reducer = Reducer()
    task = asyncio.create_task(tap.run(reducer.apply))
    await tap.listening.wait()
    print(tap.port, flush=True)
    await task


class _Half(asyncio.Protocol):
    """One side of the reference proxy: what it reads is written to the other side, nothing else."""

    def __init__(self) -> None:
        self.peer: asyncio.Transport | None = None
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.early.append(data)
        else:
            self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()


async def plain_proxy(upstream: str) -> None:
    """The reference: a plain asyncio byte proxy (no parsing, no events), what any forwarder costs."""
    host, port = upstream.removeprefix("ws://").rstrip("/").rsplit(":", 1)
    loop = asyncio.get_running_loop()

    class Client(_Half):
        def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
            super().connection_made(transport)
            self.connecting = loop.create_task(self.connect())

        async def connect(self) -> None:
            up, upside = await loop.create_connection(_Half, host, int(port))
            upside.peer, self.peer = self.transport, up
            for chunk in self.early:
                up.write(chunk)

    server = await loop.create_server(Client, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Future()


async def load(url: str, connections: int, rate: float, seconds: float, compression: bool) -> dict:
    """rate > 0: a steady rate spread over the connections, measuring each round trip; rate 0: as fast
    as WINDOW messages in flight per connection allow, counting echoes."""
    from websockets.asyncio.client import connect

    options = {} if compression else {"compression": None}
    sockets = [await connect(url, ping_interval=None, max_queue=None, **options) for _ in range(connections)]
    samples: list[float] = []
    received = 0
    warmup = 1.0
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds

    def message(index: int, seq: int) -> str:
        return json.dumps(
            {"type": "bench", "conn": index, "seq": seq, "t": time.perf_counter(), "pad": "x" * 64}
        )

    async def steady(index: int, ws) -> None:  # type: ignore[no-untyped-def]
        period = connections / rate
        next_send = started + random.random() * period
        seq = 0
        while True:
            delay = next_send - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() >= stop_at:
                return
            await ws.send(message(index, seq))
            seq += 1
            next_send += period

    async def reader(index: int, ws) -> None:  # type: ignore[no-untyped-def]
        nonlocal received
        async for raw in ws:
            now = time.perf_counter()
            if now >= measure_from and now < stop_at:
                received += 1
                if rate:
                    samples.append((now - json.loads(raw)["t"]) * 1000.0)
            if not rate and now < stop_at:
                await ws.send(message(index, 0))

    async def announce() -> None:
        # The orchestrator samples the tap's CPU between these two lines: the measured window only.
        await asyncio.sleep(measure_from - time.perf_counter())
        print("measuring", flush=True)
        await asyncio.sleep(stop_at - time.perf_counter())
        print("stopped", flush=True)

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
    announcer = asyncio.create_task(announce())
    if rate:
        await asyncio.gather(*(steady(i, ws) for i, ws in enumerate(sockets)))
    else:
        for index, ws in enumerate(sockets):
            for _ in range(WINDOW):
                await ws.send(message(index, 0))
    await announcer
    await asyncio.sleep(0.5)  # the last echoes
    await asyncio.gather(*(ws.close() for ws in sockets))
    for task in readers:
        task.cancel()
    return {"samples": samples, "per_second": received / seconds}


# --- the orchestration -----------------------------------------------------------------------------


def spawn(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


class Tree:
    """A process and its children (the tap's workers): their CPU over a window, each apart."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def times(self) -> dict[int, float]:
        found: dict[int, float] = {}
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                found[process.pid] = times.user + times.system
        return found

    def rss_mib(self) -> float:
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total / 2**20


def run_clients(url: str, args: argparse.Namespace, rate: float, watch: Tree | None) -> dict:
    """One load run in its own process; meanwhile the route's processes' CPU and RSS are sampled."""
    command = [sys.executable, __file__, "client", url, str(args.connections), str(rate), str(args.seconds)]
    if args.compression:
        command.append("--compression")
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "measuring"
    cpu_start, wall_start = (watch.times() if watch else {}), time.perf_counter()
    assert client.stdout.readline().strip() == "stopped"
    elapsed = time.perf_counter() - wall_start
    cpu_end = watch.times() if watch else {}
    result = json.loads(client.stdout.read())
    client.wait()
    if watch is not None:
        busy = {pid: cpu_end[pid] - cpu_start[pid] for pid in cpu_end if pid in cpu_start}
        result["cpu_session"] = 100.0 * busy.get(watch.root.pid, 0.0) / elapsed
        result["cpu_workers"] = 100.0 * sum(v for pid, v in busy.items() if pid != watch.root.pid) / elapsed
        result["rss_mib"] = watch.rss_mib()
    return result


def rounds(args: argparse.Namespace, rate: float, routes: dict[str, tuple[str, Tree | None]]) -> dict:
    """Every route once a round, the order turned each round, so drift on a shared machine hits all."""
    runs: dict[str, list[dict]] = {name: [] for name in routes}
    order = list(routes)
    for index in range(args.rounds):
        turned = order[index % len(order) :] + order[: index % len(order)]
        for name in turned:
            url, watch = routes[name]
            runs[name].append(run_clients(url, args, rate, watch))
    return runs


def cpu(runs: list[dict]) -> str:
    session = statistics.median(run["cpu_session"] for run in runs)
    workers = statistics.median(run["cpu_workers"] for run in runs)
    if workers:
        return f"CPU {session + workers:5.1f} % (session {session:.1f} + workers {workers:.1f})"
    return f"CPU {session:5.1f} %"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(args: argparse.Namespace) -> None:
    extra = ["--compression"] if args.compression else []
    server, server_port = spawn("server", *extra)
    started: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        upstream = f"ws://127.0.0.1:{server_port}"
        workers = str(args.tap_workers)
        wanted: dict[str, tuple[str, ...]] = {"tap, asyncio": ("tap", upstream, "--workers", workers)}
        has_uvloop = importlib.util.find_spec("uvloop") is not None
        if has_uvloop:
            wanted["tap, uvloop"] = ("tap", upstream, "--workers", workers, "--uvloop")
        wanted["plain proxy, asyncio"] = ("proxy", upstream)
        if has_uvloop:
            wanted["plain proxy, uvloop"] = ("proxy", upstream, "--uvloop")
        for name, argv in wanted.items():
            started[name] = spawn(*argv)
        time.sleep(1.0)  # the taps' workers start after the tap listens
        routes: dict[str, tuple[str, Tree | None]] = {"direct": (f"{upstream}/", None)}
        for name, (process, port) in started.items():
            routes[name] = (f"ws://127.0.0.1:{port}/", Tree(process.pid))
        print(
            f"{args.connections} connections, {args.seconds:g} s a run, {args.rounds} rounds, compression "
            f"{'on' if args.compression else 'off'}, tap workers {args.tap_workers}, {os.cpu_count()} cores, "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            + ("" if has_uvloop else "; uvloop not installed: its rows are missing")
        )

        steady = rounds(args, args.rate, routes)
        direct = [x for run in steady["direct"] for x in run["samples"]]
        d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
        print(f"\nsteady {args.rate:g} msg/s over {args.connections} connections, round trips:")
        print(f"  {'direct':<22} p50 {d50:7.3f} ms   p99 {d99:7.3f} ms")
        for name in started:
            samples = [x for run in steady[name] for x in run["samples"]]
            t50, t99 = percentile(samples, 0.5), percentile(samples, 0.99)
            verdict = "meets" if t99 - d99 <= 1.0 else "misses"
            print(
                f"  {name:<22} p50 {t50:7.3f} ms   p99 {t99:7.3f} ms   added p99 {t99 - d99:6.3f} ms "
                f"({verdict} ≤ 1 ms)   {cpu(steady[name])}"
            )

        flat_out = rounds(args, 0, routes)
        direct_rate = statistics.median(r["per_second"] for r in flat_out["direct"])
        print(f"\nsaturated ({WINDOW} in flight per connection), echoes/s, median of {args.rounds} rounds:")
        print(f"  {'direct':<22} {direct_rate:9.0f}")
        for name in started:
            ratios = [
                t["per_second"] / d["per_second"]
                for d, t in zip(flat_out["direct"], flat_out[name], strict=True)
            ]
            ratio = statistics.median(ratios)
            rate = statistics.median(r["per_second"] for r in flat_out[name])
            verdict = "meets" if ratio >= 0.9 else "misses"
            rss = max(r["rss_mib"] for r in flat_out[name])
            print(
                f"  {name:<22} {rate:9.0f}   ratio {ratio:.3f} ({verdict} ≥ 0.9; rounds "
                f"{', '.join(f'{r:.2f}' for r in ratios)})   {cpu(flat_out[name])}, RSS {rss:.0f} MiB"
            )
        print(
            "\nCPU: % of one core over the measured window; a tap's session process and its workers apart. "
            f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
    finally:
        stop_all([server, *(p for p, _port in started.values())])


def stop_all(processes: list[subprocess.Popen[Any]]) -> None:
    """SIGTERM to each, then SIGKILL to those still there after 5 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_loop(main_coroutine: Any, uvloop: bool) -> None:
    if uvloop:
        import uvloop as fast

        fast.run(main_coroutine)
    else:
        asyncio.run(main_coroutine)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "role", nargs="?", default="bench", choices=["bench", "server", "tap", "proxy", "client"]
    )
    parser.add_argument("target", nargs="*")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--tap-workers", "--workers", type=int, default=1, help="the tap's worker processes")
    parser.add_argument("--uvloop", action="store_true", help="(tap, proxy) run on uvloop")
    options = parser.parse_args()
    if options.role == "server":
        asyncio.run(echo_server(options.compression))
    elif options.role == "tap":
        asyncio.run(tap_process(options.target[0], options.uvloop, options.tap_workers))
    elif options.role == "proxy":
        run_loop(plain_proxy(options.target[0]), options.uvloop)
    elif options.role == "client":
        url, connections, rate, seconds = options.target
        outcome = asyncio.run(load(url, int(connections), float(rate), float(seconds), options.compression))
        print(json.dumps(outcome))
    else:
        main(options)
