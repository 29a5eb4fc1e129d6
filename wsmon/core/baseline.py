"""Baseline comparison: two reports of the same test, figure by figure, with a tolerance per figure.

``compare(new, old)`` marks each figure ``regression``, ``improved``, ``same`` or ``no data``; the
comparison's exit code is 1 when any figure regressed (``wsmon.render.baseline`` prints it). The
rules (docs/report.md, "Baselines"):

- latency, RSS and CPU: higher is worse; a regression is a relative rise beyond the tolerance;
- messages/s: lower is worse; a regression is a relative fall beyond the tolerance;
- success ratios are compared on their *failure* percentage, since 99.9 % → 99.0 % is ten times the
  failures, not a 0.9 % change. The failure rate may grow by the tolerance relative to the old one,
  but never less than FAILURE_FLOOR_PERCENT points, so 100 % → 99.99 % is not "infinitely worse";
- a change smaller than the figure's ABSOLUTE_FLOOR (1 ms, 2 MiB, 2 CPU points, 5 msg/s) is never a
  regression: 1 ms → 1.2 ms is +20 % but nothing a test run can tell from noise;
- a p95 from fewer than MIN_LATENCY_SAMPLES samples in either report is not compared (with two
  samples the p95 is the slowest one).

Pure: no I/O. The CLI reads the tolerances from wsmon.toml and validates them with
``parse_tolerances``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from wsmon.core.figures import Figure
from wsmon.core.report import Report
from wsmon.core.sanitize import shown_key

DEFAULT_TOLERANCE = 0.10
FAILURE_FLOOR_PERCENT = 0.1  # failure-rate growth below 0.1 points is noise, never a regression
ABSOLUTE_FLOOR: dict[str, float] = {"ms": 1.0, "MiB": 2.0, "%": 2.0, "msg/s": 5.0}
MIN_LATENCY_SAMPLES = 20

REGRESSION = "regression"
IMPROVED = "improved"
SAME = "same"
NO_DATA = "no data"


class Compared(msgspec.Struct, frozen=True):
    """One compared figure: which report field it reads and which way is worse."""

    figure: str
    label: str
    statistic: str  # p95 | peak | percent
    unit: str
    worse: str  # higher | lower


COMPARED: tuple[Compared, ...] = (
    Compared("connect_ms", "Connect time p95", "p95", "ms", "higher"),
    Compared("delivery_ms", "Delivery latency p95", "p95", "ms", "higher"),
    Compared("delivery_success", "Delivery success", "percent", "%", "lower"),
    Compared("e2e_ms", "End-to-end p95", "p95", "ms", "higher"),
    Compared("rss_mib", "Peak RSS", "peak", "MiB", "higher"),
    Compared("cpu_percent", "Peak CPU (5-sample mean)", "peak", "%", "higher"),
    Compared("messages_per_s", "Peak messages/s", "peak", "msg/s", "lower"),
    Compared("connect_success", "Connection success", "percent", "%", "lower"),
)
FIGURES: tuple[str, ...] = tuple(c.figure for c in COMPARED)


class FigureChange(msgspec.Struct, kw_only=True):
    figure: str
    label: str
    unit: str
    worse: str  # higher | lower: which direction is a regression
    old: float | None
    new: float | None
    change: float | None  # new − old, in the figure's unit
    change_percent: float | None  # relative to old; for success ratios, of the failure percentage
    tolerance: float  # a fraction: 0.1 is 10 %
    verdict: str  # regression | improved | same | no data
    note: str = ""


class BaselineComparison(msgspec.Struct, kw_only=True):
    new_source: str
    old_source: str
    default_tolerance: float
    verdict: str  # regression | pass | no data
    figures: list[FigureChange]

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == REGRESSION else 0

    @property
    def regressions(self) -> list[FigureChange]:
        return [f for f in self.figures if f.verdict == REGRESSION]


class ToleranceError(ValueError):
    """A tolerance that is not usable; the message is one line naming where it came from."""


def parse_tolerance(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
        raise ToleranceError(f"{where}: expected a fraction ≥ 0 such as 0.1 (10 %), got {raw!r}")
    return float(raw)


def parse_tolerances(raw: Any, where: str) -> dict[str, float]:
    """``[baseline.tolerances]``: figure = fraction, e.g. ``delivery_ms = 0.2``."""
    if not isinstance(raw, Mapping):
        raise ToleranceError(f"{where}: expected a table of figure = fraction, got {raw!r}")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key not in FIGURES:
            expected = ", ".join(FIGURES)
            raise ToleranceError(f"{where}.{shown_key(key)}: unknown figure; expected one of {expected}")
        out[key] = parse_tolerance(value, f"{where}.{key}")
    return out


def compare(
    new: Report,
    old: Report,
    tolerances: Mapping[str, float] | None = None,
    default_tolerance: float = DEFAULT_TOLERANCE,
) -> BaselineComparison:
    tolerances = tolerances or {}
    new_figures = {f.figure: f for f in new.figures}
    old_figures = {f.figure: f for f in old.figures}
    rows = [
        _compare_one(
            c,
            new_figures.get(c.figure),
            old_figures.get(c.figure),
            tolerances.get(c.figure, default_tolerance),
        )
        for c in COMPARED
    ]
    if any(r.verdict == REGRESSION for r in rows):
        verdict = REGRESSION
    elif all(r.verdict == NO_DATA for r in rows):
        verdict = NO_DATA
    else:
        verdict = "pass"
    return BaselineComparison(
        new_source=new.session.source,
        old_source=old.session.source,
        default_tolerance=default_tolerance,
        verdict=verdict,
        figures=rows,
    )


def _value(c: Compared, figure: Figure | None) -> float | None:
    if figure is None:
        return None
    if c.statistic == "p95":
        return figure.p95
    if c.figure == "cpu_percent":
        return figure.value  # the 5-sample mean peak the limit is judged on; a raw peak is one busy second
    if c.statistic == "peak":
        return figure.peak
    if c.statistic == "percent" and figure.value is None and figure.denominator:
        # The raw rate: a ratio the report leaves unjudged (too few attempts) still has one to compare.
        return 100.0 * (figure.numerator or 0) / figure.denominator
    return figure.value


def _compare_one(
    c: Compared, new_figure: Figure | None, old_figure: Figure | None, tolerance: float
) -> FigureChange:
    new, old = _value(c, new_figure), _value(c, old_figure)
    row = FigureChange(
        figure=c.figure,
        label=c.label,
        unit=c.unit,
        worse=c.worse,
        old=old,
        new=new,
        change=None,
        change_percent=None,
        tolerance=tolerance,
        verdict=NO_DATA,
    )
    if new is None or old is None:
        row.note = "not measured in " + (
            "either" if new is None and old is None else ("new" if new is None else "old")
        )
        return row
    row.change = new - old
    if c.statistic == "p95":
        fewest = min(new_figure.count if new_figure else 0, old_figure.count if old_figure else 0)
        if fewest < MIN_LATENCY_SAMPLES:
            row.note = f"{fewest} samples: too few for a p95 to compare (needs {MIN_LATENCY_SAMPLES})"
            return row
    judge: Callable[[FigureChange, float, float, float], None] = (
        _judge_ratio if c.statistic == "percent" else _judge_relative
    )
    judge(row, new, old, tolerance)
    return row


def _judge_relative(row: FigureChange, new: float, old: float, tolerance: float) -> None:
    sign = 1.0 if row.worse == "higher" else -1.0
    if old == 0:
        worse_by = sign * new
        floor = ABSOLUTE_FLOOR.get(row.unit, 0.0)
        row.verdict = REGRESSION if worse_by > floor else (IMPROVED if worse_by < -floor else SAME)
        row.note = "baseline was 0"
        return
    relative = (new - old) / abs(old)
    row.change_percent = 100.0 * relative
    if abs(new - old) < ABSOLUTE_FLOOR.get(row.unit, 0.0):
        row.verdict = SAME
        return
    worse_by = sign * relative
    row.verdict = REGRESSION if worse_by > tolerance else (IMPROVED if worse_by < -tolerance else SAME)


def _judge_ratio(row: FigureChange, new: float, old: float, tolerance: float) -> None:
    old_fail, new_fail = 100.0 - old, 100.0 - new
    allowed = max(old_fail * tolerance, FAILURE_FLOOR_PERCENT)
    if old_fail > 0:
        row.change_percent = 100.0 * (new_fail - old_fail) / old_fail
    row.note = f"failures {old_fail:.2f} % → {new_fail:.2f} %"
    growth = new_fail - old_fail
    row.verdict = REGRESSION if growth > allowed else (IMPROVED if growth < -allowed else SAME)


__all__ = [
    "COMPARED",
    "DEFAULT_TOLERANCE",
    "FAILURE_FLOOR_PERCENT",
    "FIGURES",
    "BaselineComparison",
    "FigureChange",
    "ToleranceError",
    "compare",
    "parse_tolerance",
    "parse_tolerances",
]
