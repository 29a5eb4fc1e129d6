"""The fleet over Redis Streams (issue 13, item 4): what one agent can publish, how late its events reach
the fleet's State, and what a node costs Redis.

Goals: one agent publishes ≥ 50,000 events/s; agent-to-screen (an event emitted by the agent's session →
applied to the fleet's State) p99 ≤ 1 s. Redis memory per node-hour at the demo's rate has no goal; it
is measured and extrapolated (said how below).

Everything runs on 127.0.0.1 against a private redis-server on a free port (no persistence):
1. publish: one Publisher (outputs/publish.py) fed a realistic mix of events (traffic, opens, closes,
   delivery latencies) in bursts of 500 as fast as it drains them; events/s = events acknowledged by
   Redis / wall seconds, with none dropped.
2. latency: a Publisher and a FleetSource (sources/fleet.py) in two processes; the agent emits markers
   stamped with their wall time at --rate events/s; the fleet applies every event to a Reducer and
   takes now − the marker's wall time. Both processes are on this machine, so the clocks agree.
3. memory: `wsmon attach --tap … --publish … --node bench --headless` in front of the demo server, the
   demo's load generator (50 clients, 1 msg/s each) through the tap for --load-seconds; then the stream's
   MEMORY USAGE (all entries, SAMPLES 0), its entries and events, and the bytes sent (the entries'
   field bytes). Per node-hour = bytes per second × 3,600; the stream is capped at STREAM_MAXLEN entries,
   so a node's memory is at most MAXLEN × the mean entry size, whatever the hour.

    python bench/bench_fleet.py [--events 300000] [--rate 200] [--seconds 10] [--load-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from bench_attach import accepts, free_port
from bench_dashboard_cpu import wait_until

from wsmon.core import events as ev
from wsmon.core.fleet import stream_key
from wsmon.core.reducer import Reducer
from wsmon.outputs.publish import STREAM_MAXLEN, Publisher
from wsmon.sources.fleet import DISCOVER_S, FleetSource

PUBLISH_GOAL = 50_000
LATENCY_GOAL_MS = 1000.0


def wait_port(port: int) -> None:
    wait_until(lambda: accepts(port), 20, f"something to listen on {port}", step=0.05)


@contextmanager
def private_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    port, folder = free_port(), tempfile.mkdtemp(prefix="wsmon-bench-fleet-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def sample_events(count: int) -> list[ev.Event]:
    """What a busy server's session emits: traffic reports, opens, closes, delivery latencies."""
    out: list[ev.Event] = []
    for n in range(count):
        wall, mono, conn = 1_800_000_000.0 + n / 1000, n / 1000, f"c{n % 1000}"
        kind = n % 10
        if kind < 6:
            out.append(
                ev.Traffic(
                    wall=wall, mono=mono, conn=conn, msgs_in=3, msgs_out=4, bytes_in=310, bytes_out=420
                )
            )
        elif kind < 8:
            out.append(ev.LatencySample(wall=wall, mono=mono, kind="delivery", ms=1.7, ref=f"msg_{n}"))
        elif kind == 8:
            out.append(
                ev.ConnectionOpened(
                    wall=wall, mono=mono, conn=conn, peer="127.0.0.1:51234", path="/", source="tap"
                )
            )
        else:
            out.append(
                ev.ConnectionClosed(
                    wall=wall, mono=mono, conn=conn, code=1000, closed_by="client", source="tap"
                )
            )
    return out


async def publish_rate(url: str, total: int) -> tuple[float, int]:
    events = sample_events(10_000)
    publisher = Publisher(url, "bench-publish")
    task = asyncio.create_task(publisher.run())
    started = time.perf_counter()
    fed = 0
    while fed < total:
        # Feed while the buffer has room, as a session's emit would between its awaits.
        if len(publisher._buffer) < 50_000:  # the bench paces itself on the buffer
            for event in events[fed % 10_000 : fed % 10_000 + 500]:
                publisher.on_event(event)
            fed += 500
        await asyncio.sleep(0)
    while publisher.published < total:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return publisher.published / elapsed, publisher.dropped_total


def agent(url: str, rate: float, seconds: float) -> None:
    """The agent process of the latency run: markers stamped with their wall time, at ``rate``/s."""

    async def main() -> None:
        publisher = Publisher(url, "bench-latency")
        task = asyncio.create_task(publisher.run())
        # Its first heartbeat registers the node; the fleet finds it within DISCOVER_S. Measured after
        # that: the steady state, not a node's first second (said in docs/scale.md).
        await asyncio.sleep(DISCOVER_S + 0.5)
        gap, end = 1.0 / rate, time.monotonic() + seconds
        while time.monotonic() < end:
            publisher.on_event(ev.Marker(wall=time.time(), mono=time.monotonic(), text="t"))
            await asyncio.sleep(gap)
        await publisher.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


async def latency(url: str, rate: float, seconds: float) -> list[float]:
    reducer = Reducer()
    samples: list[float] = []

    def emit(event: ev.Event) -> None:
        reducer.apply(event)
        if isinstance(event, ev.Marker):
            samples.append((time.time() - event.wall) * 1000.0)

    fleet = FleetSource(url)
    reading = asyncio.create_task(fleet.run(emit))
    await asyncio.wait_for(fleet.reading.wait(), 10)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--agent", url, "--rate", str(rate), "--seconds", str(seconds)
    )
    await proc.wait()
    await asyncio.sleep(1.0)
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    return samples


def demo_memory(url: str, load_seconds: float) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    port, tap = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "wsmon.demo.server", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            env=env,
        )
    ]
    try:
        wait_port(port)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wsmon",
                    "attach",
                    "--tap",
                    f"127.0.0.1:{tap}=ws://127.0.0.1:{port}",
                    "--publish",
                    url,
                    "--node",
                    "bench",
                    "--headless",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
        wait_port(tap)
        client = redis.Redis.from_url(url)
        before = int(client.info("memory")["used_memory"])
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "wsmon.demo.loadgen",
                "--url",
                f"ws://127.0.0.1:{tap}/",
                "--clients",
                "50",
                "--duration",
                str(load_seconds),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        time.sleep(1.0)
        elapsed = time.monotonic() - started
        key = stream_key("bench")
        entries = client.xrange(key)
        sent = sum(len(k) + len(v) for _id, fields in entries for k, v in fields.items())
        events = sum(int(fields.get(b"n", b"0")) for _id, fields in entries)
        usage = int(client.memory_usage(key, samples=0) or 0)
        used = int(client.info("memory")["used_memory"]) - before
        return {
            "seconds": elapsed,
            "entries": len(entries),
            "events": events,
            "bytes_sent": sent,
            "stream_bytes": usage,
            "used_memory_delta": used,
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--load-seconds", type=float, default=20.0, help="length of the demo load")
    parser.add_argument("--agent", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent:
        agent(args.agent, args.rate, args.seconds)
        return 0
    print(f"load average before: {os.getloadavg()}")
    with private_redis() as url:
        rate, dropped = asyncio.run(publish_rate(url, args.events))
        print(
            f"publish: {rate:,.0f} events/s from one agent ({args.events:,} events, {dropped} dropped);",
            end=" ",
        )
        print(f"goal ≥ {PUBLISH_GOAL:,}")
        samples = asyncio.run(latency(url, args.rate, args.seconds))
        ordered = sorted(samples)
        p50, p99, worst = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99, 1.0))
        print(f"agent → fleet State: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms", end=" ")
        print(f"over {len(samples)} events at {args.rate:g}/s; goal p99 ≤ {LATENCY_GOAL_MS:.0f} ms")
        memory = demo_memory(url, args.load_seconds)
    m = memory
    seconds = m["seconds"]
    mean_entry = m["stream_bytes"] / max(m["entries"], 1)
    print(
        f"demo rate (50 clients × 1 msg/s, {seconds:.0f} s): {m['events'] / seconds:.0f} events/s,", end=" "
    )
    print(
        f"{m['entries'] / seconds:.1f} entries/s, {m['bytes_sent'] / seconds / 1024:.1f} KiB/s sent,", end=" "
    )
    print(f"{m['stream_bytes'] / max(m['events'], 1):.0f} B of stream per event")
    hourly = m["stream_bytes"] / seconds * 3600 / 2**20
    print(f"Redis memory per node-hour: {hourly:.1f} MiB uncapped", end=" ")
    print(
        f"(MEMORY USAGE {m['stream_bytes'] / 1024:.0f} KiB after {seconds:.0f} s, × 3,600 / {seconds:.0f};",
        end=" ",
    )
    print(f"INFO used_memory grew {m['used_memory_delta'] / 1024:.0f} KiB);", end=" ")
    capped = STREAM_MAXLEN * mean_entry / 2**20
    print(f"the cap, {STREAM_MAXLEN:,} entries, holds ≈ {capped:.1f} MiB at this entry size")
    print(f"load average after: {os.getloadavg()}")
    ok = rate >= PUBLISH_GOAL and dropped == 0 and p99 <= LATENCY_GOAL_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
