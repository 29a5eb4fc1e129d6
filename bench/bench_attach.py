"""`wsmon attach` against real load generators, and wsmon's own cost while attached.

Goals (attach issue):
- Redis ops/s as wsmon reports it within 10 % of redis-benchmark's own requests/s, and PostgreSQL
  commits/s within 10 % of pgbench's tps (without initial connection time), both run in this script
  while wsmon watches and records;
- wsmon's own CPU while attached to every target (WebSocket probe, the server's process, Redis,
  PostgreSQL) at a 1 s interval: at most 1 % of one core headless and 5 % with the dashboard open in a
  terminal (tmux); RSS at most 100 MB. For comparison the issue quotes, at a 1 s refresh, pg_activity
  at 0.3 % of a core and 45 MB (watching PostgreSQL alone) and glances at 3 % and 37 MB.

Everything it starts is private and on 127.0.0.1: a redis-server on a free port, a demo WebSocket
server on another, and a database of its own on the machine's PostgreSQL (created, pgbench-initialised
and dropped here; no other database is touched).

    python bench/bench_attach.py [--seconds 30] [--load-seconds 20] [--pg-dsn postgresql://postgres@127.0.0.1:5432]
                                 [--ws-load steady --ws-clients 1000 | --ws-load churn --connect-rate 200]

`--ws-load` puts the demo's load generator on the demo server for the whole run (docs/demo.md): `steady`,
`--ws-clients` held open at `--ws-rate` msg/s each; `churn`, `--connect-rate` connections/s opened and
closed. wsmon attach sees that load through the server's process (CPU, TCP states) and its probes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_dashboard_cpu import (
    TERMINAL_SIZE,
    WSMON,
    Measurement,
    dashboard,
    headless,
    interrupt_on_sigterm,
    measure,
    screen_head,
    stop_tree,
    wait_until,
)

from wsmon.core import events as ev
from wsmon.store.reader import RecordingReader

HEARTBEAT = '{"type":"heartbeat"}'
HEARTBEAT_ACK = "heartbeat_ack"
# A sample covers the second before it; one whose second began before the load did, or that straddles
# its end, would dilute the rate. These margins keep only samples wholly inside the load window.
WINDOW_START_MARGIN_S = 1.5
WINDOW_END_MARGIN_S = 0.2
STATS_FLUSH_S = 2.5  # PostgreSQL flushes a backend's counters within a second of its last transaction
# Room for any --ws-load and the probes; the demo server refuses connections over it with 1013.
WS_SERVER_CAPACITY = 5000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- the private targets ----------------------------------------------------------------------------


@dataclass
class Targets:
    redis_port: int
    ws_port: int
    pg_base: str  # postgresql://user@127.0.0.1:5432, without a database
    database: str

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    @property
    def postgres_url(self) -> str:
        return f"{self.pg_base}/{self.database}"

    def pg_args(self) -> list[str]:
        parts = urlsplit(self.pg_base)
        return [
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
        ]

    def attach_argv(self, *extra: str) -> list[str]:
        return [
            WSMON, "attach", self.ws_url,
            "--redis", self.redis_url,
            "--postgres", self.postgres_url,
            "--request", HEARTBEAT, "--reply-contains", HEARTBEAT_ACK,
            "--interval", "1",
            *extra,
        ]  # fmt: skip


@contextlib.contextmanager
def private_targets(tmp: Path, pg_base: str, ws_load: Sequence[str] = ()) -> Iterator[Targets]:
    """A redis-server and a demo server on free ports and a fresh database, and the demo's load
    generator run with ``ws_load`` if given; all gone on exit."""
    started: list[subprocess.Popen[bytes]] = []
    targets = Targets(free_port(), free_port(), pg_base, f"wsmon_bench_{int(time.time())}")
    created = False
    try:
        started.append(
            spawn(
                ["redis-server", "--port", str(targets.redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(tmp)],
                tmp / "redis.log",
            )
        )  # fmt: skip
        started.append(
            spawn(
                [sys.executable, "-u", "-m", "wsmon.demo.server", "--port", str(targets.ws_port),
                 "--max-connections", str(WS_SERVER_CAPACITY)],
                tmp / "demo-server.log",
            )
        )  # fmt: skip
        for port, name in ((targets.redis_port, "redis-server"), (targets.ws_port, "demo server")):
            wait_until(lambda port=port: accepts(port), 15, f"{name} on port {port}")
        if ws_load:
            loadgen = [sys.executable, "-m", "wsmon.demo.loadgen", "--url", targets.ws_url, *ws_load]
            started.append(spawn(loadgen, tmp / "loadgen.log"))
        run(["createdb", *targets.pg_args(), targets.database])
        created = True
        run(["pgbench", "-i", "-q", "-s", "1", *targets.pg_args(), targets.database])
        yield targets
    finally:
        for proc in reversed(started):
            stop_tree(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if created:
            result = subprocess.run(
                ["dropdb", "--if-exists", "--force", *targets.pg_args(), targets.database],
                capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip
            if result.returncode != 0:
                print(f"warning: could not drop {targets.database}: {result.stderr.strip()}", file=sys.stderr)


def ws_load_flags(args: argparse.Namespace) -> list[str]:
    if args.ws_load == "steady":
        return ["--load", "steady", "--clients", str(args.ws_clients), "--rate", f"{args.ws_rate:g}"]
    if args.ws_load == "churn":
        return ["--load", "churn", "--connect-rate", f"{args.connect_rate:g}"]
    return []


def ws_load_label(args: argparse.Namespace) -> str:
    if args.ws_load == "steady":
        return f"steady {args.ws_clients} clients × {args.ws_rate:g} msg/s on the demo server"
    if args.ws_load == "churn":
        return f"churn {args.connect_rate:g} connections/s on the demo server"
    return "no load"


def spawn(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def run(argv: Sequence[str], timeout: float = 120) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result.stdout + result.stderr


# --- the load generators ----------------------------------------------------------------------------


@dataclass
class LoadRun:
    """One load generator's run: its wall-clock window and the rate it reported for itself."""

    tool: str
    started: float
    ended: float
    rate: float
    detail: str
    count: int = 0  # transactions or requests the tool says it completed


def redis_benchmark(targets: Targets, seconds: float) -> LoadRun:
    """SET then GET, sized from a short calibration so the two together last about `seconds`."""
    port = str(targets.redis_port)
    calibration = run(["redis-benchmark", "-p", port, "-t", "set", "-n", "100000", "-c", "50", "-q"])
    per_second = max(_redis_rates(calibration).values())
    # The load runs beside pgbench on two cores, so it goes slower than in the calibration.
    requests = int(min(max(per_second * seconds / 2 * 0.8, 50_000), 3_000_000))
    started = time.time()
    output = run(
        ["redis-benchmark", "-p", port, "-t", "set,get", "-n", str(requests), "-c", "50", "-q"],
        timeout=seconds * 10,
    )
    ended = time.time()
    rates = _redis_rates(output)
    # The figure for both tests together: all requests over the time both took, each by its own clock.
    combined = 2 * requests / sum(requests / rate for rate in rates.values())
    detail = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in rates.items())
    return LoadRun("redis-benchmark", started, ended, combined, f"-n {requests:,} -c 50: {detail}")


def _redis_rates(output: str) -> dict[str, float]:
    # -q prints "SET: 81234.56 requests per second, p50=0.303 msec" (after \r progress lines).
    rates = {m[1]: float(m[2]) for m in re.finditer(r"(\w+): ([\d.]+) requests per second", output)}
    if not rates:
        raise RuntimeError(f"no requests/s in redis-benchmark's output: {output[-300:]!r}")
    return rates


def pgbench(targets: Targets, seconds: float) -> LoadRun:
    started = time.time()
    output = run(["pgbench", *targets.pg_args(), "-c", "4", "-T", str(int(seconds)), targets.database],
                 timeout=seconds * 4)  # fmt: skip
    ended = time.time()
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    done = re.search(r"number of transactions actually processed: (\d+)", output)
    if tps is None:
        raise RuntimeError(f"no tps in pgbench's output: {output[-300:]!r}")
    detail = f"-c 4 -T {int(seconds)}: {done[1] if done else '?'} transactions"
    return LoadRun("pgbench", started, ended, float(tps[1]), detail, int(done[1]) if done else 0)


# --- reading the recording --------------------------------------------------------------------------


@dataclass
class Agreement:
    figure: str
    wsmon: float
    reference: LoadRun
    samples: int

    @property
    def gap_percent(self) -> float:
        return 100.0 * (self.wsmon - self.reference.rate) / self.reference.rate

    @property
    def verdict(self) -> str:
        return "PASS" if abs(self.gap_percent) <= 10.0 else "FAIL"


def samples_in(recording: Path) -> list[ev.Event]:
    with RecordingReader(recording) as reader:
        return list(reader.iter_events())


def mean_in_window(values: list[tuple[float, float]], load: LoadRun) -> tuple[float, int]:
    """The mean of (wall, value) samples wholly inside the load's window."""
    inside = [
        value
        for wall, value in values
        if load.started + WINDOW_START_MARGIN_S <= wall <= load.ended - WINDOW_END_MARGIN_S
    ]
    if not inside:
        raise RuntimeError(f"no wsmon sample inside {load.tool}'s window")
    return statistics.fmean(inside), len(inside)


def agreements(events: list[ev.Event], redis_load: LoadRun, pg_load: LoadRun) -> list[Agreement]:
    redis = [
        (e.wall, e.ops_per_sec) for e in events if isinstance(e, ev.RedisSample) and e.ops_per_sec is not None
    ]
    commits = [
        (e.wall, e.commits_per_s)
        for e in events
        if isinstance(e, ev.PostgresSample) and e.commits_per_s is not None
    ]
    redis_mean, redis_n = mean_in_window(redis, redis_load)
    pg_mean, pg_n = mean_in_window(commits, pg_load)
    return [
        Agreement("Redis ops/s", redis_mean, redis_load, redis_n),
        Agreement("PostgreSQL commits/s", pg_mean, pg_load, pg_n),
    ]


def commits_counted(events: list[ev.Event], load: LoadRun) -> str:
    """Every commit wsmon counted from the load's start until the stats flushed after its end, as a count.

    PostgreSQL backends publish their counters at most once a second, so a second-by-second rate lags
    and jitters; the count over the whole run has no such edge and shows whether anything was missed.
    """
    counted = sum(
        int(e.extra.get("commits", 0))
        for e in events
        if isinstance(e, ev.PostgresSample) and load.started < e.wall <= load.ended + STATS_FLUSH_S
    )
    series = [
        f"{e.commits_per_s:,.0f}"
        for e in events
        if isinstance(e, ev.PostgresSample)
        and e.commits_per_s is not None
        and load.started - 1 < e.wall <= load.ended + STATS_FLUSH_S
    ]
    gap = 100.0 * (counted - load.count) / load.count if load.count else float("nan")
    return (
        f"commits wsmon counted over the run: {counted:,} vs pgbench's {load.count:,} transactions "
        f"({gap:+.1f} %); commits/s per sample: {' '.join(series)}"
    )


def probe_summary(events: list[ev.Event]) -> str:
    def median(kind: str) -> str:
        values = [e.ms for e in events if isinstance(e, ev.LatencySample) and e.kind == kind]
        return f"{statistics.median(values):.2f} ms over {len(values)}" if values else "none"

    process = [e for e in events if isinstance(e, ev.ProcessSample)]
    downs = [e for e in events if isinstance(e, ev.TargetDown)]
    return (
        f"handshake median {median('connect')}, round trip median {median('roundtrip')}; "
        f"{len(process)} process samples; {len(downs)} target-down events"
    )


# --- a reference WebSocket client -------------------------------------------------------------------


class ReferenceRoundTrips:
    """The same heartbeat request/reply the probe times, by a bare websockets client, once a second."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> ReferenceRoundTrips:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    async def _run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url) as ws:
            while not self._stop.is_set():
                started = time.perf_counter()
                await ws.send(HEARTBEAT)
                while HEARTBEAT_ACK not in str(await asyncio.wait_for(ws.recv(), timeout=5)):
                    pass
                self.ms.append((time.perf_counter() - started) * 1000.0)
                await asyncio.sleep(1.0)


# --- the runs ---------------------------------------------------------------------------------------


def accuracy_run(targets: Targets, tmp: Path, load_seconds: float) -> tuple[list[Agreement], str]:
    recording = tmp / "attach-load.wsmon"
    duration = load_seconds * 2.5 + 15
    argv = targets.attach_argv("--headless", "--duration", f"{duration:g}", "--record", str(recording))
    with headless(argv, tmp, tmp / "attach-load.log") as (proc, watched):
        time.sleep(4)  # wsmon connects to every target and takes its first (baseline) samples
        if proc.poll() is not None:
            raise RuntimeError(f"wsmon attach ended early: {(tmp / 'attach-load.log').read_text()[-500:]}")
        watched.snapshot()
        loads: dict[str, LoadRun] = {}
        errors: list[BaseException] = []

        def in_thread(name: str, call: object) -> threading.Thread:
            def body() -> None:
                try:
                    loads[name] = call()  # type: ignore[operator]
                except BaseException as exc:  # reported below, in the main thread
                    errors.append(exc)

            thread = threading.Thread(target=body, daemon=True)
            thread.start()
            return thread

        threads = [
            in_thread("redis", lambda: redis_benchmark(targets, load_seconds)),
            in_thread("pg", lambda: pgbench(targets, load_seconds)),
        ]
        for thread in threads:
            thread.join(timeout=load_seconds * 12)
        if errors:
            raise errors[0]
        time.sleep(STATS_FLUSH_S + 1)  # samples after the load's end, once its counters are flushed
        proc.send_signal(signal.SIGINT)  # wsmon stops cleanly and closes the recording
        proc.wait(timeout=30)
    events = samples_in(recording)
    for load in loads.values():
        print(
            f"  {load.tool} {load.detail}; its own figure {load.rate:,.1f}/s "
            f"over {load.ended - load.started:.1f} s"
        )
    print(f"  {commits_counted(events, loads['pg'])}")
    return agreements(events, loads["redis"], loads["pg"]), probe_summary(events)


@dataclass
class CostRow:
    case: str
    measured: Measurement
    cpu_goal: float | None
    rss_goal_mib: float | None = 100e6 / 2**20  # 100 MB

    @property
    def verdict(self) -> str:
        if self.cpu_goal is None:
            return "(reference)"
        ok = self.measured.wsmon.cpu_percent <= self.cpu_goal
        if self.rss_goal_mib is not None:
            ok = ok and self.measured.wsmon.rss_peak_mib <= self.rss_goal_mib
        return "PASS" if ok else "FAIL"


def cost_headless(targets: Targets, tmp: Path, args: argparse.Namespace) -> tuple[CostRow, str]:
    duration = args.warmup + args.seconds + 10
    recording = tmp / "attach-idle.wsmon"
    argv = targets.attach_argv("--headless", "--duration", f"{duration:g}", "--record", str(recording))
    with headless(argv, tmp, tmp / "attach-idle.log") as (proc, watched):
        time.sleep(args.warmup)
        watched.snapshot()
        with ReferenceRoundTrips(targets.ws_url) as reference:
            result = measure(proc.pid, args.seconds)
    events = samples_in(recording)
    rtt = [e.ms for e in events if isinstance(e, ev.LatencySample) and e.kind == "roundtrip"]
    probe = (
        f"probe round trip median {statistics.median(rtt):.2f} ms ({len(rtt)} samples); "
        f"bare websockets client {statistics.median(reference.ms):.2f} ms ({len(reference.ms)} samples)"
        if rtt and reference.ms
        else f"round trips: probe {len(rtt)}, reference {len(reference.ms)} (too few to compare)"
    )
    return CostRow("attach all targets, headless, --record", result, 1.0), probe


def cost_dashboard(targets: Targets, tmp: Path, args: argparse.Namespace) -> CostRow:
    with dashboard("attach", targets.attach_argv(), tmp, "attach") as (term, watched):
        time.sleep(args.warmup)
        watched.snapshot()
        result = measure(watched.pid, args.seconds)
        screen = term.capture()
    (tmp / "screen-attach.txt").write_text(screen)
    print(f"  screen after the window ({TERMINAL_SIZE[0]}x{TERMINAL_SIZE[1]}), first lines:")
    print(screen_head(screen, 8))
    if "wsmon" not in screen:
        raise RuntimeError("the dashboard did not draw (no header on the captured screen)")
    return CostRow("attach all targets, dashboard (tmux)", result, 5.0)


def print_tables(agreed: list[Agreement], costs: list[CostRow]) -> None:
    print()
    header = f"{'figure':<22} {'wsmon':>12} {'tool':>12} {'gap':>8} {'goal':>7} {'verdict':>7}  samples, tool"
    print(header)
    print("-" * len(header))
    for a in agreed:
        print(
            f"{a.figure:<22} {a.wsmon:>12,.1f} {a.reference.rate:>12,.1f} {a.gap_percent:>+7.1f}% "
            f"{'±10 %':>7} {a.verdict:>7}  {a.samples} samples, {a.reference.tool}"
        )
    print()
    header = (
        f"{'wsmon own cost':<40} {'CPU':>8} {'goal':>7} {'RSS':>8} {'peak':>8} {'goal':>8} {'verdict':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in costs:
        m = row.measured.wsmon
        goal = f"≤{row.cpu_goal:g} %" if row.cpu_goal is not None else "—"
        print(
            f"{row.case:<40} {m.cpu_percent:>6.2f} % {goal:>7} {m.rss_mib:>4.0f} MiB "
            f"{m.rss_peak_mib:>4.0f} MiB {'≤95 MiB':>8} {row.verdict:>11}"
        )
    print(f"{'pg_activity, PostgreSQL only (issue)':<40} {0.3:>6.2f} % {'—':>7} {'45 MB':>8}")
    print(f"{'glances (issue)':<40} {3.0:>6.2f} % {'—':>7} {'37 MB':>8}")
    print(
        "\nCPU: utime+stime of wsmon's own process from /proc over the window, % of one core; RSS: VmRSS "
        "(100 MB = 95 MiB).\nThe pg_activity and glances figures are quoted from the attach issue, not "
        "measured by this script."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="cost measurement window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--load-seconds", type=float, default=20.0, help="how long each load generator runs")
    parser.add_argument(
        "--pg-dsn", default="postgresql://postgres@127.0.0.1:5432", help="server for the bench db"
    )
    parser.add_argument("--ws-load", choices=["none", "steady", "churn"], default="none")
    parser.add_argument("--ws-clients", type=int, default=1000, help="steady: connections held open")
    parser.add_argument("--ws-rate", type=float, default=1.0, help="steady: msg/s per connection")
    parser.add_argument("--connect-rate", type=float, default=200.0, help="churn: connections/s")
    args = parser.parse_args(argv)
    label = ws_load_label(args)

    with tempfile.TemporaryDirectory(prefix="wsmon-bench-attach-") as tmp_name:
        tmp = Path(tmp_name)
        with private_targets(tmp, args.pg_dsn.rstrip("/"), ws_load_flags(args)) as targets:
            print(
                f"== targets: {targets.ws_url} (demo server), {targets.redis_url} (private redis-server), "
                f"{targets.postgres_url} (database made for this run)"
            )
            print("== accuracy: wsmon attach --headless --record, with redis-benchmark and pgbench at once")
            agreed, probe = accuracy_run(targets, tmp, args.load_seconds)
            print(f"  ws probe under load: {probe}")
            print(f"== cost: wsmon attach, all targets, headless, 1 s interval ({label})")
            headless_row, probe_idle = cost_headless(targets, tmp, args)
            print(f"  {probe_idle}")
            print(f"== cost: wsmon attach, all targets, dashboard in tmux, 1 s interval ({label})")
            costs = [headless_row, cost_dashboard(targets, tmp, args)]
    print_tables(agreed, costs)
    print(f"WebSocket load during the cost rows: {label}.")
    verdicts = [a.verdict for a in agreed] + [c.verdict for c in costs]
    return 0 if "FAIL" not in verdicts else 1


if __name__ == "__main__":
    interrupt_on_sigterm()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
