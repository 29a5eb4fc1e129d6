"""A figure as a row of table cells, shared by every format that shows it in a table or a JUnit case:
the report's limits (``figure_cells``) and the baseline comparison's changes (``change_cells``)."""

from __future__ import annotations

from wsmon.core.baseline import FigureChange
from wsmon.core.figures import Figure
from wsmon.core.limits import CPU_AVERAGE_SAMPLES, TOO_FEW, format_value, too_few_text

FIGURE_HEADINGS = ("Figure", "Limit", "Observed", "p50", "p95", "p99", "Max", "Samples", "Verdict", "Note")
CHANGE_HEADINGS = ("Figure", "Baseline", "New", "Change", "Relative", "Tolerance", "Verdict", "Note")


def figure_cells(f: Figure) -> list[str]:
    """One figure's row under FIGURE_HEADINGS."""

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


def change_cells(r: FigureChange) -> list[str]:
    """One compared figure's row under CHANGE_HEADINGS."""
    relative = "" if r.change_percent is None else f"{r.change_percent:+.1f} %"
    return [
        r.label,
        format_value(r.old, r.unit) if r.old is not None else "—",
        format_value(r.new, r.unit) if r.new is not None else "—",
        _signed(r.change, r.unit),
        relative,
        f"{100 * r.tolerance:g} %",
        r.verdict,
        r.note,
    ]


def _signed(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "%":
        text = f"{abs(value):.2f} pt"  # a change of a percentage is in points
    elif unit == "MiB":
        text = f"{abs(value):.1f} MiB"  # the report's whole MiB would show a small change as 0
    else:
        text = format_value(abs(value), unit)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text
