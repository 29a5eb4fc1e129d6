"""Does the tap change what it measures? Connect times under churn, with and without the tap in between.

The demo server (``wsmon.demo.server``) takes churn from the demo's load generator (``--load churn``:
``--connect-rate`` connections a second, each held ``--hold`` s): once with the clients connecting
to it directly, once through a tap (a session process, as wsmon's, folding the events into a Reducer,
and its worker process). Each run gives:

- the clients' own connect time p50 / p95 (TCP connect to the 101, the load generator's tally);
- through the tap, also the tap's: its handshake p95 as wsmon judges it (``connect``, measured while
  keeping up), the handshakes measured while saturated, and how long it was saturated.

Goal (issue 13): at 200 connections/s the tap's connect p95 within 10 % of the clients' direct p95,
or the tap says it is saturated (then those figures are not judged). The direct and tapped runs
alternate, ``--rounds`` times; the load average is printed with them (this machine is shared).

    python bench/bench_tap_fidelity.py [--connect-rate 200] [--hold 1] [--seconds 10] [--rounds 2]
                                       [--tap-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TALLY_PREFIX = "wsmon loadgen tally: "


# --- the tap's session process ----------------------------------------------------------------------


async def tap_process(upstream: str, workers: int) -> None:
    """A TapSource folding into a Reducer; on SIGTERM it prints what it measured, as JSON."""
    from wsmon.core.reducer import Reducer
    from wsmon.core.state import TAP_SATURATED_CONNECT
    from wsmon.sources.tap import TapSource

    tap = TapSource("127.0.0.1", 0, upstream, workers=workers)
    reducer = Reducer()
    task = asyncio.create_task(tap.run(reducer.apply))
    await tap.listening.wait()
    print(tap.port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await tap.stop()
    await task
    state = reducer.state
    judged = state.latency.get("connect")
    saturated = state.latency.get(TAP_SATURATED_CONNECT)
    target = state.targets[tap.target]
    print(
        json.dumps(
            {
                "count": judged.count if judged else 0,
                "p50": judged.session_percentile(50) if judged and judged.count else None,
                "p95": judged.session_percentile(95) if judged and judged.count else None,
                "saturated_count": saturated.count if saturated else 0,
                "saturated_p95": saturated.session_percentile(95) if saturated and saturated.count else None,
                "saturated_s": target.saturated_s(state.last_mono),
                "saturated_spells": target.saturated_count,
            }
        ),
        flush=True,
    )


# --- the bench ------------------------------------------------------------------------------------


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start_server(log: Any) -> tuple[subprocess.Popen[bytes], int]:
    """The demo server, its log lines into a file (read for its port; never left to fill a pipe)."""
    args = ["--port", "0", "--max-connections", "100000", "--leak-kb", "0"]
    server = subprocess.Popen([sys.executable, "-m", "wsmon.demo.server", *args], stdout=log, env=env())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(log.name, encoding="utf-8") as lines:
            for line in lines:
                if "server listening" in line:
                    return server, int(json.loads(line)["port"])
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the demo server did not start")


def churn(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """One churn run of the load generator; its tally."""
    command = [
        sys.executable,
        "-m",
        "wsmon.demo.loadgen",
        f"--url={url}",
        "--load=churn",
        f"--connect-rate={args.connect_rate:g}",
        f"--hold={args.hold:g}",
        f"--duration={args.seconds:g}",
        "--seed=1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=args.seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith(TALLY_PREFIX):
            return json.loads(line.removeprefix(TALLY_PREFIX))
    raise SystemExit(f"the load generator gave no tally: {done.stderr[-500:]}")


def tapped(url: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """A churn run through a tap in front of ``url``: (the clients' tally, the tap's figures)."""
    command = [sys.executable, __file__, "tap", url, f"--tap-workers={args.tap_workers}"]
    tap = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env())
    assert tap.stdout is not None
    port = int(tap.stdout.readline())
    try:
        tally = churn(f"ws://127.0.0.1:{port}/", args)
    finally:
        tap.send_signal(signal.SIGTERM)
    figures = json.loads(tap.stdout.readline())
    tap.wait(timeout=10)
    return tally, figures


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"


def ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.2f}"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(args: argparse.Namespace) -> int:
    print(
        f"churn {args.connect_rate:g} connections/s, held {args.hold:g} s, {args.seconds:g} s a run, "
        f"{args.rounds} rounds; load average {load_average()}",
        flush=True,
    )
    ratios: list[float] = []  # each round's tap p95 / direct p95: the runs of a round are minutes apart
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        server, port = start_server(log)
        url = f"ws://127.0.0.1:{port}/"
        try:
            churn(url, argparse.Namespace(**{**vars(args), "seconds": 3.0}))  # warm-up: not counted
            for n in range(1, args.rounds + 1):
                direct = churn(url, args)
                through, tap = tapped(url, args)
                if direct["connect_p95_ms"] and tap["p95"] is not None:
                    ratios.append(tap["p95"] / direct["connect_p95_ms"])
                print(
                    f"round {n}: direct clients p50 {ms(direct['connect_p50_ms'])} p95 "
                    f"{ms(direct['connect_p95_ms'])} ({direct['opened']} opened, {direct['refused']} refused)"
                    f" | through the tap: clients p95 {ms(through['connect_p95_ms'])} "
                    f"({through['opened']} opened, {through['refused']} refused), "
                    f"tap's judged p50 {ms(tap['p50'])} p95 {ms(tap['p95'])} ({tap['count']} handshakes), "
                    f"saturated {tap['saturated_s']:.1f} s in {tap['saturated_spells']} spells "
                    f"({tap['saturated_count']} handshakes, p95 {ms(tap['saturated_p95'])}, not judged) "
                    f"| ratio tap/direct {ratio(tap['p95'], direct['connect_p95_ms'])}, "
                    f"clients tapped/direct {ratio(through['connect_p95_ms'], direct['connect_p95_ms'])}"
                    f" | load average {load_average()}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    if not ratios:
        print("no figures to compare")
        return 1
    middle = statistics.median(ratios)
    within = abs(middle - 1.0) <= 0.10
    print(
        f"the tap's connect p95 / the clients' direct p95, median of {len(ratios)} rounds: {middle:.2f} "
        f"(goal 0.90-1.10: {'met' if within else 'missed'}); load average {load_average()}"
    )
    return 0 if within else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="bench", choices=["bench", "tap"])
    parser.add_argument("target", nargs="*")
    parser.add_argument("--connect-rate", type=float, default=200.0)
    parser.add_argument("--hold", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tap-workers", type=int, default=1)
    options = parser.parse_args()
    if options.role == "tap":
        asyncio.run(tap_process(options.target[0], options.tap_workers))
    else:
        sys.exit(main(options))
