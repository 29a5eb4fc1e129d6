"""`wsmon report` on a 1-million-event recording (goal: ≤ 2 s, the whole command, wall clock).

Writes the recording with bench_report_input.py into a temp dir, then runs the real command several
times and prints the median and worst wall time, with `wsmon --version` timed as the reference for
interpreter start-up in the same run.

    python bench/bench_report.py [--events 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(argv: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, check=False)
    return time.perf_counter() - started, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report-input.wsmon"
        subprocess.run(
            [sys.executable, str(HERE / "bench_report_input.py"), str(path), "--events", str(args.events)],
            check=True,
            capture_output=True,
        )
        size = path.stat().st_size
        wsmon = [sys.executable, "-m", "wsmon"]
        startup = [timed([*wsmon, "--version"])[0] for _ in range(args.runs)]
        for fmt in ("text", "json"):
            times, codes = [], set()
            for _ in range(args.runs):
                seconds, code = timed([*wsmon, "report", str(path), "--format", fmt])
                times.append(seconds)
                codes.add(code)
            print(
                f"wsmon report --format {fmt:<5} {args.events:,} events ({size / 1e6:.1f} MB): "
                f"median {statistics.median(times):.2f} s, worst {max(times):.2f} s "
                f"(goal ≤ 2 s; exit codes {sorted(codes)})"
            )
        print(f"reference: `wsmon --version` start-up median {statistics.median(startup):.2f} s")


if __name__ == "__main__":
    main()
