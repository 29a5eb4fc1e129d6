"""Events per second through the reducer and the recorder together, and recording size per event.

Goals: at least 500,000 events/s on one core, as a ratio to a bare reference measured in the same
run (msgspec-encode + zstd of the same events with a trivial fold); at most 16 bytes per event for
a typical mix. The events are fed as the live session feeds them: apply and append one by one, a
flush with the State every half second of session time.

    python bench/bench_pipeline.py [--seconds 300] [--connections 1000] [--repeat 3]
    python bench/bench_pipeline.py --size-only [--size-seconds 900]   # the recording sizes alone

Then tapped churn: a connection opened and closed through a tap that covers the server, its log
reporting it too (four events), with 1,000 and with 10,000 connections already open. A tapped open
once scanned every connection for the log's row of it (8 % of the process at 1,000 clients); through
the peer index its cost must not grow with the connections open.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import zstandard
from bench_report_input import DELIVERY_RATIO, typical_seconds, write_typical_recording

from wsmon.core import events as ev
from wsmon.core.events import Event
from wsmon.core.reducer import Reducer
from wsmon.store import RecordingWriter, new_header
from wsmon.store.format import ZSTD_LEVEL


def half_seconds(connections: int, seconds: int, delivery_ratio: float) -> list[list[Event]]:
    """The session's events in the chunks the session flushes them in."""
    chunks: list[list[Event]] = []
    for events in typical_seconds(connections, seconds, delivery_ratio=delivery_ratio):
        half = len(events) // 2
        chunks += [events[:half], events[half:]]
    return chunks


def reference(chunks: list[list[Event]], _tmp: Path) -> None:
    encode = msgspec.msgpack.Encoder().encode
    compress = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress
    count = 0
    last = 0.0
    for chunk in chunks:
        for event in chunk:
            count += 1
            if event.mono > last:
                last = event.mono
        compress(encode(chunk))


def reference_per_event(chunks: list[list[Event]], _tmp: Path) -> None:
    """The same, encoding event by event: what a recorder without batch encoding would cost."""
    encode = msgspec.msgpack.Encoder().encode
    compress = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress
    count = 0
    last = 0.0
    for chunk in chunks:
        parts = []
        for event in chunk:
            count += 1
            if event.mono > last:
                last = event.mono
            parts.append(encode(event))
        compress(b"".join(parts))


def reducer_only(chunks: list[list[Event]], _tmp: Path) -> None:
    reducer = Reducer()
    apply = reducer.apply
    for chunk in chunks:
        for event in chunk:
            apply(event)


def pipeline(chunks: list[list[Event]], tmp: Path) -> None:
    reducer = Reducer()
    apply = reducer.apply
    with RecordingWriter(tmp / "pipeline.wsmon", new_header("bench"), overwrite=True) as writer:
        append = writer.append
        for chunk in chunks:
            for event in chunk:
                apply(event)
                append(event)
            writer.flush(reducer.state)
        writer.close(reducer.state)


def best_rate(
    run: Callable[[list[list[Event]], Path], None], chunks: list[list[Event]], repeat: int
) -> tuple[float, float]:
    """Events per second of wall time and of this process's CPU time, each the best of ``repeat``. On a
    machine others share, the CPU figure is the steadier one: a wall figure falls with the load."""
    count = sum(len(chunk) for chunk in chunks)
    best_wall = best_cpu = float("inf")
    with tempfile.TemporaryDirectory(prefix="wsmon-bench-") as tmp:
        for _ in range(repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            run(chunks, Path(tmp))
            best_cpu = min(best_cpu, time.process_time() - started_cpu)
            best_wall = min(best_wall, time.perf_counter() - started)
    return count / best_wall, count / best_cpu


def tapped_pair(i: int, t: float, *, close: bool) -> list[Event]:
    """A connection's open (or close) as the tap and the server's log both report it."""
    local = f"127.0.0.1:{10_000 + i % 50_000}"
    if close:
        return [
            ev.ConnectionClosed(wall=t, mono=t, conn=f"tap:{i}", code=1000, closed_by="client", source="tap"),
            ev.ConnectionClosed(wall=t, mono=t + 0.001, conn=f"c{i}", code=1000, source="server"),
        ]
    return [
        ev.ConnectionOpened(wall=t, mono=t, conn=f"tap:{i}", peer=f"10.0.0.1:{i}", source="tap", local=local),
        ev.ConnectionOpened(wall=t, mono=t + 0.001, conn=f"c{i}", peer=local, source="server"),
    ]


def tapped_churn(open_before: int, churned: int, repeat: int) -> float:
    """Events/s folding ``churned`` tapped connections opened and closed beside ``open_before`` open."""
    best = float("inf")
    for _ in range(repeat):
        reducer = Reducer()
        setup: list[Event] = [ev.TargetAdded(wall=0.0, mono=0.0, target="tap", kind="tap", covers=["server"])]
        for i in range(open_before):
            setup += tapped_pair(i, 1.0 + i * 1e-4, close=False)
        reducer.apply_many(setup)
        timed: list[Event] = []
        for i in range(open_before, open_before + churned):
            t = 10.0 + (i - open_before) * 1e-3
            timed += tapped_pair(i, t, close=False) + tapped_pair(i, t + 5e-4, close=True)
        apply = reducer.apply
        started = time.perf_counter()
        for event in timed:
            apply(event)
        best = min(best, time.perf_counter() - started)
    return 4 * churned / best


def sizes(seconds: int) -> None:
    print(f"\nrecording size, {seconds} s sessions (keyframes included):")
    print(
        f"  {'connections':>11} {'deliveries/s':>12} {'events':>10}"
        f" {'batches':>9} {'keyframes':>10} {'file':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="wsmon-bench-") as tmp:
        for connections, ratio in (
            (50, DELIVERY_RATIO),
            (200, DELIVERY_RATIO),
            (1000, DELIVERY_RATIO),
            (1000, 0.5),
        ):
            path = Path(tmp) / f"size{connections}-{ratio}.wsmon"
            written = write_typical_recording(path, connections, seconds, delivery_ratio=ratio)
            db = sqlite3.connect(path)
            (batch_bytes,) = db.execute("SELECT sum(length(data)) FROM batches").fetchone()
            (keyframe_bytes,) = db.execute("SELECT coalesce(sum(length(data)), 0) FROM keyframes").fetchone()
            db.close()
            file_bytes = path.stat().st_size
            print(
                f"  {connections:>11} {round(connections * ratio):>12} {written:>10,}"
                f" {batch_bytes / written:>7.1f} B {keyframe_bytes / written:>8.1f} B"
                f" {file_bytes / written:>7.1f} B"
            )
    print(
        "  goal: file <= 16 B/event for the typical mix (delivery samples for a quarter of the connections)"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--delivery-ratio", type=float, default=DELIVERY_RATIO)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size-seconds", type=int, default=900)
    parser.add_argument(
        "--size-only", action="store_true", help="print the recording sizes only (they do not vary by run)"
    )
    args = parser.parse_args()
    if args.size_only:
        print(f"load average {_load()}")
        sizes(args.size_seconds)
        return

    chunks = half_seconds(args.connections, args.seconds, args.delivery_ratio)
    count = sum(len(chunk) for chunk in chunks)
    print(
        f"{count:,} events: {args.connections} connections, {args.seconds} s,"
        f" {args.delivery_ratio} delivery samples/connection/s; best of {args.repeat}"
    )
    print(f"  load average {_load()}; events/s of wall time (of CPU time)")
    bare, bare_cpu = best_rate(reference, chunks, args.repeat)
    bare_per_event, bare_per_event_cpu = best_rate(reference_per_event, chunks, args.repeat)
    reduce, reduce_cpu = best_rate(reducer_only, chunks, args.repeat)
    full, full_cpu = best_rate(pipeline, chunks, args.repeat)
    print(f"  reference (trivial fold + msgspec + zstd) {bare:>12,.0f} ({bare_cpu:,.0f}) events/s")
    print(
        f"  reference, encoding event by event        {bare_per_event:>12,.0f}"
        f" ({bare_per_event_cpu:,.0f}) events/s"
    )
    print(f"  reducer alone                             {reduce:>12,.0f} ({reduce_cpu:,.0f}) events/s")
    print(
        f"  reducer + recorder (file, keyframes)      {full:>12,.0f} ({full_cpu:,.0f}) events/s"
        f"   ratio to the references {full / bare:.2f} / {full / bare_per_event:.2f}"
    )
    verdict = "ok" if full >= 500_000 else f"UNDER (CPU time: {'ok' if full_cpu >= 500_000 else 'UNDER'})"
    print(f"  goal: >= 500,000 events/s: {verdict}")
    print(f"  load average {_load()}")
    print("\ntapped churn (tap + server log), reducer alone:")
    for open_before in (1_000, 10_000):
        rate = tapped_churn(open_before, 5_000, args.repeat)
        print(f"  {open_before:>6,} connections open   {rate:>12,.0f} events/s")
    sizes(args.size_seconds)


if __name__ == "__main__":
    main()
