"""wsmon's own CPU and RSS while `wsmon demo` runs, in a real terminal (tmux) and headless.

Goals (foundation issue): the dashboard's own process at most 5 % of one core with 50 connections and
at most 10 % with 1,000; (issue 13) every process of wsmon's — its own and its tap workers, which
forward and parse the tapped connections — at most 3 % at 50 clients with the tap. wsmon's processes
are measured from /proc/PID/stat (utime + stime) over a fixed window after a warm-up, each apart; the
demo server and the load generator are its children too and are shown beside it so a reader can tell
whether the machine was saturated while measuring.

    python bench/bench_dashboard_cpu.py [--seconds 30] [--warmup 5] [--clients 50 1000] [--rate-1000 0.5]
                                        [--panel 9] [--load demo|steady|churn] [--connect-rate 200]

`--load` chooses the demo's load (docs/demo.md): `demo`, its misbehaving clients (the default);
`steady`, the clients held open at their rate, e.g. `--load steady --clients 1000 --rate-1000 1`;
`churn`, `--connect-rate` connections/s opened and closed (`--clients` is then only the case's label).

`--panel DIGIT` presses that digit once the dashboard is up, so the window measures that panel maximised:
9 is the Trends charts, which are drawn only maximised ("the charts on" of issue 12).

The helpers here (/proc readers, the tmux session, the measurement loop) are reused by bench_attach.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
VENV_BIN = Path(sys.executable).parent
WSMON = str(VENV_BIN / "wsmon") if (VENV_BIN / "wsmon").exists() else "wsmon"
TERMINAL_SIZE = (160, 50)

# --- /proc ------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may itself hold spaces or parens)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3 (state).
    return int(fields[11]) + int(fields[12])


def parent_of(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below pid, read from /proc (children first found, grandchildren after)."""
    by_parent: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            by_parent.setdefault(parent_of(int(entry.name)), []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in by_parent.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def wait_until(predicate: object, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- measuring --------------------------------------------------------------------------------------


@dataclass
class Usage:
    """One process's cost over the window: CPU as % of one core, RSS in MiB (last and peak)."""

    cpu_percent: float
    rss_mib: float
    rss_peak_mib: float


@dataclass
class Measurement:
    wsmon: Usage  # wsmon's own process: the session, and the dashboard when it has one
    others: dict[str, float] = field(default_factory=dict)  # child label -> % of one core
    machine_busy_percent: float = 0.0  # of all cores
    workers: dict[int, float] = field(default_factory=dict)  # wsmon's tap workers: pid -> % of one core

    @property
    def workers_cpu(self) -> float:
        return sum(self.workers.values())

    @property
    def all_cpu(self) -> float:
        """Every process of wsmon's own: what wsmon costs, whichever process does the work."""
        return self.wsmon.cpu_percent + self.workers_cpu


TAP_WORKER = "wsmon.sources.tap_worker"


def tap_workers(pid: int) -> list[int]:
    """wsmon's tap worker processes (its children that forward and parse the tapped connections)."""
    return [child for child in descendants(pid) if TAP_WORKER in cmdline(child)]


def measure(pid: int, seconds: float, others: dict[str, int] | None = None) -> Measurement:
    """utime+stime of pid (and of `others`) at the start and the end of `seconds`; RSS every second."""
    others = others or {}
    workers = tap_workers(pid)
    start_wall = time.monotonic()
    start_ticks = cpu_ticks(pid)
    other_start = {label: _ticks_or_zero(p) for label, p in others.items()}
    worker_start = {worker: _ticks_or_zero(worker) for worker in workers}
    busy0, total0 = machine_busy_ticks()
    peak = rss_mib(pid)
    while (left := seconds - (time.monotonic() - start_wall)) > 0:
        time.sleep(min(1.0, left))
        if not alive(pid):
            raise RuntimeError(f"process {pid} ended during the measurement")
        peak = max(peak, rss_mib(pid))
    end_ticks = cpu_ticks(pid)
    worker_end = {worker: _ticks_or_zero(worker) for worker in workers}
    elapsed = time.monotonic() - start_wall
    busy1, total1 = machine_busy_ticks()
    last = rss_mib(pid)

    def percent(ticks: int) -> float:
        return 100.0 * ticks / CLOCK_TICKS / elapsed

    return Measurement(
        wsmon=Usage(percent(end_ticks - start_ticks), last, max(peak, last)),
        others={label: percent(_ticks_or_zero(p) - other_start[label]) for label, p in others.items()},
        machine_busy_percent=100.0 * (busy1 - busy0) / max(total1 - total0, 1),
        # A worker restarted within the window reads 0 at its end: its ticks are lost, not negative.
        workers={w: percent(max(0, worker_end[w] - worker_start[w])) for w in workers},
    )


def _ticks_or_zero(pid: int) -> int:
    try:
        return cpu_ticks(pid)
    except OSError:
        return 0


def label_children(pid: int) -> dict[str, int]:
    """wsmon's children by what they run, e.g. {"demo server": 123, "load generator": 124}."""
    names = {"wsmon.demo.server": "demo server", "wsmon.demo.loadgen": "load generator"}
    labelled: dict[str, int] = {}
    for child in descendants(pid):
        argv = cmdline(child)
        for module, label in names.items():
            if module in argv:
                labelled[label] = child
    return labelled


# --- processes and terminals ------------------------------------------------------------------------


def stop_tree(pid: int, grace: float = 5.0) -> None:
    """SIGTERM pid and every process below it, SIGKILL whatever is left after `grace` seconds."""
    tree = [pid, *descendants(pid)] if alive(pid) else []
    for target in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.1)
    for target in tree:
        if alive(target):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)


class Tmux:
    """A detached tmux session on a private server socket, so no one else's tmux is touched."""

    def __init__(self, name: str, command: Sequence[str], cwd: Path, size: tuple[int, int] = TERMINAL_SIZE):
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        # A socket path of our own (not -L NAME under /tmp/tmux-UID), gone with the temp dir.
        self.socket = str(cwd / f"tmux-{name}.sock")
        self.name = name
        width, height = size
        self._tmux(
            "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), "-c", str(cwd),
            # exec: the pane's process is the command itself, not a shell around it.
            "exec " + " ".join(_quote(part) for part in command),
        )  # fmt: skip
        # A pane whose program dies keeps its last screen, so the failure can be shown; kill() ends it.
        self._tmux("set-option", "-t", name, "remain-on-exit", "on", check=False)

    def _tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=False, timeout=10
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def pane_pid(self) -> int:
        return int(self._tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}").split()[0])

    def capture(self, *, styles: bool = False) -> str:
        """The pane's screen as text; with `styles`, with the SGR sequences of its colours too."""
        return self._tmux("capture-pane", "-p", *(["-e"] if styles else []), "-t", self.name)

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def running(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "-S", self.socket, "has-session", "-t", self.name], capture_output=True, check=False
            ).returncode
            == 0
        )

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, check=False)
        Path(self.socket).unlink(missing_ok=True)


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(part)


def find_wsmon(pane_pid: int, subcommand: str, timeout: float = 10.0) -> int:
    """The python process running `wsmon SUBCOMMAND` in the pane (the pane's own process, once exec'd)."""
    found: list[int] = []

    def look() -> bool:
        for pid in [pane_pid, *descendants(pane_pid)]:
            argv = cmdline(pid)
            if any(Path(a).name == "wsmon" for a in argv[:2]) and subcommand in argv:
                found.append(pid)
                return True
        return False

    wait_until(look, timeout, f"`wsmon {subcommand}` to start in the pane")
    return found[0]


class Watched:
    """A wsmon process and every descendant seen so far, so cleanup finds children even once orphaned."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: set[int] = {pid}

    def snapshot(self) -> list[int]:
        children = descendants(self.pid) if alive(self.pid) else []
        self.seen.update(children)
        return children

    def stop_all(self) -> None:
        self.snapshot()
        if alive(self.pid):
            stop_tree(self.pid)
        for pid in self.seen:
            if alive(pid):
                stop_tree(pid)
        left = sorted(p for p in self.seen if alive(p))
        if left:
            print(f"warning: processes still alive after cleanup: {left}", file=sys.stderr)


@contextlib.contextmanager
def dashboard(
    name: str, argv: Sequence[str], cwd: Path, subcommand: str, size: tuple[int, int] = TERMINAL_SIZE
) -> Iterator[tuple[Tmux, Watched]]:
    """wsmon with its dashboard in a tmux pane; on exit: `q`, then make sure every process is gone."""
    term = Tmux(name, argv, cwd, size)
    watched: Watched | None = None
    try:
        watched = Watched(find_wsmon(term.pane_pid(), subcommand))
        yield term, watched
        watched.snapshot()
        term.send_keys("q")
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not any(alive(p) for p in watched.seen), 15, "wsmon to quit on `q`")
        if alive(watched.pid):
            print("warning: wsmon did not quit on `q`; stopping it", file=sys.stderr)
    finally:
        if watched is not None:
            watched.stop_all()
        term.kill()


@contextlib.contextmanager
def headless(argv: Sequence[str], cwd: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], Watched]]:
    """wsmon without a screen, its output to `log`; stopped (with its children) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        watched = Watched(proc.pid)
        try:
            yield proc, watched
        finally:
            watched.snapshot()
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # wsmon's own clean stop: children ended, recording closed
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            watched.stop_all()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def screen_head(screen: str, lines: int = 6) -> str:
    return "\n".join("    | " + line.rstrip() for line in screen.splitlines()[:lines])


# --- the benchmark ----------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    measured: Measurement
    goal: float | None  # wsmon's own process (the dashboard's), foundation issue
    all_goal: float | None = None  # every process of wsmon's (issue 13)
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "(reference)"
        return "PASS" if self.measured.wsmon.cpu_percent <= self.goal else "FAIL"

    @property
    def all_verdict(self) -> str:
        if self.all_goal is None:
            return "—"
        return "PASS" if self.measured.all_cpu <= self.all_goal else "FAIL"


def goal_for(clients: int) -> float:
    return 5.0 if clients <= 50 else 10.0


def all_goal_for(clients: int, tap: bool | None) -> float:
    """Issue 13: all of wsmon's processes at 50 clients with the tap ≤ 3 %; at 1,000 ≤ 10 %, ≤ 5 % without."""
    if clients <= 50:
        return 3.0
    return 5.0 if tap is False else 10.0


def demo_argv(clients: int, rate: float, tap: bool, load: Sequence[str] = ()) -> list[str]:
    return [
        WSMON,
        "demo",
        "--clients",
        str(clients),
        "--rate",
        str(rate),
        *load,
        *([] if tap else ["--no-tap"]),
    ]


def load_flags(args: argparse.Namespace) -> list[str]:
    if args.load == "churn":
        return ["--load", "churn", "--connect-rate", f"{args.connect_rate:g}"]
    return [] if args.load == "demo" else ["--load", args.load]


def demo_has_no_tap() -> bool:
    """Whether this wsmon's demo can bypass its tap (the flag came with the tap)."""
    usage = subprocess.run([WSMON, "demo", "--help"], capture_output=True, text=True, check=False, timeout=30)
    return "--no-tap" in usage.stdout


def case_name(kind: str, clients: int, rate: float, tap: bool | None, args: argparse.Namespace) -> str:
    via = {True: ", tap", False: ", --no-tap", None: ""}[tap]
    if args.load == "churn":
        return f"{kind}, churn {args.connect_rate:g} conn/s{via}"
    return f"{kind}, {clients} clients, rate {rate:g}{', steady' if args.load == 'steady' else ''}{via}"


def run_dashboard_case(
    clients: int, rate: float, tap: bool | None, args: argparse.Namespace, tmp: Path
) -> Row:
    name = f"demo{clients}{'' if tap is not False else 'notap'}"
    argv = demo_argv(clients, rate, tap is not False, load_flags(args))
    with dashboard(name, argv, tmp, "demo") as (term, watched):
        if args.panel is not None:
            wait_until(lambda: "wsmon" in term.capture(), 15, "the dashboard to draw")
            term.send_keys(args.panel)
        time.sleep(args.warmup)
        watched.snapshot()
        try:
            result = measure(watched.pid, args.seconds, label_children(watched.pid))
        except (RuntimeError, OSError):
            print("  wsmon died; its last screen:\n" + screen_head(term.capture(), 60), file=sys.stderr)
            raise
        screen = term.capture()
    (tmp / f"screen-{name}.txt").write_text(screen)
    print(f"  screen after the window ({TERMINAL_SIZE[0]}x{TERMINAL_SIZE[1]}), first lines:")
    print(screen_head(screen))
    if "LIVE" not in screen and "wsmon" not in screen:
        raise RuntimeError("the dashboard did not draw (no header on the captured screen)")
    kind = "dashboard" if args.panel is None else f"dashboard, panel {args.panel} maximised"
    name = case_name(kind, clients, rate, tap, args)
    return Row(name, result, goal_for(clients), all_goal_for(clients, tap))


def run_headless_case(
    clients: int, rate: float, tap: bool | None, args: argparse.Namespace, tmp: Path
) -> Row:
    duration = args.warmup + args.seconds + 30  # a bound only: it is stopped (SIGINT) after the window
    argv = [
        *demo_argv(clients, rate, tap is not False, load_flags(args)),
        "--headless",
        "--duration",
        f"{duration:g}",
    ]
    log = tmp / f"headless-{clients}-{tap}.log"
    with headless(argv, tmp, log) as (proc, watched):
        time.sleep(args.warmup)
        watched.snapshot()
        result = measure(proc.pid, args.seconds, label_children(proc.pid))
    first = next((ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()), "")
    print(f"  headless report, first line: {first.strip()}")
    return Row(case_name("headless", clients, rate, tap, args), result, None)


def print_table(rows: list[Row]) -> None:
    print()
    header = (
        f"{'case':<58} {'wsmon':>7} {'goal':>6} {'verdict':>11} {'workers':>8} {'all':>7} {'goal':>6} "
        f"{'verdict':>7} {'RSS':>8} {'peak':>8} {'server':>7} {'loadgen':>8} {'machine':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        m = row.measured
        goal = f"≤{row.goal:g} %" if row.goal is not None else "—"
        all_goal = f"≤{row.all_goal:g} %" if row.all_goal is not None else "—"
        workers = f"{m.workers_cpu:>6.1f} %" if m.workers else f"{'—':>8}"
        print(
            f"{row.case:<58} {m.wsmon.cpu_percent:>5.1f} % {goal:>6} {row.verdict:>11} {workers} "
            f"{m.all_cpu:>5.1f} % {all_goal:>6} {row.all_verdict:>7} "
            f"{m.wsmon.rss_mib:>4.0f} MiB {m.wsmon.rss_peak_mib:>4.0f} MiB "
            f"{m.others.get('demo server', 0):>5.1f} % {m.others.get('load generator', 0):>6.1f} % "
            f"{m.machine_busy_percent:>5.0f} %"
        )
    print(
        "\nwsmon: utime+stime of wsmon's own process (the session and its dashboard) over the window, "
        "% of one core; workers: its tap worker processes, together; all: both, every process of "
        "wsmon's. server/loadgen: the demo's child processes. machine: busy share of all cores "
        f"({os.cpu_count()}). Load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window opens")
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 1000])
    parser.add_argument(
        "--rate-1000",
        type=float,
        default=0.5,
        help="msg/s per client above 50 clients, so the server and load generator leave wsmon a core",
    )
    parser.add_argument(
        "--panel", choices=list("123456789"), help="maximise this panel (9: the Trends charts) for the window"
    )
    parser.add_argument("--no-headless", action="store_true", help="skip the headless comparison runs")
    parser.add_argument("--load", choices=["demo", "steady", "churn"], default="demo", help="the demo's load")
    parser.add_argument(
        "--connect-rate", type=float, default=200.0, help="churn: connections opened a second"
    )
    parser.add_argument("--tap-only", action="store_true", help="skip the --no-tap runs")
    args = parser.parse_args(argv)

    # With the tap (the default) every client byte passes through wsmon's tap workers, and its events
    # through wsmon's own process; the --no-tap runs show the dashboard without the tap.
    modes: list[bool | None] = [True, False] if demo_has_no_tap() and not args.tap_only else [None]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wsmon-bench-cpu-") as tmp_name:
        tmp = Path(tmp_name)
        for clients in args.clients:
            rate = 1.0 if clients <= 50 else args.rate_1000
            for tap in modes:
                flags = " ".join(demo_argv(clients, rate, tap is not False, load_flags(args))[2:])
                print(f"== wsmon demo {flags}: dashboard in tmux")
                rows.append(run_dashboard_case(clients, rate, tap, args, tmp))
                if not args.no_headless:
                    print(f"== wsmon demo {flags} --headless")
                    rows.append(run_headless_case(clients, rate, tap, args, tmp))
    print_table(rows)
    return 0 if all("FAIL" not in (row.verdict, row.all_verdict) for row in rows) else 1


def interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` cleans up what it started."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    interrupt_on_sigterm()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
