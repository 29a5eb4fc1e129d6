"""The verdict on a recorded session: every limit's session figure, close codes, delivery, targets.

``build_report`` turns a final State into a ``Report`` (a msgspec Struct tree, so its JSON is one
encode); ``render_text``, ``render_markdown``, ``render_json`` and ``render_junit`` turn that into what
``wsmon report`` and ``wsmon replay --headless`` print. Pure: no I/O. docs/report.md documents the
JSON shape and what each verdict means; change the shape only as its versioning rules say.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from wsmon.core.closecodes import close_code_cause, close_code_name
from wsmon.core.limits import (
    BREACH,
    CPU_AVERAGE_SAMPLES,
    OK,
    TOO_FEW,
    WARN,
    Limit,
    alert_headline,
    format_value,
    level_of,
    live_value,
    ratio_counts,
    too_few,
    too_few_text,
    wilson_interval,
    worst_of,
)
from wsmon.core.redact import redact_command
from wsmon.core.sanitize import visible
from wsmon.core.state import PROBE_CONNECT, SERIES_LEN, State
from wsmon.core.testwindows import TestWindow, describe, failed_test_windows, span_line
from wsmon.core.trend import TimeToLimit, all_time_to_limit

REPORT_VERSION = 1
NO_DATA = "no data"
REACHED = "reached"
NOT_REACHED = "not reached"
RECENT_FAILURES = 5
FAIL = "fail"  # the tests failed, errored, or none ran: the verdict names that before any limit
FAILED_OUTCOMES = ("failed", "error")
# Figures only the clients' own traffic feeds (wsmon's probes do not count towards them).
CLIENT_FIGURES = frozenset({"delivery_ms", "e2e_ms", "delivery_success", "connections", "messages_per_s"})
NO_CLIENT_TRAFFIC = (
    "wsmon saw no client traffic, so the client figures have no data. To let it see the clients, "
    "point them at a --tap LISTEN=UPSTREAM in front of the server, or let wsmon read the server's log "
    "(--log FILE, or --server CMD) if the server logs its connections and deliveries."
)
FORMATS: tuple[str, ...] = ("text", "json", "markdown", "junit")


class Session(msgspec.Struct, kw_only=True):
    source: str
    wsmon_version: str | None
    command: str | None
    started: str | None  # ISO 8601 UTC of the first event
    ended: str | None
    duration_s: float
    events: int


class Figure(msgspec.Struct, kw_only=True):
    """One limit. Fields that do not apply to the figure's kind are null (see docs/report.md)."""

    figure: str
    label: str
    kind: str
    unit: str
    bound: str
    limit: float
    limit_text: str
    value: float | None  # the figure the verdict is judged on
    verdict: str  # ok | warn | breach | too few to judge | no data | reached | not reached
    note: str = ""
    count: int = 0  # latency samples, ratio attempts, process samples
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    max: float | None = None
    numerator: int | None = None
    denominator: int | None = None
    peak: float | None = None
    last: float | None = None
    breached_during_run: float | None = None
    low: float | None = None  # ratio only: the 95 % interval the verdict is judged on, percent
    high: float | None = None


class CloseCodeRow(msgspec.Struct, kw_only=True):
    code: int
    name: str
    count: int
    share: float  # percent of the closes counted
    cause: str


class CloseCodes(msgspec.Struct, kw_only=True):
    total: int
    codes: list[CloseCodeRow]
    closed_by: dict[str, int]


class Count(msgspec.Struct, kw_only=True):
    name: str
    count: int


class FailureRow(msgspec.Struct, kw_only=True):
    at: str
    message_id: str
    conn: str
    reason: str
    source: str


class Delivery(msgspec.Struct, kw_only=True):
    delivered: int
    failed: int
    success_percent: float | None
    reasons: list[Count]
    recent_failures: list[FailureRow]


class Connections(msgspec.Struct, kw_only=True):
    opened_total: int
    peak_open: int
    open_at_end: int
    connect_failed: int
    connect_fail_kinds: list[Count]


class TargetRow(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    address: str
    state: str  # up | down | starting | unknown
    down_count: int
    down_total_s: float  # includes an outage still running at the end
    error: str
    error_kind: str
    hints: list[str]


class AlertRow(msgspec.Struct, kw_only=True):
    figure: str
    level: str
    value: float
    limit: float
    since: str | None
    message: str
    now: float | None = None  # the figure at the end of the session, as the dashboard showed it
    now_text: str = ""  # the same as text: "n = 2, too few to judge" or "no data" when no number holds
    worst: float | None = None  # the worst value recorded at a breach (State.breached)
    headline: str = ""  # "<label> <now> (limit …) · worst … · raised at …"


class Alerts(msgspec.Struct, kw_only=True):
    raised: int
    active: list[AlertRow]
    breached: dict[str, float]


class MarkerRow(msgspec.Struct, kw_only=True):
    at: str | None
    text: str


class ExitRow(msgspec.Struct, kw_only=True):
    at: str | None
    target: str
    pid: int | None
    code: int | None
    signal: int | None
    last_lines: list[str]


class TestRow(msgspec.Struct, kw_only=True):
    name: str
    outcome: str  # passed | failed | error | skipped; "" when it never ended
    start: str | None
    end: str | None
    duration_s: float | None
    message: str


class Tests(msgspec.Struct, kw_only=True):
    """The tests `wsmon run` watched, as recorded (docs/report.md)."""

    verdict: str  # pass | fail
    reason: str  # why they fail ("no tests ran: …", "1 failed: …"); "" when they pass
    command: str | None
    exit_code: int | None  # None: not recorded, or the command never started
    counts: dict[str, int]  # tests by outcome
    tests: list[TestRow]
    failed: list[TestWindow]  # each failed test's window: what the server did while it ran


class ProbeLatency(msgspec.Struct, kw_only=True):
    """A latency of wsmon's own probe connections: reported beside the figures, never judged as the
    users' (the probe's handshake is not a client's connect time)."""

    kind: str  # connect | ping | roundtrip
    label: str
    count: int
    p50: float | None
    p95: float | None
    max: float | None


class Report(msgspec.Struct, kw_only=True):
    report_version: int = REPORT_VERSION
    session: Session
    verdict: str  # pass | breach | too few to judge | no data | fail (tests failed, errored or none ran)
    counts: dict[str, int]  # figures by verdict
    figures: list[Figure]
    close_codes: CloseCodes
    delivery: Delivery
    connections: Connections
    targets: list[TargetRow]
    alerts: Alerts
    markers: list[MarkerRow]
    exits: list[ExitRow]
    log_counts: dict[str, int]
    trends: list[TimeToLimit] = []  # time to limit over the session's last minutes (core.trend)
    probe: list[ProbeLatency] = []  # wsmon's own probe connections' latencies, not judged
    warnings: list[str] = []  # what the report could not see, e.g. a recording's unreadable batches
    tests: Tests | None = None  # present when the recording holds a test run
    notes: list[str] = []  # plain sentences on what the figures cannot show (e.g. no client traffic)

    @property
    def exit_code(self) -> int:
        """1 when any limit was breached or the tests failed, else 0 (2 is the CLI's to decide)."""
        return exit_code(self)

    @property
    def breached(self) -> bool:
        return any(figure.verdict == BREACH for figure in self.figures)


def exit_code(report: Report) -> int:
    tests_failed = report.tests is not None and report.tests.verdict == FAIL
    return 1 if tests_failed or report.breached else 0


# --- building ------------------------------------------------------------------------------------


def build_report(
    state: State,
    limits: tuple[Limit, ...],
    *,
    source: str = "",
    header: Mapping[str, Any] | None = None,
    test_windows: Sequence[TestWindow] | None = None,
) -> Report:
    """``test_windows``: the failed tests' windows filled from the events (testwindows.summarise_windows);
    without them the failed tests are listed with their windows empty."""
    header = header or {}
    to_iso = _clock(state)
    figures = [_figure(state, limit) for limit in limits]
    counts: dict[str, int] = {}
    for figure in figures:
        counts[figure.verdict] = counts.get(figure.verdict, 0) + 1
    verdict = _overall_verdict(figures)
    tests = _tests(state, to_iso, test_windows)
    if tests is not None and tests.verdict == FAIL:
        verdict = FAIL
    report = Report(
        session=Session(
            source=source,
            wsmon_version=_header_str(header, "wsmon_version", "version"),
            command=_header_command(header.get("command")),
            started=_iso(state.first_wall),
            ended=_iso(state.last_wall) if state.first_wall is not None else None,
            duration_s=round(float(state.duration_s), 3),
            events=state.seq,
        ),
        verdict=verdict,
        counts=counts,
        figures=figures,
        close_codes=_close_codes(state),
        delivery=_delivery(state),
        connections=Connections(
            opened_total=state.opened_total,
            peak_open=state.peak_open,
            open_at_end=state.open_count,
            connect_failed=state.connect_failed,
            connect_fail_kinds=_counts(state.connect_fail_kinds),
        ),
        targets=[_target(state, name) for name in sorted(state.targets)],
        alerts=Alerts(
            raised=state.alerts_raised,
            active=[_alert_row(state, limits, a.figure, to_iso) for a in state.alerts.values()],
            breached={k: float(v) for k, v in state.breached.items()},
        ),
        markers=[MarkerRow(at=_iso(m.wall), text=m.text) for m in state.markers],
        exits=[
            ExitRow(
                at=to_iso(x.mono),
                target=x.target,
                pid=x.pid,
                code=x.code,
                signal=x.signal,
                last_lines=list(x.last_lines),
            )
            for x in state.exits
        ],
        log_counts=dict(state.log_counts),
        trends=all_time_to_limit(state, _rss_limit(limits)),
        probe=_probe_latencies(state),
        tests=tests,
        notes=_notes(state, figures),
    )
    return _shown_safely(report)


def _shown_safely(report: Report) -> Report:
    """Every string of the report made visible: a recording made before events were cleaned where they
    entered may still hold a stranger's escape sequence, and every format is printed to a terminal."""
    return msgspec.convert(_visible_strings(msgspec.to_builtins(report)), Report)


def _visible_strings(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {(visible(k) if isinstance(k, str) else k): _visible_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible_strings(v) for v in value]
    return value


def _notes(state: State, figures: list[Figure]) -> list[str]:
    client = [f for f in figures if f.figure in CLIENT_FIGURES]
    seen = state.opened_total or state.delivered or state.delivery_failed
    return [NO_CLIENT_TRAFFIC] if client and not seen else []


def _tests(
    state: State, to_iso: Callable[[float | None], str | None], windows: Sequence[TestWindow] | None
) -> Tests | None:
    run = state.test_run
    if run is None and not state.tests:
        return None
    rows = [
        TestRow(
            name=t.name,
            outcome=t.outcome,
            start=_iso(t.start_wall),
            end=_iso(t.end_wall),
            duration_s=None
            if t.start_mono is None or t.end_mono is None
            else round(t.end_mono - t.start_mono, 6),
            message=t.message,
        )
        for t in state.tests.values()
    ]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome or "running"] = counts.get(row.outcome or "running", 0) + 1
    reason = _tests_failure(state, rows, counts)
    return Tests(
        verdict=FAIL if reason else "pass",
        reason=reason,
        command=run.command if run is not None else None,
        exit_code=run.exit_code if run is not None else None,
        counts=counts,
        tests=rows,
        failed=list(windows) if windows is not None else failed_test_windows(state),
    )


def _tests_failure(state: State, rows: list[TestRow], counts: dict[str, int]) -> str:
    """Why the tests count as failed, most telling first; "" when they passed."""
    run = state.test_run
    exited = "" if run is None or not run.exit_code else f"; the test command exited {run.exit_code}"
    if run is not None and run.exit_code is None:
        return "the tests did not start" + (f" ({run.note})" if run.note else "")
    if not rows and run is not None and run.ran == 0:
        return "no tests ran" + (f" ({run.note})" if run.note else "") + exited
    failed = [row.name for row in rows if row.outcome in FAILED_OUTCOMES]
    if failed:
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        named = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        return f"tests failed ({summary}): {named}{exited}"
    if exited:
        return exited.removeprefix("; ")
    return ""


def _overall_verdict(figures: list[Figure]) -> str:
    """breach if any figure breached; else too few to judge if any success ratio had attempts but too
    few to judge (there was activity that may be failing, and nobody can tell yet: not a pass); else
    pass if any figure was judged; else no data. Only a breach fails a run (exit_code)."""
    judged = [f.verdict for f in figures if f.kind != "capacity"]
    if BREACH in judged:
        return BREACH
    if TOO_FEW in judged:
        return TOO_FEW
    return "pass" if OK in judged or WARN in judged else NO_DATA


def _alert_row(
    state: State, limits: tuple[Limit, ...], figure: str, to_iso: Callable[[float | None], str | None]
) -> AlertRow:
    a = state.alerts[figure]
    row = AlertRow(
        figure=a.figure,
        level=a.level,
        value=float(a.value),
        limit=float(a.limit),
        since=to_iso(a.since_mono),
        message=a.message,
        worst=_num(state.breached.get(figure)),
    )
    limit = next((lim for lim in limits if lim.figure == figure), None)
    if limit is None:
        row.headline = a.message or figure
        return row
    row.now = _num(live_value(state, limit))
    row.now_text = _now_text(state, limit, row.now)
    if row.worst is not None:
        row.worst = worst_of(limit, row.worst, row.now)
    headline, history = alert_headline(limit, row.now_text, row.worst, row.value)
    row.headline = f"{headline} · {history}"
    return row


def _now_text(state: State, limit: Limit, now: float | None) -> str:
    if limit.kind == "ratio":
        attempts = ratio_counts(state, limit)[1]
        if attempts and too_few(limit, attempts):
            return too_few_text(attempts)
    return NO_DATA if now is None else format_value(now, limit.unit)


_PROBE_KINDS = (
    (PROBE_CONNECT, "connect", "handshake"),
    ("ping", "ping", "ping"),
    ("roundtrip", "roundtrip", "request/reply"),
)


def _probe_latencies(state: State) -> list[ProbeLatency]:
    rows: list[ProbeLatency] = []
    for key, kind, label in _PROBE_KINDS:
        dist = state.latency.get(key)
        if dist is None or not dist.count:
            continue
        rows.append(
            ProbeLatency(
                kind=kind,
                label=label,
                count=dist.count,
                p50=_num(dist.session_percentile(50)),
                p95=_num(dist.session_percentile(95)),
                max=_num(dist.maximum),
            )
        )
    return rows


def probe_line(report: Report) -> str:
    """wsmon's own probes' latencies in one line, labelled as the probe's; "" without any."""
    parts = [
        f"{p.label} p95 {format_value(p.p95, 'ms')} (max {format_value(p.max, 'ms')}, {p.count} samples)"
        for p in report.probe
        if p.p95 is not None and p.max is not None
    ]
    return "wsmon's own probes (not judged): " + ", ".join(parts) if parts else ""


def _rss_limit(limits: tuple[Limit, ...]) -> float | None:
    return next((limit.value for limit in limits if limit.kind == "rss"), None)


def _figure(state: State, limit: Limit) -> Figure:
    base = Figure(
        figure=limit.figure,
        label=limit.label,
        kind=limit.kind,
        unit=limit.unit,
        bound=limit.bound,
        limit=limit.value,
        limit_text=limit.describe(),
        value=None,
        verdict=NO_DATA,
    )
    builders: dict[str, Callable[[State, Limit, Figure], None]] = {
        "latency": _latency_figure,
        "ratio": _ratio_figure,
        "rss": _rss_figure,
        "cpu": _cpu_figure,
        "capacity": _capacity_figure,
    }
    builders[limit.kind](state, limit, base)
    if limit.kind != "capacity":
        _apply_breached_during_run(state, limit, base)
    return base


def _latency_figure(state: State, limit: Limit, fig: Figure) -> None:
    dist = state.latency.get(limit.latency_kind)
    if dist is None or not dist.count:
        probe = state.latency.get(PROBE_CONNECT)
        if limit.latency_kind == "connect" and probe is not None and probe.count:
            shown = format_value(_num(probe.session_percentile(95)), "ms")
            fig.note = f"no client handshakes seen (needs a tap); wsmon's own probe: p95 {shown}"
        return
    fig.count = dist.count
    fig.p50 = _num(dist.session_percentile(50))
    fig.p95 = _num(dist.session_percentile(95))
    fig.p99 = _num(dist.session_percentile(99))
    fig.mean = _num(dist.mean)
    fig.max = _num(dist.maximum)
    fig.value = fig.p95
    fig.verdict = level_of(limit, fig.value)


def _ratio_figure(state: State, limit: Limit, fig: Figure) -> None:
    """Judged like the live judge: not at all below the minimum, else on its 95 % interval's upper end."""
    good, attempts = ratio_counts(state, limit)
    if not attempts:
        return
    fig.numerator, fig.denominator, fig.count = good, attempts, attempts
    if too_few(limit, attempts):
        fig.verdict = TOO_FEW
        fig.note = f"needs {limit.min_events:,} attempts"
        return
    low, high = wilson_interval(good, attempts)
    fig.low, fig.high = 100.0 * low, 100.0 * high
    fig.value = 100.0 * good / attempts
    fig.verdict = level_of(limit, fig.high)
    naive = level_of(limit, fig.value)
    if naive != fig.verdict:
        interval = f"{format_value(fig.low, '%')} to {format_value(fig.high, '%')}"
        fig.note = f"95 % interval {interval}: {attempts:,} attempts are too few to call it {naive}"


def _rss_figure(state: State, limit: Limit, fig: Figure) -> None:
    series = state.rss_mib
    if not series.values:
        return
    fig.count = len(series.values)
    fig.peak = fig.value = _num(series.peak)
    fig.last = _num(series.last)
    fig.verdict = level_of(limit, fig.value)


def _cpu_figure(state: State, limit: Limit, fig: Figure) -> None:
    """CPU is judged on the highest 5-sample mean, like the live judge, over the samples still kept.

    The State keeps the raw peak for the whole session but only the last SERIES_LEN to
    2×SERIES_LEN samples, so in a long session the early means are known only through the live
    alerts (applied afterwards in ``_apply_breached_during_run``). docs/report.md states the rule.
    """
    values = state.cpu.values
    if not values:
        return
    fig.count = len(values)
    fig.peak = _num(state.cpu.peak)
    fig.last = _num(state.cpu.tail_mean(CPU_AVERAGE_SAMPLES))
    if len(values) < CPU_AVERAGE_SAMPLES:
        fig.note = f"{len(values)} samples: the {CPU_AVERAGE_SAMPLES}-sample mean needs more"
        return  # the live judge does not judge these either: start-up, not load
    fig.value = _num(_peak_moving_mean(values, CPU_AVERAGE_SAMPLES))
    fig.verdict = level_of(limit, fig.value)
    complete = len(values) < SERIES_LEN  # a trimmed series never drops below SERIES_LEN again
    if not complete and fig.verdict != BREACH and level_of(limit, fig.peak) != OK:
        fig.note = (
            f"raw peak {format_value(fig.peak, limit.unit)}; the {CPU_AVERAGE_SAMPLES}-sample mean is "
            f"known for the last {len(values)} samples only, earlier ones through the live alerts"
        )


def _capacity_figure(state: State, limit: Limit, fig: Figure) -> None:
    if limit.figure == "connections":
        seen = state.opened_total > 0
        fig.count = state.opened_total
        peak = float(state.peak_open)
    else:
        seen = state.msgs_in + state.msgs_out > 0
        fig.count = state.msgs_in + state.msgs_out
        # The last complete second counts too, though no later traffic arrived to complete it live.
        now = int(state.last_mono)
        complete = [count for second, count in state.msgs_by_second.items() if second < now]
        peak = float(max([state.peak_msgs_per_s, *complete]))
    if not seen:
        return
    fig.peak = fig.value = peak
    fig.verdict = REACHED if peak >= limit.value else NOT_REACHED


def _apply_breached_during_run(state: State, limit: Limit, fig: Figure) -> None:
    """A live alert that reached breach makes the figure a breach even if the session figure recovered.

    The recorded value is checked against this report's limit, so a report run with a looser limit
    than the live session does not inherit a breach the looser limit would not have called.
    """
    worst = state.breached.get(limit.figure)
    if worst is None or math.isnan(worst):
        return
    if fig.verdict == TOO_FEW:
        return  # a ratio alert raised on a handful of attempts (before wsmon judged them) is no breach
    fig.breached_during_run = float(worst)
    if fig.verdict == BREACH or level_of(limit, worst) != BREACH:
        return
    text = f"breached during the run: {format_value(worst, limit.unit)}"
    fig.note = f"{text}; {fig.note}" if fig.note else text
    fig.verdict = BREACH


def _peak_moving_mean(values: Sequence[float], n: int) -> float:
    if len(values) <= n:
        return sum(values) / len(values)
    window = sum(values[:n])
    best = window
    for i in range(n, len(values)):
        window += values[i] - values[i - n]
        best = max(best, window)
    return best / n


def _close_codes(state: State) -> CloseCodes:
    total = sum(state.close_codes.values())
    rows = [
        CloseCodeRow(
            code=code,
            name=close_code_name(code),
            count=count,
            share=round(100.0 * count / total, 2) if total else 0.0,
            cause=close_code_cause(code),
        )
        for code, count in sorted(state.close_codes.items(), key=lambda item: (-item[1], item[0]))
    ]
    return CloseCodes(total=total, codes=rows, closed_by=dict(state.closed_by))


def _delivery(state: State) -> Delivery:
    success = state.delivery_success()
    return Delivery(
        delivered=state.delivered,
        failed=state.delivery_failed,
        success_percent=None if math.isnan(success) else 100.0 * success,
        reasons=_counts(state.failure_reasons),
        recent_failures=[
            FailureRow(
                at=_iso(f.wall) or "",
                message_id=f.message_id,
                conn=f.conn,
                reason=f.reason,
                source=f.source,
            )
            for f in state.failures[-RECENT_FAILURES:]
        ],
    )


def _target(state: State, name: str) -> TargetRow:
    t = state.targets[name]
    down_total = t.down_total_s
    if t.up is False and t.since_mono is not None:
        down_total += max(0.0, state.last_mono - t.since_mono)  # the outage still running at the end
    return TargetRow(
        name=t.name,
        kind=t.kind,
        address=t.address,
        state="starting" if t.starting else "unknown" if t.up is None else ("up" if t.up else "down"),
        down_count=t.down_count,
        down_total_s=round(float(down_total), 3),
        error=t.error,
        error_kind=t.error_kind,
        hints=list(t.hints),
    )


def _counts(counts: Mapping[str, int]) -> list[Count]:
    return [Count(name=k, count=v) for k, v in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _clock(state: State) -> Callable[[float | None], str | None]:
    """Wall time of a monotonic instant, anchored on the session's last event."""

    def to_iso(mono: float | None) -> str | None:
        if mono is None or state.first_wall is None:
            return None
        return _iso(state.last_wall - (state.last_mono - mono))

    return to_iso


def _iso(wall: float | None) -> str | None:
    if wall is None or not math.isfinite(wall):
        return None
    stamp = datetime.fromtimestamp(wall, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return stamp[:-3] + "Z"


def _num(value: float | None) -> float | None:
    # float() because events may carry ints, and the JSON shape promises numbers of one type.
    return None if value is None or not math.isfinite(value) else float(value)


def _header_str(header: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = header.get(key)
        if value:
            return str(value)
    return None


def _header_command(command: Any) -> str | None:
    if not command:
        return None
    # Recorded masked since issue 8; masked again here for older recordings and other writers.
    return redact_command(command if isinstance(command, list | tuple) else str(command))


# --- rendering -----------------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str:
    renderers: dict[str, Callable[[Report], str]] = {
        "text": render_text,
        "json": render_json,
        "markdown": render_markdown,
        "junit": render_junit,
    }
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return renderers[fmt](report)


def render_json(report: Report) -> str:
    """The documented JSON shape (docs/report.md); non-finite numbers become null."""
    return msgspec.json.format(msgspec.json.encode(_finite(msgspec.to_builtins(report))), indent=2).decode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def verdict_line(report: Report) -> str:
    c = report.counts
    judged = [f"{c[k]} {k}" for k in (BREACH, WARN, OK, TOO_FEW, NO_DATA) if c.get(k)]
    capacity = [f"{c[k]} {k}" for k in (REACHED, NOT_REACHED) if c.get(k)]
    detail = ", ".join(judged) + (f"; capacity targets: {', '.join(capacity)}" if capacity else "")
    breached = [f.figure for f in report.figures if f.verdict == BREACH]
    named = f"breached: {', '.join(breached)}" if breached else ""
    unjudged = [f.figure for f in report.figures if f.verdict == TOO_FEW]
    if unjudged:
        named += (" — " if named else "") + f"{TOO_FEW}: {', '.join(unjudged)}"
    if report.verdict == FAIL and report.tests is not None:
        # The tests' failure comes first: a CI log's reader must not mistake it for a limit breach.
        named = report.tests.reason + (f"; {named}" if named else "")
    unseen = "; wsmon saw no client traffic" if NO_CLIENT_TRAFFIC in report.notes else ""
    return f"wsmon report: {report.verdict.upper()}{' — ' + named if named else ''} ({detail}{unseen})"


def _figure_cells(f: Figure) -> list[str]:
    """Figure, Limit, Observed, p50, p95, p99, Max, Samples, Verdict, Note."""

    def fmt(value: float | None) -> str:
        return "" if value is None else format_value(value, f.unit)

    samples = str(f.count) if f.count else ""
    observed = fmt(f.value)
    if f.kind == "latency" and f.value is not None:
        observed = f"p95 {observed}"
    elif f.kind == "ratio" and f.numerator is not None:
        samples = f"{f.numerator}/{f.denominator}"
        if f.verdict == TOO_FEW:
            observed = too_few_text(f.denominator or 0)
    elif f.kind == "rss" and f.value is not None:
        observed = f"peak {observed}"
    elif f.kind == "cpu" and f.value is not None:
        observed = f"{CPU_AVERAGE_SAMPLES}-mean peak {observed}"
    elif f.kind == "capacity" and f.value is not None:
        observed = f"peak {observed}"
    peak = f.max if f.kind == "latency" else (f.peak if f.kind in ("rss", "cpu") else None)
    return [
        f.label,
        f.limit_text,
        observed or "—",
        fmt(f.p50),
        fmt(f.p95),
        fmt(f.p99),
        fmt(peak),
        samples,
        f.verdict,
        f.note,
    ]


_FIGURE_HEADINGS = ["Figure", "Limit", "Observed", "p50", "p95", "p99", "Max", "Samples", "Verdict", "Note"]


def _table(headings: list[str], rows: Iterable[list[str]], indent: str = "  ") -> list[str]:
    rows = [headings, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _session_lines(report: Report) -> list[str]:
    s = report.session
    parts = [f"source {s.source}" if s.source else "", f"wsmon {s.wsmon_version}" if s.wsmon_version else ""]
    parts.append(f"command: {s.command}" if s.command else "")
    head = "  ".join(p for p in parts if p)
    when = f"started {s.started or '—'}  duration {_duration(s.duration_s)}  events {s.events:,}"
    return [line for line in (head, when) if line]


def _tests_lines(tests: Tests, markdown: bool) -> list[str]:
    """The tests section: verdict and reason, counts, then each failed test with its window."""
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tests.counts.items())) or "none"
    total = sum(tests.counts.values())
    verdict = f"FAIL — {tests.reason}" if tests.verdict == FAIL else "pass"
    head = [verdict]
    if tests.command is not None:
        code = "did not start" if tests.exit_code is None else f"exit {tests.exit_code}"
        head.append(f"command: {tests.command} ({code})")
    head.append(f"{total} tests: {summary}")
    if markdown:  # a trailing double space is a Markdown line break
        lines = ["### Tests", "", *(f"{_md(line)}  " for line in head)]
    else:
        lines = ["Tests", *(f"  {line}" for line in head)]
    for window in tests.failed:
        title = f"{window.outcome.upper()} {window.test}" + (f" — {window.message}" if window.message else "")
        ran = span_line(window) if window.duration_s is not None else ""
        if markdown:
            lines += ["", f"#### {_md(title)}", ""] + ([ran, ""] if ran else [])
            lines += [f"- {_md(line.strip())}" for line in describe(window)]
        else:
            lines += ["", f"  {title}"] + ([f"    {ran}"] if ran else [])
            lines += [f"    {line.strip()}" for line in describe(window)]
    return lines


def render_text(report: Report) -> str:
    lines = [verdict_line(report), *_session_lines(report)]
    lines += [f"WARNING: {warning}" for warning in report.warnings]
    lines += [f"Note: {note}" for note in report.notes]
    if report.tests is not None:
        lines += ["", *_tests_lines(report.tests, markdown=False)]
    lines += ["", "Limits (latency judged on the session p95)"]
    lines += _table(_FIGURE_HEADINGS, (_figure_cells(f) for f in report.figures))

    cc = report.close_codes
    by = ", ".join(f"{k} {v}" for k, v in sorted(cc.closed_by.items(), key=lambda i: -i[1]))
    lines += ["", f"Close codes: {cc.total} closes" + (f" (closed by: {by})" if by else "")]
    lines += (
        _table(
            ["Code", "Name", "Count", "Share", "Usual cause"],
            ([str(r.code), r.name, str(r.count), f"{r.share:.1f} %", r.cause] for r in cc.codes),
        )
        if cc.codes
        else []
    )

    d = report.delivery
    success = _delivery_success_text(report)
    lines += ["", f"Delivery: {d.delivered} delivered, {d.failed} failed, success {success}"]
    if d.reasons:
        lines += _table(["Reason", "Count"], ([r.name, str(r.count)] for r in d.reasons))
    if d.recent_failures:
        lines.append("  last failures:")
        lines += _table(
            ["At", "Message", "Conn", "Reason"],
            ([r.at, r.message_id, r.conn, r.reason] for r in d.recent_failures),
            indent="    ",
        )

    c = report.connections
    kinds = ", ".join(f"{k.name} {k.count}" for k in c.connect_fail_kinds)
    lines += [
        "",
        f"Connections: {c.opened_total} opened, peak {c.peak_open} open, {c.open_at_end} open at the end, "
        f"{c.connect_failed} failed to connect" + (f" ({kinds})" if kinds else ""),
    ]
    if probes := probe_line(report):
        lines.append(probes)

    if report.trends:
        lines += ["", "Time to limit (trend over the last minutes)"] + [f"  {t.text}" for t in report.trends]

    if report.targets:
        lines += ["", "Targets"]
        lines += _table(
            ["Name", "Kind", "Address", "State", "Downs", "Down time", "Last error"],
            (
                [t.name, t.kind, t.address, t.state, str(t.down_count), _duration(t.down_total_s), t.error]
                for t in report.targets
            ),
        )

    a = report.alerts
    active = ", ".join(f"{r.figure} {r.level}" for r in a.active) or "none"
    lines += ["", f"Alerts: {a.raised} raised, active at the end: {active}"]
    lines += [f"  {_alert_line(r)}" for r in a.active]
    for x in report.exits:
        how = f"code {x.code}" if x.code is not None else (f"signal {x.signal}" if x.signal else "unknown")
        lines.append(f"Server exit: {x.target} (pid {x.pid}) {how} at {x.at or '—'}")
        lines += [f"    {line}" for line in x.last_lines]
    if report.markers:
        lines += ["", "Markers"] + [f"  {m.at or '—'}  {m.text}" for m in report.markers]
    if report.log_counts:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.log_counts.items()))
        lines += ["", f"Log lines: {counts}"]
    return "\n".join(lines) + "\n"


def _delivery_success_text(report: Report) -> str:
    """The success rate, unless it has too few attempts to mean anything (then it says so)."""
    judged = next((f for f in report.figures if f.figure == "delivery_success"), None)
    if judged is not None and judged.verdict == TOO_FEW:
        return too_few_text(judged.denominator or 0)
    d = report.delivery
    return "—" if d.success_percent is None else format_value(d.success_percent, "%")


def _alert_line(row: AlertRow) -> str:
    """Leads with the figure at the end of the session, not the value it was raised at."""
    return f"{row.level.upper()} {row.headline or row.message or row.figure}" + (
        f" (since {row.since})" if row.since else ""
    )


def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def _md_table(headings: list[str], rows: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return out


def render_markdown(report: Report) -> str:
    """GitHub-flavoured Markdown, for a CI job summary."""
    lines = [f"## {verdict_line(report)}", ""]
    lines += [f"{line}  " for line in _session_lines(report)] + [""]
    lines += [f"> **Warning:** {_md(warning)}" for warning in report.warnings]
    lines += [""] if report.warnings else []
    lines += [f"> {_md(note)}" for note in report.notes] + ([""] if report.notes else [])
    if report.tests is not None:
        lines += [*_tests_lines(report.tests, markdown=True), ""]
    lines += ["### Limits", "", *_md_table(_FIGURE_HEADINGS, (_figure_cells(f) for f in report.figures))]

    cc = report.close_codes
    by = ", ".join(f"{k} {v}" for k, v in sorted(cc.closed_by.items(), key=lambda i: -i[1]))
    lines += ["", "### Close codes", "", f"{cc.total} closes" + (f" (closed by: {by})" if by else ""), ""]
    if cc.codes:
        lines += _md_table(
            ["Code", "Name", "Count", "Share", "Usual cause"],
            ([str(r.code), r.name, str(r.count), f"{r.share:.1f} %", r.cause] for r in cc.codes),
        )

    d = report.delivery
    success = _delivery_success_text(report)
    lines += ["", "### Delivery", "", f"{d.delivered} delivered, {d.failed} failed, success {success}", ""]
    if d.reasons:
        lines += [*_md_table(["Reason", "Count"], ([r.name, str(r.count)] for r in d.reasons)), ""]
    if d.recent_failures:
        lines += _md_table(
            ["At", "Message", "Conn", "Reason"],
            ([r.at, r.message_id, r.conn, r.reason] for r in d.recent_failures),
        )

    c = report.connections
    kinds = ", ".join(f"{k.name} {k.count}" for k in c.connect_fail_kinds)
    lines += [
        "",
        "### Connections",
        "",
        f"{c.opened_total} opened, peak {c.peak_open} open, {c.open_at_end} open at the end, "
        f"{c.connect_failed} failed to connect" + (f" ({kinds})" if kinds else ""),
    ]
    if probes := probe_line(report):
        lines += ["", _md(probes)]
    if report.trends:
        lines += ["", "### Time to limit", ""] + [f"- {_md(t.text)}" for t in report.trends]
    if report.targets:
        lines += ["", "### Targets", ""]
        lines += _md_table(
            ["Name", "Kind", "Address", "State", "Downs", "Down time", "Last error"],
            (
                [t.name, t.kind, t.address, t.state, str(t.down_count), _duration(t.down_total_s), t.error]
                for t in report.targets
            ),
        )
    a = report.alerts
    active = ", ".join(f"{r.figure} {r.level}" for r in a.active) or "none"
    lines += ["", "### Alerts", "", f"{a.raised} raised, active at the end: {active}"]
    if a.active:
        lines += ["", *(f"- {_md(_alert_line(r))}" for r in a.active)]
    for x in report.exits:
        how = f"code {x.code}" if x.code is not None else (f"signal {x.signal}" if x.signal else "unknown")
        lines += ["", f"**Server exit**: {x.target} (pid {x.pid}) {how} at {x.at or '—'}"]
        if x.last_lines:
            lines += ["", "```", *x.last_lines, "```"]
    if report.markers:
        lines += ["", "### Markers", ""] + [f"- {m.at or '—'} {_md(m.text)}" for m in report.markers]
    if report.log_counts:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.log_counts.items()))
        lines += ["", f"Log lines: {counts}"]
    return "\n".join(lines) + "\n"


# --- JUnit ---------------------------------------------------------------------------------------

JUNIT_SUITE = "wsmon limits"
JUNIT_CLASS = "wsmon.limits"


def render_junit(report: Report) -> str:
    """JUnit XML: each limit a test case, so a CI dashboard lists breaches as failed tests.

    breach → <failure>; no data and too few to judge → <skipped>; ok, warn and capacity targets
    pass (warn and capacity say why in <system-out>). Capacity targets never fail, as they never
    fail the exit code.
    """
    failures = sum(1 for f in report.figures if f.verdict == BREACH)
    skipped = sum(1 for f in report.figures if f.verdict in (NO_DATA, TOO_FEW))
    counts = {"tests": str(len(report.figures)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "wsmon", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": JUNIT_SUITE,
            **counts,
            "skipped": str(skipped),
            "time": f"{report.session.duration_s:.3f}",
            **({"timestamp": report.session.started} if report.session.started else {}),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("source", report.session.source),
        ("command", report.session.command or ""),
        ("wsmon_version", report.session.wsmon_version or ""),
        ("verdict", report.verdict),
    ):
        if value:
            ET.SubElement(properties, "property", {"name": name, "value": value})
    for figure in report.figures:
        case = ET.SubElement(suite, "testcase", {"classname": JUNIT_CLASS, "name": figure.label, "time": "0"})
        summary = _junit_summary(figure)
        if figure.verdict == BREACH:
            failure = ET.SubElement(case, "failure", {"message": summary, "type": "breach"})
            failure.text = _junit_detail(figure)
        elif figure.verdict == NO_DATA:
            ET.SubElement(case, "skipped", {"message": f"{figure.label}: no data"})
        elif figure.verdict == TOO_FEW:
            ET.SubElement(case, "skipped", {"message": summary})
        else:
            ET.SubElement(case, "system-out").text = f"{figure.verdict}: {summary}"
    if report.tests is not None:
        _junit_tests(root, report.tests)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_tests(root: ET.Element, tests: Tests) -> None:
    """The watched tests as their own suite, so a JUnit reader of the report sees them too."""
    failures = sum(1 for t in tests.tests if t.outcome == "failed")
    errors = sum(1 for t in tests.tests if t.outcome == "error")
    skipped = sum(1 for t in tests.tests if t.outcome == "skipped")
    counts = {"tests": str(len(tests.tests)), "failures": str(failures), "errors": str(errors)}
    suite = ET.SubElement(root, "testsuite", {"name": "tests", **counts, "skipped": str(skipped)})
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("command", tests.command or ""),
        ("exit_code", "" if tests.exit_code is None else str(tests.exit_code)),
        ("verdict", tests.verdict),
        ("reason", tests.reason),
    ):
        if value:
            ET.SubElement(properties, "property", {"name": name, "value": value})
    for test in tests.tests:
        classname, _, name = test.name.rpartition("::")
        attrs = {"classname": classname, "name": name, "time": f"{test.duration_s or 0:.3f}"}
        case = ET.SubElement(suite, "testcase", attrs | ({"timestamp": test.start} if test.start else {}))
        if test.outcome in FAILED_OUTCOMES:
            ET.SubElement(case, "failure" if test.outcome == "failed" else "error", {"message": test.message})
        elif test.outcome == "skipped":
            ET.SubElement(case, "skipped", {"message": test.message})
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(int(root.get(attr, "0")) + int(counts[attr])))


def _junit_summary(f: Figure) -> str:
    observed = _figure_cells(f)[2]
    text = f"{f.label} {observed} (limit {f.limit_text})"
    if f.kind == "capacity":
        text = f"capacity target {f.verdict}: {text}"
    return f"{text}; {f.note}" if f.note else text


def _junit_detail(f: Figure) -> str:
    cells = dict(zip(_FIGURE_HEADINGS, _figure_cells(f), strict=True))
    return "\n".join(f"{key}: {value}" for key, value in cells.items() if value)


__all__ = [
    "FORMATS",
    "REPORT_VERSION",
    "Figure",
    "Report",
    "Tests",
    "build_report",
    "exit_code",
    "render",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_text",
    "verdict_line",
]
