"""Each limit's session figure and its verdict: the rows of the report's Limits table.

``judge_figure(state, limit)`` reads the State the way the live judge does (latency on the session
p95, ratios on their 95 % interval, CPU on its highest 5-sample mean, RSS on its peak; capacity targets
reached or not) and then lets a breach raised live stand. docs/report.md states the rules. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import msgspec

from wsmon.core.limits import (
    BREACH,
    CPU_AVERAGE_SAMPLES,
    OK,
    TAP_SATURATED,
    TOO_FEW,
    Limit,
    format_value,
    level_of,
    ratio_counts,
    too_few,
    wilson_interval,
)
from wsmon.core.state import PROBE_CONNECT, SERIES_LEN, TAP_SATURATED_CONNECT, State

NO_DATA = "no data"
REACHED = "reached"
NOT_REACHED = "not reached"


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


def judge_figure(state: State, limit: Limit) -> Figure:
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
    if limit.latency_kind == "connect" and _saturated_note(state, fig) and (dist is None or not dist.count):
        fig.verdict = TAP_SATURATED  # every handshake was measured by a tap that could not keep up
        return
    if dist is None or not dist.count:
        probe = state.latency.get(PROBE_CONNECT)
        if limit.latency_kind == "connect" and probe is not None and probe.count:
            shown = format_value(finite_float(probe.session_percentile(95)), "ms")
            fig.note = f"no client handshakes seen (needs a tap); wsmon's own probe: p95 {shown}"
        return
    fig.count = dist.count
    fig.p50 = finite_float(dist.session_percentile(50))
    fig.p95 = finite_float(dist.session_percentile(95))
    fig.p99 = finite_float(dist.session_percentile(99))
    fig.mean = finite_float(dist.mean)
    fig.max = finite_float(dist.maximum)
    fig.value = fig.p95
    fig.verdict = level_of(limit, fig.value)


def _saturated_note(state: State, fig: Figure) -> bool:
    """Notes the handshakes a saturated tap measured (left out of the figure); False when none were."""
    dist = state.latency.get(TAP_SATURATED_CONNECT)
    if dist is None or not dist.count:
        return False
    spell = sum(t.saturated_s(state.last_mono) for t in state.targets.values())
    fig.note = (
        f"{dist.count:,} handshakes measured while the tap was saturated ({spell:.1f} s) or its loop "
        "stalled are not judged: its own delay, not the server's"
    )
    return True


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
    fig.peak = fig.value = finite_float(series.peak)
    fig.last = finite_float(series.last)
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
    fig.peak = finite_float(state.cpu.peak)
    fig.last = finite_float(state.cpu.tail_mean(CPU_AVERAGE_SAMPLES))
    if len(values) < CPU_AVERAGE_SAMPLES:
        fig.note = f"{len(values)} samples: the {CPU_AVERAGE_SAMPLES}-sample mean needs more"
        return  # the live judge does not judge these either: start-up, not load
    fig.value = finite_float(_peak_moving_mean(values, CPU_AVERAGE_SAMPLES))
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
        seconds = {b.start for b in state.timeline.fine} | set(state.msgs_by_second)
        complete = [state.msgs_in_second(second) for second in seconds if second < now]
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


def finite_float(value: float | None) -> float | None:
    # float() because events may carry ints, and the JSON shape promises numbers of one type.
    return None if value is None or not math.isfinite(value) else float(value)
