"""Following a recording while another process writes it (`wsmon replay --follow`, each `wsmon serve` viewer).

A writer process records a typical session at a steady rate, flushing every half second as the live
session does, and prints each commit's event count and time. This process follows the recording with
a FollowFeed polled at its own interval, and prints:

- lag: from a batch's commit (the writer's clock) to the follower having applied it, p50/p95/max;
- the follower's CPU per second of session and per event (this process's CPU time);
- opening: a FollowFeed on a finished recording of ``--open-events`` events (keyframe + fold), as a
  viewer that joins late does.

    python bench/bench_follow.py [--rate 5000] [--seconds 20] [--open-events 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_report_input import connections_for, write_typical_recording

from wsmon.follow_feed import POLL_S, FollowFeed

WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = sys.argv[4:6]
    from bench_report_input import typical_seconds
    from wsmon.core.reducer import Reducer
    from wsmon.store import RecordingWriter, new_header

    path, connections, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    reducer = Reducer()
    writer = RecordingWriter(path, new_header("bench: follow", extra={"title": "bench"}))
    print("open", flush=True)
    start = time.monotonic()
    for second, events in enumerate(typical_seconds(connections, seconds)):
        half = len(events) // 2
        for index, chunk in ((0, events[:half]), (1, events[half:])):
            time.sleep(max(0.0, start + second + 0.5 * (index + 1) - time.monotonic()))
            reducer.apply_many(chunk)
            writer.extend(chunk)
            writer.flush(reducer.state)
            print(writer.events_written, time.time(), flush=True)
    writer.close(reducer.state)
    print("closed", flush=True)
    """
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def follow(folder: Path, rate: int, seconds: int) -> None:
    path = folder / "followed.wsmon"
    connections = connections_for(rate * seconds, seconds)
    here = str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(connections), str(seconds), *here],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "open"
        feed = FollowFeed(path)
        seen: list[tuple[int, float]] = []  # (events applied, when) after each poll
        cpu0 = time.process_time()
        while not feed.ended:
            feed.poll()
            seen.append((feed.state.seq, time.time()))
            time.sleep(POLL_S)
        cpu = time.process_time() - cpu0
        commits = []
        for line in writer.stdout:
            words = line.split()
            if len(words) == 2:
                commits.append((int(words[0]), float(words[1])))
    finally:
        writer.wait(30)
    lags = []
    for count, committed in commits:
        applied = next(when for seq, when in seen if seq >= count)
        lags.append(max(0.0, applied - committed))
    events = commits[-1][0]
    print(f"follow: {events:,} events over {seconds} s ({events / seconds:,.0f}/s), polled every {POLL_S} s")
    print(
        f"  lag commit → applied: p50 {statistics.median(lags) * 1000:.0f} ms, "
        f"p95 {percentile(lags, 95) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms ({len(lags)} commits)"
    )
    print(
        f"  follower CPU: {cpu / seconds * 100:.1f} % of one core, "
        f"{cpu / events * 1e6:.1f} µs per event applied"
    )
    assert feed.state.seq == events, (feed.state.seq, events)


def open_late(folder: Path, events: int) -> None:
    path = folder / "long.wsmon"
    seconds = 600
    written = write_typical_recording(path, connections_for(events, seconds), seconds)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        feed = FollowFeed(path)
        timings.append(time.perf_counter() - started)
        assert feed.state.seq == written
        feed.reader.close()
    print(
        f"open late: a FollowFeed on {written:,} events (keyframe + fold): "
        f"best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms of 3"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=5000, help="events/s the writer records")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--open-events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="wsmon-bench-follow-") as folder:
        follow(Path(folder), args.rate, args.seconds)
        open_late(Path(folder), args.open_events)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
