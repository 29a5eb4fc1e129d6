"""Limits, their verdicts, and the judge that turns crossings into alert events.

Each figure is ok, warn (at 80 % of its limit) or breach. For success ratios the 80 % applies to
the failure budget: with "connect success > 99 %" the budget is 1 % failures, so warn starts at
0.8 % failures (99.2 % success). Levels fall back only once the figure is 5 % of the limit clear
of the threshold (hysteresis), so a figure hovering at a threshold does not flap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from wsmon.core.events import AlertCleared, AlertRaised, Event
from wsmon.core.state import State

OK = "ok"
WARN = "warn"
BREACH = "breach"
WARN_AT = 0.8
HYSTERESIS = 0.05
CPU_AVERAGE_SAMPLES = 5  # CPU is judged on a 5-sample mean: a busy second at start-up is not "load"
_LEVEL_RANK = {OK: 0, WARN: 1, BREACH: 2}


class Limit(msgspec.Struct, frozen=True):
    figure: str
    label: str
    unit: str
    bound: Literal["max", "min"]  # max: must stay below; min: must stay above
    value: float
    kind: Literal["latency", "ratio", "rss", "cpu", "capacity"]
    latency_kind: str = ""

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
    """Defaults with some values replaced, e.g. ``{"rss_mib": 256}``. Raises LimitError."""
    known = {limit.figure: limit for limit in DEFAULT_LIMITS}
    result = dict(known)
    for key, raw in overrides.items():
        if key not in known:
            raise LimitError(f"{where}.{key}: unknown limit; expected one of {', '.join(known)}")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw <= 0:
            raise LimitError(f"{where}.{key}: expected a positive number, got {raw!r}")
        if known[key].unit == "%" and known[key].kind == "ratio" and raw >= 100:
            raise LimitError(f"{where}.{key}: expected a percentage below 100, got {raw!r}")
        result[key] = msgspec.structs.replace(known[key], value=float(raw))
    return tuple(result.values())


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


def level_of(limit: Limit, value: float | None, previous: str = OK) -> str:
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
        value = live_value(state, limit)
        if value is None:
            continue
        active = state.alerts.get(limit.figure)
        previous = active.level if active is not None else OK
        level = level_of(limit, value, previous)
        if level == previous:
            continue
        if level == OK:
            out.append(AlertCleared(wall=wall, mono=mono, figure=limit.figure, value=value))
        else:
            message = f"{limit.label} {format_value(value, limit.unit)} (limit {limit.describe()})"
            out.append(
                AlertRaised(
                    wall=wall,
                    mono=mono,
                    figure=limit.figure,
                    level=level,
                    value=value,  # type: ignore[arg-type]
                    limit=limit.value,
                    message=message,
                )
            )
    return out
