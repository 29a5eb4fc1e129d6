"""A typical session's events, and a recording of them: the input of the store and report benches.

The mix is what a tap and probes on a busy server give: every second one Traffic event per open
connection (all stamped with the tick's time), delivery latency samples for a quarter of them and
five pings (each stamped on its own, with full-precision floats, as measured values are), a log line
per 50 connections, one connection in 200 closing and another opening, one ProcessSample, and now
and then a DeliveryFailed.

    python bench/bench_report_input.py OUT.wsmon [--events 1000000] [--seconds 3600]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.store import RecordingWriter, new_header
from wsmon.store.writer import KEYFRAME_EVERY

DELIVERY_RATIO = 0.25  # delivery latency samples a second, per connection
PINGS_PER_SECOND = 5


def logs_per_second(connections: int) -> int:
    return max(2, connections // 50)


def churn_per_second(connections: int) -> int:
    """Connections closed (and as many opened) a second."""
    return max(1, connections // 200)


def connections_for(events: int, seconds: int, delivery_ratio: float = DELIVERY_RATIO) -> int:
    """How many connections make a session of ``events`` events over ``seconds``."""
    # Logs and churn grow with the connections (1/50 and 2/200 of them), so per second there are
    # connections * (1 + ratio + 1/50 + 1/100) events plus the pings and the process sample.
    per_second = events / seconds
    return max(1, round((per_second - PINGS_PER_SECOND - 1) / (1 + delivery_ratio + 0.03)))


def typical_seconds(
    connections: int, seconds: int, seed: int = 1, delivery_ratio: float = DELIVERY_RATIO
) -> Iterator[list[ev.Event]]:
    """Each second's events, in the order a session sees them (by time)."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    uniform = rng.random
    wall0 = 1_760_000_000.0 + uniform()
    mono0 = 86_400.0 + uniform() * 1000  # a machine up for a day: monotonic times as they really look
    open_ids = [f"conn-{i}" for i in range(connections)]
    next_id = connections
    deliveries = round(connections * delivery_ratio)
    for second in range(seconds):
        tick_mono = mono0 + second + uniform() * 1e-3
        tick_wall = wall0 + second + uniform() * 1e-3
        out: list[ev.Event] = []
        for conn in open_ids:
            msgs = bits(3) % 6
            out.append(
                ev.Traffic(
                    wall=tick_wall,
                    mono=tick_mono,
                    conn=conn,
                    msgs_in=msgs,
                    msgs_out=msgs + bits(1),
                    bytes_in=msgs * (60 + bits(5)),
                    bytes_out=msgs * (60 + bits(6)),
                )
            )
        out.append(
            ev.ProcessSample(
                wall=tick_wall,
                mono=tick_mono,
                target="server",
                pid=4242,
                cpu_percent=5 + uniform() * 35,
                rss_bytes=(150 << 20) + bits(22),
                threads=12,
                fds=40 + len(open_ids),
                cores=2,
            )
        )
        timed: list[ev.Event] = []
        for _ in range(deliveries):
            offset = uniform()
            timed.append(
                ev.LatencySample(
                    wall=tick_wall + offset,
                    mono=tick_mono + offset,
                    kind="delivery",
                    ms=rng.lognormvariate(1.5, 0.5),
                    target="ws",
                    conn=open_ids[bits(30) % len(open_ids)],  # the tap's pairing names the sender
                )
            )
        for _ in range(PINGS_PER_SECOND):
            offset = uniform()
            timed.append(
                ev.LatencySample(
                    wall=tick_wall + offset,
                    mono=tick_mono + offset,
                    kind="ping",
                    ms=rng.lognormvariate(0.3, 0.3),
                )
            )
        for _ in range(logs_per_second(connections)):
            offset = uniform()
            timed.append(
                ev.LogLine(
                    wall=tick_wall + offset,
                    mono=tick_mono + offset,
                    level="info",
                    text=f"delivered msg_{bits(40):010x} to device-{bits(10)}",
                    source="server",
                )
            )
        for _ in range(churn_per_second(connections)):
            offset = uniform()
            gone = open_ids.pop(bits(30) % len(open_ids))
            timed.append(
                ev.ConnectionClosed(
                    wall=tick_wall + offset,
                    mono=tick_mono + offset,
                    conn=gone,
                    code=1000,
                    closed_by="client",
                    duration_s=uniform() * 300,
                    source="tap",
                )
            )
            new = f"conn-{next_id}"
            next_id += 1
            open_ids.append(new)
            timed.append(
                ev.ConnectionOpened(
                    wall=tick_wall + offset,
                    mono=tick_mono + offset,
                    conn=new,
                    peer=f"10.0.{bits(8)}.{bits(8)}:{30000 + bits(14)}",
                    path="/ws",
                    handshake_ms=rng.lognormvariate(1, 0.4),
                    source="tap",
                )
            )
        if uniform() < 0.05:
            offset = uniform()
            timed.append(
                ev.DeliveryFailed(
                    wall=tick_wall + offset,
                    mono=tick_mono + offset,
                    message_id=f"msg_{bits(40):010x}",
                    conn=open_ids[0],
                    reason="Connection not open",
                    source="server",
                )
            )
        timed.sort(key=lambda event: event.mono)
        out.extend(timed)
        yield out


def write_typical_recording(
    path: Path,
    connections: int,
    seconds: int,
    *,
    keyframe_every: int = KEYFRAME_EVERY,
    seed: int = 1,
    delivery_ratio: float = DELIVERY_RATIO,
) -> int:
    """Record a typical session as the live session does: reduce, append, flush every half second."""
    reducer = Reducer()
    header = new_header(f"bench: {connections} connections, {seconds} s", extra={"bench": True})
    written = 0
    with RecordingWriter(path, header, keyframe_every=keyframe_every, overwrite=True) as writer:
        for events in typical_seconds(connections, seconds, seed, delivery_ratio):
            half = len(events) // 2
            for part in (events[:half], events[half:]):
                reducer.apply_many(part)
                writer.extend(part)
                writer.flush(reducer.state)
            written += len(events)
        writer.close(reducer.state)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--delivery-ratio", type=float, default=DELIVERY_RATIO)
    args = parser.parse_args()
    connections = connections_for(args.events, args.seconds, args.delivery_ratio)
    started = time.perf_counter()
    written = write_typical_recording(args.out, connections, args.seconds, delivery_ratio=args.delivery_ratio)
    elapsed = time.perf_counter() - started
    size = args.out.stat().st_size
    print(f"{args.out}: {written:,} events, {connections} connections, {args.seconds} s")
    print(f"  {size:,} bytes ({size / written:.1f} B/event), written in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
