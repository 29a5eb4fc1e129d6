"""Limits: levels at their thresholds, hysteresis, the judge's alerts and the override errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from helpers import T0, at

from wsmon.core import events as ev
from wsmon.core.limits import (
    BREACH,
    DEFAULT_LIMITS,
    OK,
    WARN,
    Limit,
    LimitError,
    judge,
    level_of,
    with_overrides,
)
from wsmon.core.reducer import Reducer

LIMITS = {limit.figure: limit for limit in DEFAULT_LIMITS}
MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, OK), (79.9, OK), (80.0, WARN), (99.9, WARN), (100.0, BREACH), (250.0, BREACH)],
)
def test_max_limit_levels_at_the_thresholds(value: float, expected: str) -> None:
    assert level_of(LIMITS["connect_ms"], value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    # connect success > 99 %: the failure budget is 1 %, warn from 0.8 % failures.
    [(100.0, OK), (99.3, OK), (99.1, WARN), (99.0, BREACH), (50.0, BREACH)],
)
def test_ratio_limit_levels_apply_to_the_failure_budget(value: float, expected: str) -> None:
    assert level_of(LIMITS["connect_success"], value) == expected


def test_min_limit_that_is_not_a_ratio_breaches_below_its_value() -> None:
    capacity = LIMITS["connections"]
    assert level_of(capacity, 200.0) == OK
    assert level_of(capacity, 110.0) == WARN  # 100/110 = 0.91
    assert level_of(capacity, 100.0) == BREACH
    assert level_of(capacity, 0.0) == BREACH


def test_no_value_keeps_the_previous_level() -> None:
    assert level_of(LIMITS["rss_mib"], None, WARN) == WARN
    assert level_of(LIMITS["rss_mib"], math.nan, BREACH) == BREACH


def test_levels_fall_back_only_once_clear_of_the_threshold() -> None:
    rss = LIMITS["rss_mib"]  # 512 MiB: warn from 409.6, breach from 512
    assert level_of(rss, 0.96 * 512, BREACH) == BREACH
    assert level_of(rss, 0.94 * 512, BREACH) == WARN
    assert level_of(rss, 0.76 * 512, WARN) == WARN
    assert level_of(rss, 0.76 * 512, OK) == OK
    assert level_of(rss, 0.74 * 512, WARN) == OK


def run_judged(reducer: Reducer, samples: list[ev.Event], limits: tuple[Limit, ...]) -> list[ev.Event]:
    """Apply each sample, then judge and apply the alerts, as a live session does."""
    alerts: list[ev.Event] = []
    for sample in samples:
        reducer.apply(sample)
        produced = judge(reducer.state, limits, sample.wall, sample.mono)
        reducer.apply_many(produced)
        alerts += produced
    return alerts


def rss_sample(mono: float, mib: float) -> ev.ProcessSample:
    return ev.ProcessSample(**at(mono), target="server", pid=1, cpu_percent=1.0, rss_bytes=int(mib * MIB))


def test_a_figure_oscillating_around_the_breach_line_does_not_flap() -> None:
    limit = LIMITS["rss_mib"].value
    samples = [rss_sample(i, limit * (1.01 if i % 2 else 0.99)) for i in range(400)]
    alerts = run_judged(Reducer(), samples, DEFAULT_LIMITS)
    assert [(a.figure, a.level) for a in alerts if isinstance(a, ev.AlertRaised)] == [
        ("rss_mib", WARN),
        ("rss_mib", BREACH),
    ]
    assert not [a for a in alerts if isinstance(a, ev.AlertCleared)]


def test_judged_alerts_leave_state_alerts_consistent() -> None:
    reducer = Reducer()
    rising = [rss_sample(i, mib) for i, mib in enumerate([100, 300, 420, 520, 600, 550])]
    falling = [rss_sample(10 + i, mib) for i, mib in enumerate([470, 400, 100])]

    alerts = run_judged(reducer, rising, DEFAULT_LIMITS)
    state = reducer.state
    assert [(a.level, a.value) for a in alerts] == [(WARN, 420.0), (BREACH, 520.0)]  # type: ignore[union-attr]
    active = state.alerts["rss_mib"]
    assert (active.level, active.limit, active.since_mono) == (BREACH, 512.0, 2.0)  # since the first warn
    assert state.alerts_raised == 2
    assert state.breached == {"rss_mib": 520.0}
    assert judge(state, DEFAULT_LIMITS, T0 + 6, 6.0) == []  # nothing changed: nothing to say

    alerts = run_judged(reducer, falling, DEFAULT_LIMITS)
    assert [type(a).__name__ for a in alerts] == ["AlertRaised", "AlertCleared"]
    assert "rss_mib" not in state.alerts
    assert state.breached == {"rss_mib": 520.0}  # the breach stays on the record


def test_cpu_is_judged_on_a_five_sample_mean() -> None:
    def cpu(mono: float, percent: float) -> ev.ProcessSample:
        return ev.ProcessSample(**at(mono), target="server", pid=1, cpu_percent=percent, rss_bytes=MIB)

    reducer = Reducer()
    spike = [cpu(0, 95.0)] + [cpu(i, 5.0) for i in range(1, 10)]  # a busy start-up second
    assert run_judged(reducer, spike, DEFAULT_LIMITS) == []
    sustained = [cpu(10 + i, 70.0) for i in range(5)]
    alerts = run_judged(reducer, sustained, DEFAULT_LIMITS)
    assert [(a.figure, a.level) for a in alerts] == [("cpu_percent", WARN), ("cpu_percent", BREACH)]  # type: ignore[union-attr]


def test_latency_alerts_follow_the_last_minute_and_clear_when_it_passes() -> None:
    reducer = Reducer()
    slow = [ev.LatencySample(**at(i * 0.1), kind="connect", ms=300.0) for i in range(20)]
    alerts = run_judged(reducer, slow, DEFAULT_LIMITS)
    assert [(a.figure, a.level) for a in alerts] == [("connect_ms", BREACH)]  # type: ignore[union-attr]
    fast = [ev.LatencySample(**at(70 + i * 0.1), kind="connect", ms=5.0) for i in range(20)]
    alerts = run_judged(reducer, fast, DEFAULT_LIMITS)
    assert [type(a).__name__ for a in alerts] == ["AlertCleared"]
    assert reducer.state.alerts == {}


def test_capacity_targets_never_alert() -> None:
    reducer = Reducer()
    opened = [ev.ConnectionOpened(**at(i), conn=f"c{i}") for i in range(3)]  # far below 100
    assert run_judged(reducer, opened, DEFAULT_LIMITS) == []


def test_overrides_replace_only_the_values_given() -> None:
    limits = {limit.figure: limit for limit in with_overrides({"rss_mib": 256, "connect_success": 95.5})}
    assert limits["rss_mib"].value == 256.0
    assert limits["connect_success"].value == 95.5
    assert limits["cpu_percent"] == LIMITS["cpu_percent"]
    assert len(limits) == len(DEFAULT_LIMITS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rss": 256}, "limits.rss: unknown limit; expected one of connect_ms, delivery_ms"),
        ({"rss_mib": "256"}, "limits.rss_mib: expected a positive number, got '256'"),
        ({"rss_mib": True}, "limits.rss_mib: expected a positive number, got True"),
        ({"rss_mib": -1}, "limits.rss_mib: expected a positive number, got -1"),
        ({"rss_mib": math.inf}, "limits.rss_mib: expected a positive number, got inf"),
        ({"delivery_success": 100}, "limits.delivery_success: expected a percentage below 100, got 100"),
    ],
)
def test_override_errors_name_the_key_and_what_was_expected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(LimitError) as raised:
        with_overrides(overrides)
    assert str(raised.value).startswith(message)


def test_override_errors_say_where_the_value_came_from() -> None:
    with pytest.raises(LimitError, match=r"^wsmon\.toml \[limits\]\.cpu_percent: "):
        with_overrides({"cpu_percent": 0}, where="wsmon.toml [limits]")
