"""Limits, their verdicts, and the judge that turns crossings into alert events.

Each figure is ok, warn (at 80 % of its limit) or breach. For success ratios the 80 % applies to
the failure budget: with "connect success > 99 %" the budget is 1 % failures, so warn starts at
0.8 % failures (99.2 % success). Levels fall back only once the figure is 5 % of the limit clear
of the threshold (hysteresis), so a figure hovering at a threshold does not flap.

A success ratio is judged only on enough evidence: below ``Limit.min_events`` attempts (default
RATIO_MIN_EVENTS, set with ``ratio_min_events`` beside the limits) it is "too few to judge", never ok
and never a breach. From there its level is the level of the *upper* end of its 95 % Wilson score
interval (with continuity correction): it breaches only when even the most favourable reading of the
attempts so far is below the limit, so a lone early failure (a false one, often) raises nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

from wsmon.core.events import AlertCleared, AlertLevel, AlertRaised, Event
from wsmon.core.sanitize import shown_key
from wsmon.core.state import State, saturated_taps

OK: Final = "ok"
WARN: Final = "warn"
BREACH: Final = "breach"
Level = AlertLevel | Literal["ok"]  # a figure's verdict: an alert's level, or none
WARN_AT = 0.8
HYSTERESIS = 0.05
CPU_AVERAGE_SAMPLES = 5  # CPU is judged on a 5-sample mean: a busy second at start-up is not "load"
# Below a hundred attempts one attempt moves a success rate by more than a point, which is more than
# the whole failure budget of "> 99 %": such a figure means nothing yet.
RATIO_MIN_EVENTS = 100
RATIO_MIN_EVENTS_KEY = "ratio_min_events"  # its key in [limits] and --limit
WILSON_Z = 1.959964  # two-sided 95 % (97.5 % one-sided: the chance of a false breach per judgement)
TOO_FEW = "too few to judge"
# While a tap cannot keep up, the connect times it measures are its own delay as much as the server's.
TAP_SATURATED = "tap saturated — not judged"
_LEVEL_RANK: dict[Level, int] = {OK: 0, WARN: 1, BREACH: 2}


class Limit(msgspec.Struct, frozen=True):
    figure: str
    label: str
    unit: str
    bound: Literal["max", "min"]  # max: must stay below; min: must stay above
    value: float
    kind: Literal["latency", "ratio", "rss", "cpu", "capacity"]
    latency_kind: str = ""
    min_events: int = RATIO_MIN_EVENTS  # ratio limits: attempts needed before the figure is judged

    def describe(self) -> str:
        op = "<" if self.bound == "max" else ">"
        return f"{op} {format_value(self.value, self.unit)}"


DEFAULT_LIMITS: tuple[Limit, ...] = (
    Limit("connect_ms", "WebSocket connect time", "ms", "max", 100.0, "latency", "connect"),
    Limit("delivery_ms", "Message delivery latency", "ms", "max", 50.0, "latency", "delivery"),
    Limit("db_ms", "Database query response", "ms", "max", 200.0, "latency", "db"),
    Limit("e2e_ms", "End-to-end message flow", "ms", "max", 500.0, "latency", "e2e"),
    Limit("connect_success", "Connection success rate", "%", "min", 99.0, "ratio"),
    Limit("delivery_success", "Message delivery success", "%", "min", 99.9, "ratio"),
    Limit("rss_mib", "Server memory (RSS)", "MiB", "max", 512.0, "rss"),
    Limit("cpu_percent", "Server CPU (of one core)", "%", "max", 50.0, "cpu"),
    Limit("connections", "Concurrent connections (capacity target)", "", "min", 100.0, "capacity"),
    Limit("messages_per_s", "Throughput (capacity target)", "msg/s", "min", 1000.0, "capacity"),
)


class LimitError(ValueError):
    """A limit override that is not usable; the message names the key and what was expected."""


def with_overrides(overrides: Mapping[str, Any], where: str = "limits") -> tuple[Limit, ...]:
    """Defaults with some values replaced, e.g. ``{"rss_mib": 256}``. Raises LimitError.

    ``ratio_min_events`` (a whole number ≥ 1) sets the success ratios' ``min_events``.
    """
    known = {limit.figure: limit for limit in DEFAULT_LIMITS}
    result = dict(known)
    min_events = RATIO_MIN_EVENTS
    for key, raw in overrides.items():
        if key == RATIO_MIN_EVENTS_KEY:
            min_events = _min_events(raw, f"{where}.{key}")  # a known key
            continue
        if key not in known:
            raise LimitError(
                f"{where}.{shown_key(key)}: unknown limit; "
                f"expected one of {', '.join(known)} or {RATIO_MIN_EVENTS_KEY}"
            )
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw <= 0:
            raise LimitError(f"{where}.{key}: expected a positive number, got {raw!r}")
        if known[key].unit == "%" and known[key].kind == "ratio" and raw >= 100:
            raise LimitError(f"{where}.{key}: expected a percentage below 100, got {raw!r}")
        result[key] = msgspec.structs.replace(known[key], value=float(raw))
    return tuple(
        msgspec.structs.replace(limit, min_events=min_events) if limit.kind == "ratio" else limit
        for limit in result.values()
    )


def _min_events(raw: Any, where: str) -> int:
    # Flags arrive as floats ("--limit ratio_min_events=50" is 50.0); 50.5 attempts means nothing.
    whole = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
    if not whole or raw < 1 or raw != int(raw):
        raise LimitError(f"{where}: expected a whole number of attempts, at least 1, got {raw!r}")
    return int(raw)


def format_value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "%":
        return f"{value:.2f} %" if value >= 99 else f"{value:.1f} %"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "msg/s":
        return f"{value:.0f} msg/s"
    return f"{value:.0f}"


def badness(limit: Limit, value: float) -> float:
    """How far towards the limit: 1.0 is at the limit, 0.8 is where warn starts."""
    if limit.bound == "max":
        return value / limit.value
    if limit.kind == "ratio":
        budget = 100.0 - limit.value
        return (100.0 - value) / budget
    return limit.value / value if value > 0 else math.inf


def level_of(limit: Limit, value: float | None, previous: Level = OK) -> Level:
    """ok / warn / breach, with hysteresis against the previous level."""
    if value is None or math.isnan(value):
        return previous
    b = badness(limit, value)
    rank = _LEVEL_RANK[previous]
    if b >= 1.0:
        return BREACH
    if rank == 2 and b >= 1.0 - HYSTERESIS:
        return BREACH
    if b >= WARN_AT:
        return WARN
    if rank >= 1 and b >= WARN_AT - HYSTERESIS:
        return WARN
    return OK


def ratio_counts(state: State, limit: Limit) -> tuple[int, int]:
    """A success ratio's evidence: (successes, attempts)."""
    if limit.figure == "connect_success":
        return state.opened_total, state.opened_total + state.connect_failed
    return state.delivered, state.delivered + state.delivery_failed


def wilson_interval(successes: int, attempts: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval with continuity correction (Newcombe 1998), as fractions.

    Plain Wilson is too narrow when nearly every attempt succeeds (149 of 150 would put 99.9 % out
    of reach, which an exact interval does not); the continuity correction keeps it honest there.
    """
    if attempts <= 0:
        return 0.0, 1.0
    n, p = attempts, successes / attempts
    denominator = 2.0 * (n + z * z)
    low = 0.0
    if successes > 0:
        root = math.sqrt(max(0.0, z * z - 2.0 - 1.0 / n + 4.0 * p * (n * (1.0 - p) + 1.0)))
        low = max(0.0, (2.0 * n * p + z * z - 1.0 - z * root) / denominator)
    high = 1.0
    if successes < attempts:
        root = math.sqrt(max(0.0, z * z + 2.0 - 1.0 / n + 4.0 * p * (n * (1.0 - p) - 1.0)))
        high = min(1.0, (2.0 * n * p + z * z + 1.0 + z * root) / denominator)
    return low, high


def too_few(limit: Limit, attempts: int) -> bool:
    """A success ratio with fewer attempts than its minimum is not judged at all."""
    return limit.kind == "ratio" and attempts < limit.min_events


def withheld_for_tap(state: State, limit: Limit) -> bool:
    """The clients' connect time is not judged while a tap that measures it is saturated."""
    return limit.kind == "latency" and limit.latency_kind == "connect" and bool(saturated_taps(state))


def too_few_text(attempts: int) -> str:
    return f"n = {attempts:,}, {TOO_FEW}"


def judged_value(state: State, limit: Limit) -> float | None:
    """The value a level is decided on: the live value, but for a success ratio the upper end of its
    95 % interval, and None while it has too few attempts (so it keeps whatever level it had)."""
    if limit.kind != "ratio":
        return None if withheld_for_tap(state, limit) else live_value(state, limit)
    successes, attempts = ratio_counts(state, limit)
    if not attempts or too_few(limit, attempts):
        return None
    return 100.0 * wilson_interval(successes, attempts)[1]


def shown_value(state: State, limit: Limit) -> str:
    """The live figure as text: a success ratio below its minimum says so instead of a number."""
    if limit.kind == "ratio":
        attempts = ratio_counts(state, limit)[1]
        if attempts and too_few(limit, attempts):
            return too_few_text(attempts)
    if withheld_for_tap(state, limit):
        return TAP_SATURATED
    return format_value(live_value(state, limit), limit.unit)


def worst_of(limit: Limit, *values: float | None) -> float | None:
    """The worst of some values for this limit: the lowest for a success rate, else the highest.

    State.breached keeps the value recorded at each breach, not every value in between, so where an
    alert is shown its worst is the worse of that and the figure now (never a worst better than now).
    """
    known = [value for value in values if value is not None and not math.isnan(value)]
    if not known:
        return None
    return min(known) if limit.bound == "min" else max(known)


def alert_headline(limit: Limit, now: str, worst: float | None, raised_at: float | None) -> tuple[str, str]:
    """An alert's line in two halves: the figure as it is now, then its history.

    ("Message delivery success 87.8 % (limit > 99.90 %)", "worst 50.0 % · raised at 50.0 %"): the
    value an alert was raised at goes stale; the headline leads with today's.
    """
    history = [
        f"{what} {format_value(value, limit.unit)}"
        for what, value in (("worst", worst), ("raised at", raised_at))
        if value is not None
    ]
    return f"{limit.label} {now} (limit {limit.describe()})", " · ".join(history)


def live_value(state: State, limit: Limit) -> float | None:
    """The figure as the dashboard shows it now: latency p95 over the last minute, ratios over the session."""
    if limit.kind == "latency":
        dist = state.latency.get(limit.latency_kind)
        if dist is None or not dist.window_t:
            return None
        value = dist.window_percentiles(state.last_mono, (95,))[0]
        return None if math.isnan(value) else value
    if limit.kind == "ratio":
        ratio = state.connect_success() if limit.figure == "connect_success" else state.delivery_success()
        return None if math.isnan(ratio) else ratio * 100.0
    if limit.kind == "rss":
        return state.rss_mib.last
    if limit.kind == "cpu":
        return state.cpu.tail_mean(CPU_AVERAGE_SAMPLES)
    if limit.figure == "connections":
        return float(state.open_count)
    return state.messages_per_s()


def judge(state: State, limits: tuple[Limit, ...], wall: float, mono: float) -> list[Event]:
    """Alert events for every limit whose level changed since the State's active alerts.

    Pure: the previous level is read from the State, so the judge keeps nothing of its own and a
    replay (which replays the recorded alerts instead of judging) ends in the same State.
    """
    out: list[Event] = []
    for limit in limits:
        if limit.kind == "capacity":
            continue  # capacity targets are reported, not alerted on
        if limit.kind == "cpu" and len(state.cpu.values) < CPU_AVERAGE_SAMPLES:
            continue  # fewer samples than the mean needs is start-up, not load
        if withheld_for_tap(state, limit):
            continue  # a saturated tap's connect times are its own delay: neither raised nor cleared
        value = live_value(state, limit)
        # judged_value is the live value for all but ratios: not worked out twice (a latency's is a
        # sort of the last minute's samples, the judge's main cost on a busy log).
        judged = judged_value(state, limit) if limit.kind == "ratio" else value
        if value is None or judged is None:
            continue  # nothing to judge yet, or a success ratio on too few attempts
        active = state.alerts.get(limit.figure)
        previous = active.level if active is not None else OK
        level = level_of(limit, judged, previous)
        if level == previous:
            continue
        if level == OK:
            out.append(AlertCleared(wall=wall, mono=mono, figure=limit.figure, value=value))
        else:
            out.append(
                AlertRaised(
                    wall=wall,
                    mono=mono,
                    figure=limit.figure,
                    level=level,
                    value=value,
                    limit=limit.value,
                    message=_alert_message(state, limit, value),
                )
            )
    return out


def _alert_message(state: State, limit: Limit, value: float) -> str:
    """The figure now (with its attempts, for a ratio), then the worst breach before it if worse."""
    now = format_value(value, limit.unit)
    if limit.kind == "ratio":
        now += f" of {ratio_counts(state, limit)[1]:,}"
    worst = state.breached.get(limit.figure)
    if worst is not None and not (worst < value if limit.bound == "min" else worst > value):
        worst = None
    headline, history = alert_headline(limit, now, worst, None)
    return f"{headline} · {history}" if history else headline
