"""Seek time on a long recording (goal: 200 ms or less to any moment of a 10-million-event hour).

Generates the recording into a temporary directory (about a minute), then seeks to random times:
each seek is a keyframe read plus a fold of the events after it. Prints worst, median and mean,
for seeks on an open recording and for a fresh open followed by one seek (what `wsmon replay` does).

    python bench/bench_seek.py [--events 10000000] [--seconds 3600] [--seeks 20] [--keep FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_report_input import DELIVERY_RATIO, connections_for, write_typical_recording

from wsmon.store import RecordingReader, ReplayEngine
from wsmon.store.writer import KEYFRAME_EVERY


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def measure(path: Path, seeks: int, seed: int) -> None:
    rng = random.Random(seed)
    started = time.perf_counter()
    reader = RecordingReader(path)
    opened = time.perf_counter() - started
    first, last = reader.first_mono, reader.last_mono
    assert first is not None and last is not None
    print(f"open: {_ms(opened)}  ({reader.event_count:,} events in {reader.batch_count:,} batches)")

    engine = ReplayEngine(reader)
    warm: list[float] = []
    for _ in range(seeks):
        target = rng.uniform(first, last)
        started = time.perf_counter()
        engine.seek_time(target)
        warm.append(time.perf_counter() - started)
        assert engine.state.seq == engine.position
    # → in a replay: seek_time a span ahead of the replay clock, from a random moment.
    steps_ahead: dict[float, list[float]] = {1.0: [], 10.0: []}
    for _ in range(max(5, seeks // 2)):
        engine.seek_time(rng.uniform(first, max(first, last - 20)))
        for span, times in steps_ahead.items():
            started = time.perf_counter()
            engine.seek_time(engine.clock + span)
            times.append(time.perf_counter() - started)
    steps_back: list[float] = []
    for _ in range(5):
        started = time.perf_counter()
        engine.step(-1)
        steps_back.append(time.perf_counter() - started)
    reader.close()

    cold: list[float] = []
    for _ in range(max(3, seeks // 4)):
        target = rng.uniform(first, last)
        started = time.perf_counter()
        with RecordingReader(path) as fresh:
            ReplayEngine(fresh).seek_time(target)
        cold.append(time.perf_counter() - started)

    for name, times in (
        (f"seek_time, open recording ({len(warm)} random)", warm),
        (f"open + seek_time ({len(cold)} random)", cold),
        ("step back one event (5)", steps_back),
        *((f"→ {span:g} s ahead of the clock ({len(times)})", times) for span, times in steps_ahead.items()),
    ):
        print(f"{name:44s} worst {_ms(max(times))}  median {_ms(statistics.median(times))}")
    verdict = "ok" if max(warm) <= 0.2 else "OVER"
    print(f"goal: worst seek <= 200 ms: {verdict} ({max(warm) * 1000:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--seeks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keyframe-every", type=int, default=KEYFRAME_EVERY)
    parser.add_argument("--delivery-ratio", type=float, default=DELIVERY_RATIO)
    parser.add_argument("--keep", type=Path, help="write the recording here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wsmon-bench-") as tmp:
        path = args.keep or Path(tmp) / "hour.wsmon"
        connections = connections_for(args.events, args.seconds, args.delivery_ratio)
        started = time.perf_counter()
        written = write_typical_recording(
            path,
            connections,
            args.seconds,
            keyframe_every=args.keyframe_every,
            delivery_ratio=args.delivery_ratio,
        )
        elapsed = time.perf_counter() - started
        size = path.stat().st_size
        print(
            f"generated {written:,} events ({connections} connections, {args.seconds} s,"
            f" {args.delivery_ratio} delivery samples/connection/s) in {elapsed:.0f} s:"
            f" {size / 1e6:.0f} MB, {size / written:.1f} B/event,"
            f" keyframe every {args.keyframe_every:,} events"
        )
        measure(path, args.seeks, args.seed)


if __name__ == "__main__":
    main()
