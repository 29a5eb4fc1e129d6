"""The report (``wsmon.core.report.Report``) as ``wsmon report`` and ``wsmon replay --headless`` print it:
plain text, Markdown, JSON or JUnit XML. docs/report.md documents each format.

Text and Markdown are one ``Document`` (``report_document``) written by the shared walker in
``wsmon.render.document``; JSON is the Report's own shape; JUnit lives in ``wsmon.render.junit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from wsmon.core.figures import NO_DATA, NOT_REACHED, REACHED
from wsmon.core.limits import BREACH, OK, TAP_SATURATED, TOO_FEW, WARN, format_value, too_few_text
from wsmon.core.report import NO_CLIENT_TRAFFIC, Report
from wsmon.core.testrun import FAIL, Tests
from wsmon.render.cells import FIGURE_HEADINGS, figure_cells
from wsmon.render.document import (
    Block,
    Callout,
    Code,
    Document,
    Fact,
    Items,
    Lines,
    Paragraph,
    Section,
    Subsection,
    Table,
    to_markdown,
    to_text,
)
from wsmon.render.junit import render_junit
from wsmon.render.testwindows import describe, span_line

FORMATS: tuple[str, ...] = ("text", "json", "markdown", "junit")


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


def render_text(report: Report) -> str:
    return to_text(report_document(report))


def render_markdown(report: Report) -> str:
    """GitHub-flavoured Markdown, for a CI job summary."""
    return to_markdown(report_document(report))


def render_json(report: Report) -> str:
    """The documented JSON shape (docs/report.md); non-finite numbers become null."""
    return msgspec.json.format(msgspec.json.encode(finite(msgspec.to_builtins(report))), indent=2).decode()


def finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def verdict_line(report: Report) -> str:
    c = report.counts
    judged = [f"{c[k]} {k}" for k in (BREACH, WARN, OK, TOO_FEW, TAP_SATURATED, NO_DATA) if c.get(k)]
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


def probe_line(report: Report) -> str:
    """wsmon's own probes' latencies in one line, labelled as the probe's; "" without any."""
    parts = [
        f"{p.label} p95 {format_value(p.p95, 'ms')} (max {format_value(p.max, 'ms')}, {p.count} samples)"
        for p in report.probe
        if p.p95 is not None and p.max is not None
    ]
    return "wsmon's own probes (not judged): " + ", ".join(parts) if parts else ""


# --- the document ---------------------------------------------------------------------------------


def report_document(report: Report) -> Document:
    return Document(
        title=verdict_line(report),
        byline=_byline(report),
        preface=[
            *([Callout("warning", report.warnings)] if report.warnings else []),
            *([Callout("note", report.notes)] if report.notes else []),
        ],
        sections=[
            *([_tests_section(report.tests)] if report.tests is not None else []),
            Section(
                "Limits",
                gloss="latency judged on the session p95",
                blocks=[Table(FIGURE_HEADINGS, [figure_cells(f) for f in report.figures])],
            ),
            _close_codes_section(report),
            _delivery_section(report),
            _connections_section(report),
            *_trends_sections(report),
            *_targets_sections(report),
            _alerts_section(report),
            *_markers_sections(report),
            *_log_sections(report),
        ],
    )


def _byline(report: Report) -> list[str]:
    s = report.session
    parts = [f"source {s.source}" if s.source else "", f"wsmon {s.wsmon_version}" if s.wsmon_version else ""]
    parts.append(f"command: {s.command}" if s.command else "")
    head = "  ".join(p for p in parts if p)
    when = f"started {s.started or '—'}  duration {duration(s.duration_s)}  events {s.events:,}"
    return [line for line in (head, when) if line]


def _tests_section(tests: Tests) -> Section:
    """Verdict and reason, counts, then each failed test with what the server did while it ran."""
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tests.counts.items())) or "none"
    total = sum(tests.counts.values())
    head = [f"FAIL — {tests.reason}" if tests.verdict == FAIL else "pass"]
    if tests.command is not None:
        code = "did not start" if tests.exit_code is None else f"exit {tests.exit_code}"
        head.append(f"command: {tests.command} ({code})")
    head.append(f"{total} tests: {summary}")
    blocks: list[Block] = [Lines(head)]
    for window in tests.failed:
        title = f"{window.outcome.upper()} {window.test}" + (f" — {window.message}" if window.message else "")
        ran = [Paragraph(span_line(window))] if window.duration_s is not None else []
        blocks.append(Subsection(title, [*ran, Items([line.strip() for line in describe(window)])]))
    return Section("Tests", blocks=blocks)


def _close_codes_section(report: Report) -> Section:
    cc = report.close_codes
    by = ", ".join(f"{k} {v}" for k, v in sorted(cc.closed_by.items(), key=lambda i: -i[1]))
    rows = [[str(r.code), r.name, str(r.count), f"{r.share:.1f} %", r.cause] for r in cc.codes]
    return Section(
        "Close codes",
        summary=f"{cc.total} closes" + (f" (closed by: {by})" if by else ""),
        blocks=[Table(("Code", "Name", "Count", "Share", "Usual cause"), rows)],
    )


def _delivery_section(report: Report) -> Section:
    d = report.delivery
    reasons = [Table(("Reason", "Count"), [[r.name, str(r.count)] for r in d.reasons])] if d.reasons else []
    failures = [[r.at, r.message_id, r.conn, r.reason] for r in d.recent_failures]
    return Section(
        "Delivery",
        summary=f"{d.delivered} delivered, {d.failed} failed, success {_delivery_success_text(report)}",
        blocks=[*reasons, Table(("At", "Message", "Conn", "Reason"), failures, caption="last failures")],
    )


def _delivery_success_text(report: Report) -> str:
    """The success rate, unless it has too few attempts to mean anything (then it says so)."""
    judged = next((f for f in report.figures if f.figure == "delivery_success"), None)
    if judged is not None and judged.verdict == TOO_FEW:
        return too_few_text(judged.denominator or 0)
    d = report.delivery
    return "—" if d.success_percent is None else format_value(d.success_percent, "%")


def _connections_section(report: Report) -> Section:
    c = report.connections
    kinds = ", ".join(f"{k.name} {k.count}" for k in c.connect_fail_kinds)
    probes = probe_line(report)
    return Section(
        "Connections",
        summary=f"{c.opened_total} opened, peak {c.peak_open} open, {c.open_at_end} open at the end, "
        f"{c.connect_failed} failed to connect" + (f" ({kinds})" if kinds else ""),
        blocks=[Fact(probes)] if probes else [],
    )


def _trends_sections(report: Report) -> list[Section]:
    if not report.trends:
        return []
    return [
        Section(
            "Time to limit",
            gloss="trend over the last minutes",
            blocks=[Items([t.text for t in report.trends])],
        )
    ]


def _targets_sections(report: Report) -> list[Section]:
    if not report.targets:
        return []
    rows = [
        [t.name, t.kind, t.address, t.state, str(t.down_count), duration(t.down_total_s), t.error]
        for t in report.targets
    ]
    headings = ("Name", "Kind", "Address", "State", "Downs", "Down time", "Last error")
    return [Section("Targets", blocks=[Table(headings, rows)])]


def _alerts_section(report: Report) -> Section:
    a = report.alerts
    active = ", ".join(f"{r.figure} {r.level}" for r in a.active) or "none"
    # Each alert leads with the figure at the end of the session, not the value it was raised at.
    lines = [
        f"{r.level.upper()} {r.headline or r.message or r.figure}"
        + (f" (since {r.since})" if r.since else "")
        for r in a.active
    ]
    blocks: list[Block] = [Items(lines)] if lines else []
    for x in report.exits:
        how = f"code {x.code}" if x.code is not None else (f"signal {x.signal}" if x.signal else "unknown")
        blocks.append(Fact(f"{x.target} (pid {x.pid}) {how} at {x.at or '—'}", label="Server exit"))
        blocks += [Code(x.last_lines)] if x.last_lines else []
    return Section("Alerts", summary=f"{a.raised} raised, active at the end: {active}", blocks=blocks)


def _markers_sections(report: Report) -> list[Section]:
    if not report.markers:
        return []
    return [Section("Markers", blocks=[Items([(m.at or "—", m.text) for m in report.markers])])]


def _log_sections(report: Report) -> list[Section]:
    if not report.log_counts:
        return []
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.log_counts.items()))
    return [Section(blocks=[Fact(f"Log lines: {counts}")])]


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


__all__ = [
    "FORMATS",
    "probe_line",
    "render",
    "render_json",
    "render_markdown",
    "render_text",
    "report_document",
    "verdict_line",
]
