"""`wsmon report` of a 1 GB server log: wall time and peak memory (issue 9: goal ≤ 60 s, ≤ 200 MB).

Writes a realistic JSON log of a night of a busy device router into a temporary directory (deleted
afterwards): the line shapes are pino's defaults as the fidelity server writes them
(tests/fidelity/servers/pino_server.js) — `level`, `time` in epoch ms, `pid`, `hostname`, the fields,
`msg` — mostly chatter (messages forwarded with a latency, devices registering), with connections
opening and closing with various codes, unknown recipients and failed sends, over eight hours. The
writer formats the lines itself (a real logger would take minutes to write a gigabyte), and keeps the
tally, which the report's counts are checked against.

Then it runs `python -m wsmon report LOG --format json` as a child process and prints the seconds it
took and its peak RSS (``getrusage(RUSAGE_CHILDREN)``, read after the child has exited).

Run: ``python bench/bench_report_log.py [--mb 1024] [--shape pino|winston]``; exits 1 when a goal is
missed or a count is wrong. ``--profile`` runs the report in-process under cProfile instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

GOAL_S = 60.0
GOAL_MIB = 200.0
NIGHT_START_MS = 1_796_150_000_000  # 2026-12-01 18:33:20 UTC
NIGHT_S = 8 * 3600


class Tally:
    def __init__(self) -> None:
        self.opened = 0
        self.closes: Counter[int] = Counter()
        self.delivered = 0
        self.failed = 0
        self.lines = 0


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def write_log(path: Path, target_bytes: int, shape: str, seed: int = 9) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    # The night's span spread over the lines the size will take (about 150 bytes a line).
    step_ms = max(1, NIGHT_S * 1000 // max(1, target_bytes // 150))
    now = NIGHT_START_MS
    open_socks: list[str] = []
    next_sock = 0
    written = 0
    batch: list[str] = []

    def line(level: int, msg: str, **fields: object) -> None:
        nonlocal written
        tally.lines += 1
        if shape == "winston":
            word = {30: "info", 40: "warn", 50: "error"}[level]
            text = json.dumps({**fields, "level": word, "message": msg, "timestamp": iso(now)})
        else:
            head = f'{{"level":{level},"time":{now},"pid":4242,"hostname":"router-7f9c",'
            text = head + json.dumps(fields)[1:-1] + f',"msg":"{msg}"}}'
        batch.append(text)
        written += len(text) + 1

    with path.open("w", encoding="utf-8") as out:
        while written < target_bytes:
            now += rng.randint(0, 2 * step_ms)
            roll = rng.random()
            if roll < 0.02 or len(open_socks) < 20:
                next_sock += 1
                sock = f"sock-{next_sock}"
                open_socks.append(sock)
                tally.opened += 1
                line(30, "new connection", socketId=sock, ip=f"10.1.{next_sock % 250}.{next_sock % 199}")
            elif roll < 0.04:
                sock = open_socks.pop(rng.randrange(len(open_socks)))
                code = rng.choice((1000, 1000, 1000, 1001, 1005, 1006))
                tally.closes[code] += 1
                line(30, "connection closed", socketId=sock, code=code, reason="")
            elif roll < 0.045:
                tally.failed += 1
                line(
                    40, "recipient not found", msgId=f"m{tally.lines}", to="ghost", **{"from": open_socks[0]}
                )
            elif roll < 0.047:
                tally.failed += 1
                said = "WebSocket is not open: readyState 3 (CLOSED)"
                err = {"type": "Error", "message": said, "stack": f"Error: {said}\n    at WebSocket.send"}
                line(50, "send failed", err=err, msgId=f"m{tally.lines}", socketId=rng.choice(open_socks))
            elif roll < 0.60:
                tally.delivered += 1
                latency = round(rng.lognormvariate(0.5, 0.8), 3)
                line(30, "message forwarded", msgId=f"m{tally.lines}", socketId=rng.choice(open_socks),
                     latency=latency)  # fmt: skip
            elif roll < 0.75:
                line(
                    30,
                    "device registered",
                    socketId=rng.choice(open_socks),
                    deviceId=f"dev-{rng.randrange(5000)}",
                )
            else:
                line(30, "heartbeat", socketId=rng.choice(open_socks), rtt=rng.randint(1, 30))
            if len(batch) >= 10_000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        out.write("\n".join(batch) + ("\n" if batch else ""))
    return tally


def run_report(log: Path) -> tuple[float, float, float, dict[str, object]]:
    """(wall seconds, CPU seconds, peak RSS MiB, the JSON report) of `wsmon report LOG`."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "wsmon", "report", str(log), "--format", "json"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    if done.returncode not in (0, 1):
        raise SystemExit(f"wsmon report failed ({done.returncode}): {done.stderr[-2000:]}")
    if peak_kib <= before:
        print("note: peak RSS not above the generator's earlier child; figure is an upper bound")
    return seconds, cpu, peak_kib / 1024, json.loads(done.stdout)


def check_counts(report: dict[str, object], tally: Tally) -> list[str]:
    got_conn = report["connections"]  # type: ignore[index]
    got_delivery = report["delivery"]  # type: ignore[index]
    codes = {c["code"]: c["count"] for c in report["close_codes"]["codes"]}  # type: ignore[index]
    wrong = []
    for name, got, want in (
        ("opened", got_conn["opened_total"], tally.opened),  # type: ignore[index]
        ("delivered", got_delivery["delivered"], tally.delivered),  # type: ignore[index]
        ("failed", got_delivery["failed"], tally.failed),  # type: ignore[index]
        ("closes", codes, dict(tally.closes)),
    ):
        if got != want:
            wrong.append(f"{name}: report {got}, truth {want}")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=1024.0, help="log size in MiB (default 1024)")
    parser.add_argument("--shape", choices=("pino", "winston"), default="pino")
    parser.add_argument("--profile", action="store_true", help="profile the report in-process instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wsmon-bench-log-") as folder:
        log = Path(folder) / "server.log"
        started = time.perf_counter()
        tally = write_log(log, int(args.mb * 1024 * 1024), args.shape)
        size = log.stat().st_size
        print(f"log: {size / 2**20:,.0f} MiB, {tally.lines:,} lines ({args.shape} JSON), written in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        if args.profile:
            return profile(log)
        seconds, cpu, peak_mib, report = run_report(log)
        wrong = check_counts(report, tally)
        duration = report["session"]["duration_s"]  # type: ignore[index]
        print(f"wsmon report: {seconds:.1f} s ({size / 2**20 / seconds:.1f} MiB/s, "
              f"{tally.lines / seconds:,.0f} lines/s), CPU {cpu:.1f} s ({tally.lines / cpu:,.0f} lines per "
              f"CPU second; wall time is CPU time only on an idle core), peak RSS {peak_mib:.0f} MiB; "
              f"the night's duration {duration / 3600:.2f} h")  # fmt: skip
        time_goal = "met" if seconds <= GOAL_S else f"MISSED by {seconds - GOAL_S:.1f} s"
        memory_goal = "met" if peak_mib <= GOAL_MIB else f"MISSED by {peak_mib - GOAL_MIB:.0f} MiB"
        print(f"goals: ≤ {GOAL_S:.0f} s {time_goal}, ≤ {GOAL_MIB:.0f} MiB {memory_goal}")
        for problem in wrong:
            print(f"WRONG COUNT {problem}")
        return 0 if seconds <= GOAL_S and peak_mib <= GOAL_MIB and not wrong else 1


def profile(log: Path) -> int:
    import cProfile
    import pstats

    from wsmon.core.limits import DEFAULT_LIMITS
    from wsmon.logsession import LogSession

    session = LogSession([log], DEFAULT_LIMITS)
    profiler = cProfile.Profile()
    profiler.enable()
    session.run()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.gettempdir() + "/wsmon-bench-no-config")
    sys.exit(main())
