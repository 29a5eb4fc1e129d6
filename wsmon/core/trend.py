"""Time to limit: a robust trend of a resource over the last minutes, projected onto its limit.

"RSS 410 MiB, +3.1 MiB/min, reaches 512 MiB in about 33 min". The slope is Theil-Sen (the median of
the pairwise slopes) because a resource series has outliers — a GC pause, one slow poll, a burst —
and a least-squares line would swing with each of them. Pure: reads a State, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from wsmon.core.state import Series, State

MAX_POINTS = 200  # pairwise slopes are O(n²): 200 points are ~20,000 slopes, cheap enough per frame
MIN_SPAN_S = 60.0
MIN_POINTS = 10
DEFAULT_WINDOW_S = 300.0
MAX_ETA_S = 7 * 24 * 3600.0  # beyond a week the projection says nothing useful
STEADY_FRACTION_PER_MIN = 1e-4
_MIB = 1024 * 1024


class TimeToLimit(msgspec.Struct, kw_only=True):
    """One resource's trend. ``eta_s`` is None when there is no limit, the trend is flat or falling,
    or there is not enough data (``enough_data`` says which)."""

    figure: str  # rss_mib | pg_connections | redis_used_mib
    label: str  # "RSS", "PostgreSQL connections", "Redis memory"
    unit: str  # "MiB" or ""
    current: float | None
    slope_per_min: float | None
    limit: float | None
    eta_s: float | None
    enough_data: bool
    window_s: float
    points: int
    text: str


def theil_sen_slope(times: Sequence[float], values: Sequence[float]) -> float:
    """The median of the slopes between every pair of points (NaN with fewer than two distinct times).

    Longer inputs are subsampled evenly to at most MAX_POINTS first, which keeps the estimate's
    robustness (up to ~29 % outliers) at a bounded cost.
    """
    if len(times) != len(values):
        raise ValueError(f"times and values differ in length: {len(times)} != {len(values)}")
    t, v = _subsample(times, values, MAX_POINTS)
    slopes: list[float] = []
    for i in range(len(t)):
        ti, vi = t[i], v[i]
        for j in range(i + 1, len(t)):
            dt = t[j] - ti
            if dt != 0:
                slopes.append((v[j] - vi) / dt)
    if not slopes:
        return math.nan
    slopes.sort()
    mid = len(slopes) // 2
    return slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def _subsample(times: Sequence[float], values: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    if len(times) <= n:
        return list(times), list(values)
    step = (len(times) - 1) / (n - 1)
    picks = [round(i * step) for i in range(n)]
    return [times[i] for i in picks], [values[i] for i in picks]


def time_to_limit(
    figure: str,
    label: str,
    unit: str,
    times: Sequence[float],
    values: Sequence[float],
    limit: float | None,
    *,
    now: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
) -> TimeToLimit:
    """Project ``values`` over the last ``window_s`` seconds (ending at ``now``, default the last sample)."""
    end = now if now is not None else (times[-1] if times else 0.0)
    start_index = _first_at_or_after(times, end - window_s)
    t, v = list(times[start_index:]), list(values[start_index:])
    current = v[-1] if v else None
    limit = limit if limit is not None and math.isfinite(limit) and limit > 0 else None
    base = TimeToLimit(
        figure=figure,
        label=label,
        unit=unit,
        current=current,
        slope_per_min=None,
        limit=limit,
        eta_s=None,
        enough_data=False,
        window_s=window_s,
        points=len(v),
        text="",
    )
    if current is None or len(v) < MIN_POINTS or t[-1] - t[0] < MIN_SPAN_S:
        head = f"{label} {_fmt(current, unit)}, " if current is not None else f"{label}: "
        base.text = f"{head}not enough data for a trend"
        return base
    slope = theil_sen_slope(t, v) * 60.0
    base.enough_data = True
    base.slope_per_min = slope
    base.eta_s = _eta_s(current, slope, limit)
    base.text = _describe(base)
    return base


def _first_at_or_after(times: Sequence[float], cutoff: float) -> int:
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] < cutoff:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _eta_s(current: float, slope_per_min: float, limit: float | None) -> float | None:
    if limit is None or slope_per_min <= 0:
        return None
    if current >= limit:
        return 0.0
    eta = (limit - current) / slope_per_min * 60.0
    return eta if eta <= MAX_ETA_S else None


def _steady(t: TimeToLimit) -> bool:
    """A slope too small to matter: under 0.01 % of the limit (or of the value) a minute, which is
    0.05 MiB/min against 512 MiB — a day and a half to grow by 100 MiB."""
    assert t.slope_per_min is not None
    scale = t.limit if t.limit is not None else abs(t.current or 0.0)
    return abs(t.slope_per_min) < max(scale * STEADY_FRACTION_PER_MIN, 1e-9)


def _describe(t: TimeToLimit) -> str:
    assert t.slope_per_min is not None
    head = f"{t.label} {_fmt(t.current, t.unit)}"
    if _steady(t):
        return f"{head}, steady"
    sign = "+" if t.slope_per_min > 0 else "−"
    unit = f" {t.unit}" if t.unit else ""
    rate = f"{sign}{_number(abs(t.slope_per_min))}{unit}/min"
    if t.limit is None:
        return f"{head}, {rate}, no limit"
    if t.eta_s == 0.0:
        return f"{head}, {rate}, at or over its limit of {_fmt(t.limit, t.unit)}"
    if t.eta_s is None:
        return f"{head}, {rate}" if t.slope_per_min < 0 else f"{head}, {rate}, limit not in sight"
    return f"{head}, {rate}, reaches {_fmt(t.limit, t.unit)} in about {_eta_text(t.eta_s)}"


def _number(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} {unit}" if unit else f"{value:.0f}"


def _eta_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{round(minutes)} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


# --- the three resources -------------------------------------------------------------------------


def _series_trend(
    figure: str, label: str, unit: str, series: Series, limit: float | None, state: State, window_s: float
) -> TimeToLimit:
    return time_to_limit(
        figure, label, unit, series.times, series.values, limit, now=state.last_mono, window_s=window_s
    )


def rss_time_to_limit(
    state: State, limit_mib: float | None, window_s: float = DEFAULT_WINDOW_S
) -> TimeToLimit:
    return _series_trend("rss_mib", "RSS", "MiB", state.rss_mib, limit_mib, state, window_s)


def postgres_connections_time_to_limit(state: State, window_s: float = DEFAULT_WINDOW_S) -> TimeToLimit:
    """PostgreSQL's connections against its max_connections, as the latest sample reports it."""
    limit = state.postgres.max_connections if state.postgres is not None else None
    return _series_trend(
        "pg_connections",
        "PostgreSQL connections",
        "",
        state.pg_connections,
        float(limit) if limit else None,
        state,
        window_s,
    )


def redis_memory_time_to_limit(state: State, window_s: float = DEFAULT_WINDOW_S) -> TimeToLimit | None:
    """Redis used_memory against maxmemory; None when Redis has no maxmemory (0: unlimited) or is unseen."""
    maxmemory = state.redis.maxmemory if state.redis is not None else None
    if not maxmemory:
        return None
    return _series_trend(
        "redis_used_mib", "Redis memory", "MiB", state.redis_used_mib, maxmemory / _MIB, state, window_s
    )


def all_time_to_limit(
    state: State, rss_limit_mib: float | None, window_s: float = DEFAULT_WINDOW_S
) -> list[TimeToLimit]:
    """Every trend that has something to show: RSS when the process was sampled, PostgreSQL and Redis
    when they were watched (Redis only with a maxmemory)."""
    out: list[TimeToLimit] = []
    if state.rss_mib.values:
        out.append(rss_time_to_limit(state, rss_limit_mib, window_s))
    if state.pg_connections.values:
        out.append(postgres_connections_time_to_limit(state, window_s))
    if state.redis_used_mib.values:
        redis = redis_memory_time_to_limit(state, window_s)
        if redis is not None:
            out.append(redis)
    return out


__all__ = [
    "MAX_POINTS",
    "MIN_POINTS",
    "MIN_SPAN_S",
    "TimeToLimit",
    "all_time_to_limit",
    "postgres_connections_time_to_limit",
    "redis_memory_time_to_limit",
    "rss_time_to_limit",
    "theil_sen_slope",
    "time_to_limit",
]
