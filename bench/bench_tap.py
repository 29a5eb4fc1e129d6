"""What the tap costs: its added round-trip latency and its throughput against a direct connection.

The echo server, the tap and the load clients each run in their own process; direct and tapped runs
use the same echo server and the same client code in the same run, so only the tap differs. Figures:

- added round-trip latency p50/p99 at a steady 1,000 messages/s over 100 connections (goal: p99 ≤ 1 ms);
- saturated throughput through the tap as a ratio of direct (goal ≥ 0.8);
- the tap process's CPU (percent of one core) and peak RSS while carrying each load; the tap process
  folds its events into a Reducer, as wsmon does.

    python bench/bench_tap.py [--seconds 10] [--rounds 3] [--connections 100] [--rate 1000]
                              [--compression] [--forward-only]

Messages are ~130-byte JSON objects (read by the tap's delivery pairing); compression is off by
default, as in Node's `ws`, and on with --compression.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

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


async def tap_process(upstream: str, forward_only: bool) -> None:
    from wsmon.core.reducer import Reducer
    from wsmon.sources.tap import TapSource
    from wsmon.sources.wire import WireParser

    if forward_only:
        # A reference only: the same proxy with its parsers switched off, to split the hop's cost from
        # the parsing's.
        WireParser.from_client = WireParser.from_server = lambda self, data: None  # type: ignore[method-assign]

    tap = TapSource("127.0.0.1", 0, upstream)
    reducer = Reducer()
    task = asyncio.create_task(tap.run(reducer.apply))
    await tap.listening.wait()
    print(tap.port, flush=True)
    await task


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


def spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def run_clients(url: str, args: argparse.Namespace, rate: float, watch: psutil.Process | None) -> dict:
    """One load run in its own process; meanwhile the tap process's CPU and RSS are sampled."""
    command = [sys.executable, __file__, "client", url, str(args.connections), str(rate), str(args.seconds)]
    if args.compression:
        command.append("--compression")
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "measuring"
    cpu_start, wall_start = (watch.cpu_times() if watch else None), time.perf_counter()
    assert client.stdout.readline().strip() == "stopped"
    result = json.loads(client.stdout.read())
    client.wait()
    if watch is not None and cpu_start is not None:
        cpu_end = watch.cpu_times()
        busy = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
        result["tap_cpu_percent"] = 100.0 * busy / (time.perf_counter() - wall_start)
        result["tap_rss_mib"] = watch.memory_info().rss / 2**20
    return result


def rounds(
    args: argparse.Namespace, rate: float, direct_url: str, tap_url: str, watch: psutil.Process
) -> dict:
    """Direct and tapped runs, alternating which goes first, so drift on a shared machine hits both."""
    runs: dict[str, list[dict]] = {"direct": [], "tapped": []}
    for index in range(args.rounds):
        order = [("direct", direct_url), ("tapped", tap_url)]
        for route, url in order if index % 2 == 0 else reversed(order):
            runs[route].append(run_clients(url, args, rate, watch if route == "tapped" else None))
    return runs


def cpu(runs: dict) -> float:
    return statistics.median(run["tap_cpu_percent"] for run in runs["tapped"])


def rss(runs: dict) -> float:
    return max(run["tap_rss_mib"] for run in runs["tapped"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(args: argparse.Namespace) -> None:
    extra = ["--compression"] if args.compression else []
    server, server_port = spawn("server", *extra)
    tap, tap_port = spawn("tap", f"ws://127.0.0.1:{server_port}")
    watch = psutil.Process(tap.pid)
    direct_url, tap_url = f"ws://127.0.0.1:{server_port}/", f"ws://127.0.0.1:{tap_port}/"
    try:
        print(
            f"{args.connections} connections, {args.seconds:g} s a run, compression "
            f"{'on' if args.compression else 'off'}, {os.cpu_count()} cores; idle tap RSS "
            f"{watch.memory_info().rss / 2**20:.1f} MiB"
        )
        steady = rounds(args, args.rate, direct_url, tap_url, watch)
        direct = [x for run in steady["direct"] for x in run["samples"]]
        tapped = [x for run in steady["tapped"] for x in run["samples"]]
        d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
        t50, t99 = percentile(tapped, 0.5), percentile(tapped, 0.99)
        added99 = [
            percentile(t["samples"], 0.99) - percentile(d["samples"], 0.99)
            for d, t in zip(steady["direct"], steady["tapped"], strict=True)
        ]
        print(
            f"\nsteady {args.rate:g} msg/s, {args.rounds} rounds: "
            f"{len(direct)} round trips direct, {len(tapped)} tapped"
        )
        print(f"  direct    p50 {d50:7.3f} ms   p99 {d99:7.3f} ms")
        print(f"  tapped    p50 {t50:7.3f} ms   p99 {t99:7.3f} ms")
        verdict = "meets" if t99 - d99 <= 1.0 else "misses"
        print(
            f"  added     p50 {t50 - d50:7.3f} ms   p99 {t99 - d99:7.3f} ms   ({verdict} the goal p99 ≤ 1 ms)"
        )
        print(f"  added p99 per round: {', '.join(f'{a:.3f}' for a in added99)} ms")
        print(f"  tap CPU {cpu(steady):.1f} % of one core, RSS {rss(steady):.1f} MiB")

        flat_out = rounds(args, 0, direct_url, tap_url, watch)
        ratios = [
            t["per_second"] / d["per_second"]
            for d, t in zip(flat_out["direct"], flat_out["tapped"], strict=True)
        ]
        direct_rate = statistics.median(r["per_second"] for r in flat_out["direct"])
        tapped_rate = statistics.median(r["per_second"] for r in flat_out["tapped"])
        ratio = statistics.median(ratios)
        print(f"\nsaturated ({WINDOW} in flight per connection), echoes/s, median of {args.rounds} rounds:")
        print(
            f"  direct {direct_rate:9.0f}   tapped {tapped_rate:9.0f}   "
            f"ratio {ratio:.3f} ({'meets' if ratio >= 0.8 else 'misses'} the goal ≥ 0.8)"
        )
        print(f"  ratio per round: {', '.join(f'{r:.2f}' for r in ratios)}")
        print(f"  tap CPU {cpu(flat_out):.1f} % of one core, RSS {rss(flat_out):.1f} MiB")
        if args.forward_only:
            bare, bare_port = spawn("tap", f"ws://127.0.0.1:{server_port}", "--forward-only")
            try:
                reference = rounds(
                    args, 0, direct_url, f"ws://127.0.0.1:{bare_port}/", psutil.Process(bare.pid)
                )
            finally:
                bare.kill()
                bare.wait()
            bare_ratio = statistics.median(
                t["per_second"] / d["per_second"]
                for d, t in zip(reference["direct"], reference["tapped"], strict=True)
            )
            print(
                f"  reference, the tap with its parsers off: ratio {bare_ratio:.3f}, "
                f"CPU {cpu(reference):.1f} % of one core"
            )
    finally:
        for process in (tap, server):
            process.kill()
            process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="bench", choices=["bench", "server", "tap", "client"])
    parser.add_argument("target", nargs="*")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument(
        "--forward-only", action="store_true", help="also measure the tap with its parsers off"
    )
    options = parser.parse_args()
    if options.role == "server":
        asyncio.run(echo_server(options.compression))
    elif options.role == "tap":
        asyncio.run(tap_process(options.target[0], options.forward_only))
    elif options.role == "client":
        url, connections, rate, seconds = options.target
        outcome = asyncio.run(load(url, int(connections), float(rate), float(seconds), options.compression))
        print(json.dumps(outcome))
    else:
        main(options)
