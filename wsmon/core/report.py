"""The verdict on a recorded session: every limit's session figure, close codes, delivery, targets.

``build_report`` turns a final State into a ``Report`` (a msgspec Struct tree, so its JSON is one
encode); each limit's figure is judged in ``wsmon.core.figures``, the watched tests in
``wsmon.core.testrun``. ``wsmon.render.report`` turns the Report into what ``wsmon report`` and
``wsmon replay --headless`` print. Pure: no I/O. docs/report.md documents the JSON shape and what
each verdict means; change the shape only as its versioning rules say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from wsmon.core.closecodes import close_code_cause, close_code_name
from wsmon.core.figures import NO_DATA, Figure, finite_float, judge_figure
from wsmon.core.limits import (
    BREACH,
    OK,
    TOO_FEW,
    WARN,
    Limit,
    alert_headline,
    format_value,
    live_value,
    ratio_counts,
    too_few,
    too_few_text,
    worst_of,
)
from wsmon.core.redact import redact_command
from wsmon.core.sanitize import visible
from wsmon.core.state import PROBE_CONNECT, State
from wsmon.core.testrun import FAIL, Tests, tests_of
from wsmon.core.testwindows import TestWindow
from wsmon.core.trend import TimeToLimit, all_time_to_limit
from wsmon.core.wallclock import clock_of, iso_utc

REPORT_VERSION = 1
RECENT_FAILURES = 5
# Figures only the clients' own traffic feeds (wsmon's probes do not count towards them).
CLIENT_FIGURES = frozenset({"delivery_ms", "e2e_ms", "delivery_success", "connections", "messages_per_s"})
NO_CLIENT_TRAFFIC = (
    "wsmon saw no client traffic, so the client figures have no data. To let it see the clients, "
    "point them at a --tap LISTEN=UPSTREAM in front of the server, or let wsmon read the server's log "
    "(--log FILE, or --server CMD) if the server logs its connections and deliveries."
)


class SessionInfo(msgspec.Struct, kw_only=True):
    """What was watched, when and for how long: the report's "session" object."""

    source: str
    wsmon_version: str | None
    command: str | None
    started: str | None  # ISO 8601 UTC of the first event
    ended: str | None
    duration_s: float
    events: int


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
    session: SessionInfo
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
    to_iso = clock_of(state)
    figures = [judge_figure(state, limit) for limit in limits]
    counts: dict[str, int] = {}
    for figure in figures:
        counts[figure.verdict] = counts.get(figure.verdict, 0) + 1
    verdict = _overall_verdict(figures)
    tests = tests_of(state, test_windows)
    if tests is not None and tests.verdict == FAIL:
        verdict = FAIL
    report = Report(
        session=SessionInfo(
            source=source,
            wsmon_version=_header_str(header, "wsmon_version", "version"),
            command=_header_command(header.get("command")),
            started=iso_utc(state.first_wall),
            ended=iso_utc(state.last_wall) if state.first_wall is not None else None,
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
        markers=[MarkerRow(at=iso_utc(m.wall), text=m.text) for m in state.markers],
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
    notes = [NO_CLIENT_TRAFFIC] if client and not seen else []
    return notes + _saturation_notes(state)


def _saturation_notes(state: State) -> list[str]:
    """How long each tap could not keep up: what it measured then is its own delay as much as the server's."""
    notes = []
    for t in state.targets.values():
        if not t.saturated_count:
            continue
        spells = "once" if t.saturated_count == 1 else f"{t.saturated_count} times"
        lasting = f"{t.saturated_s(state.last_mono):.1f} s in all"
        still = ", still at the end" if t.saturated_since is not None else ""
        notes.append(
            f"{t.name}: the tap was saturated {spells} ({lasting}{still}; its loop lag p95 up to "
            f"{t.saturated_lag_ms:.0f} ms): the connect times it measured then are not judged"
        )
    return notes


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
        worst=finite_float(state.breached.get(figure)),
    )
    limit = next((lim for lim in limits if lim.figure == figure), None)
    if limit is None:
        row.headline = a.message or figure
        return row
    row.now = finite_float(live_value(state, limit))
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
                p50=finite_float(dist.session_percentile(50)),
                p95=finite_float(dist.session_percentile(95)),
                max=finite_float(dist.maximum),
            )
        )
    return rows


def _rss_limit(limits: tuple[Limit, ...]) -> float | None:
    return next((limit.value for limit in limits if limit.kind == "rss"), None)


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
                at=iso_utc(f.wall) or "",
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


__all__ = ["REPORT_VERSION", "Figure", "Report", "SessionInfo", "Tests", "build_report", "exit_code"]
