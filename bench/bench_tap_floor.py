"""What forwarding alone costs at the demo's steady load: wsmon's tap against a plain byte proxy.

Issue 13's goal for all of wsmon's processes at a steady 1,000 connections × 1 msg/s with the tap is
≤ 10 % of a core. A proxy that does nothing but forward those bytes pays for every read and write of
them too; this prints that floor beside the tap, under the same load, measured in the same run:

- the demo server (`wsmon.demo.server`) and its load generator (`wsmon.demo.loadgen --load steady`),
  ~5 frames per message, as `bench_dashboard_cpu.py --load steady` runs them under `wsmon demo`;
- the routes, in turn each round (the order turned every round): "tap, uvloop" — wsmon's TapSource
  (its process, which decodes the worker's event batches into a Reducer, and its worker process,
  which forwards and parses) — and "plain proxy, uvloop" and "plain proxy, asyncio" — bench_tap.py's
  reference proxy, which forwards and does nothing else;
- each route's processes' utime + stime over the window (after a warm-up), % of one core.

    python bench/bench_tap_floor.py [--clients 1000] [--rate 1] [--seconds 20] [--warmup 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_tap import Tree, spawn, stop_all

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"the demo server did not listen on {port} within {timeout} s")


def measure(route_port: int, tree: Tree, args: argparse.Namespace) -> dict[str, float]:
    """One steady load through the route; its processes' CPU over the window after the warm-up."""
    loadgen = subprocess.Popen(
        [
            sys.executable, "-m", "wsmon.demo.loadgen", "--url", f"ws://127.0.0.1:{route_port}/",
            "--load", "steady", "--clients", str(args.clients), "--rate", str(args.rate),
            "--duration", str(args.warmup + args.seconds + 1),
        ],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(args.warmup)
        start, wall = tree.times(), time.perf_counter()
        time.sleep(args.seconds)
        end, elapsed = tree.times(), time.perf_counter() - wall
    finally:
        loadgen.wait(timeout=args.warmup + args.seconds + 30)
    busy = {pid: end[pid] - start[pid] for pid in end if pid in start}
    root = busy.get(tree.root.pid, 0.0)
    others = sum(v for pid, v in busy.items() if pid != tree.root.pid)
    share = 100 / elapsed
    return {"process": root * share, "workers": others * share, "all": (root + others) * share}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1.0, help="msg/s per client")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "wsmon.demo.server",
            "--port", str(port), "--max-connections", str(args.clients * 2),
        ],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    upstream = f"ws://127.0.0.1:{port}"
    routes: dict[str, tuple[str, ...]] = {}
    if importlib.util.find_spec("uvloop") is not None:
        routes["tap, uvloop"] = ("tap", upstream, "--workers", "1", "--uvloop")
        routes["plain proxy, uvloop"] = ("proxy", upstream, "--uvloop")
    routes["plain proxy, asyncio"] = ("proxy", upstream)
    started: dict[str, tuple[subprocess.Popen[str], int]] = {}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in routes}
    try:
        wait_listening(port)
        started = {name: spawn(*route) for name, route in routes.items()}
        order = list(routes)
        for index in range(args.rounds):
            for name in order[index % len(order) :] + order[: index % len(order)]:
                process, route_port = started[name]
                results[name].append(measure(route_port, Tree(process.pid), args))
                print(f"  round {index + 1}, {name}: {results[name][-1]['all']:.1f} %", flush=True)
    finally:
        stop_all([server, *(p for p, _port in started.values())])
    print()
    print(f"steady {args.clients} × {args.rate:g} msg/s through each route, % of one core", end="")
    print(f" (median of {args.rounds})")
    print(f"{'route':24} {'process':>8} {'worker':>8} {'all':>8}   each round (all)")
    for name, runs in results.items():
        median = {key: statistics.median(run[key] for run in runs) for key in ("process", "workers", "all")}
        rounds = ", ".join(f"{run['all']:.1f}" for run in runs)
        figures = f"{median['process']:7.1f}% {median['workers']:7.1f}% {median['all']:7.1f}%"
        print(f"{name:24} {figures}   {rounds}")
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
