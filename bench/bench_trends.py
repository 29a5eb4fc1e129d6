"""Cost of folding the Trends panel's history into its columns (wsmon.ui.trend_columns.chart).

The panel draws, when maximised, once a second; each drawing folds every bucket the timeline keeps
(up to 600 one-second and 1,440 one-minute buckets) into the panel's columns and works out each
bucket's delivery p95. This folds a session of ``--minutes`` with ``--latencies`` delivery samples a
second and prints the milliseconds one chart takes at a few panel widths, with the load average.

    python bench/bench_trends.py [--minutes 60] [--latencies 20] [--repeats 50]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.ui.trend_columns import chart

WALL0, MONO0 = 1_750_000_000.0, 1000.0


def session(minutes: int, latencies: int) -> Reducer:
    reducer = Reducer()
    for i in range(50):
        reducer.apply(ev.ConnectionOpened(wall=WALL0 + i / 100, mono=MONO0 + i / 100, conn=f"c{i}"))
    for s in range(minutes * 60):
        wall, mono = WALL0 + s + 0.2, MONO0 + s + 0.2
        reducer.apply(ev.Traffic(wall=wall, mono=mono, conn="c0", msgs_in=10))
        for k in range(latencies):
            ms = 5.0 + (k * 7 + s) % 40
            reducer.apply(ev.LatencySample(wall=wall, mono=mono, kind="delivery", ms=ms, ref=f"m{s}-{k}"))
    return reducer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--latencies", type=int, default=20, help="delivery samples a second")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    timeline = session(args.minutes, args.latencies).state.timeline
    end = int(MONO0) + args.minutes * 60 - 1
    print(
        f"{args.minutes} min kept: {len(timeline.fine)} one-second, {len(timeline.coarse)} one-minute buckets"
    )
    for width in (60, 127, 300):
        start = time.perf_counter()
        for _ in range(args.repeats):
            drawn = chart(timeline, width, end, 50.0)
        ms = (time.perf_counter() - start) / args.repeats * 1000
        print(f"width {width:>3}: {drawn.span_s:>4} s a column, {ms:6.2f} ms a chart")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
