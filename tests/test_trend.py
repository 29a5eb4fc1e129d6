"""Time to limit: Theil-Sen slopes on synthetic series, and the three resources through the real reducer."""

from __future__ import annotations

import math
import random

import pytest
from helpers import at

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.core.state import State, decode_state, encode_state
from wsmon.core.trend import (
    MAX_POINTS,
    postgres_connections_time_to_limit,
    redis_memory_time_to_limit,
    rss_time_to_limit,
    theil_sen_slope,
    time_to_limit,
)

MIB = 1024 * 1024


def linear_with_outliers(
    slope_per_s: float, n: int, *, outlier_share: float, seed: int = 7
) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    times = [i * 1.0 for i in range(n)]
    values = [100.0 + slope_per_s * t + rng.gauss(0, 0.3) for t in times]
    for i in rng.sample(range(n), int(n * outlier_share)):
        values[i] += rng.choice([-1, 1]) * rng.uniform(50, 400)  # GC pauses, a slow poll, a burst
    return times, values


def least_squares_slope(times: list[float], values: list[float]) -> float:
    mt, mv = sum(times) / len(times), sum(values) / len(values)
    return sum((t - mt) * (v - mv) for t, v in zip(times, values, strict=True)) / sum(
        (t - mt) ** 2 for t in times
    )


@pytest.mark.parametrize("seed", range(10))
def test_theil_sen_finds_a_linear_slope_despite_outliers(seed: int) -> None:
    # Five minutes of one-a-second samples, a fifth of them wild (the worst of 50 seeds was 1.8 % off).
    times, values = linear_with_outliers(0.05, 300, outlier_share=0.2, seed=seed)
    slope = theil_sen_slope(times, values)
    assert slope == pytest.approx(0.05, rel=0.02)
    # The reason for Theil-Sen: a least-squares line swings with the same outliers.
    assert abs(least_squares_slope(times, values) - 0.05) > abs(slope - 0.05)


def test_theil_sen_subsamples_long_series_and_stays_accurate() -> None:
    times, values = linear_with_outliers(-0.02, 1200, outlier_share=0.15)
    assert len(times) > MAX_POINTS
    assert theil_sen_slope(times, values) == pytest.approx(-0.02, rel=0.02)


def test_theil_sen_needs_two_distinct_times() -> None:
    assert math.isnan(theil_sen_slope([], []))
    assert math.isnan(theil_sen_slope([5.0, 5.0], [1.0, 9.0]))
    with pytest.raises(ValueError, match="differ in length"):
        theil_sen_slope([1.0, 2.0], [1.0])


def process_session(rss_mib: list[tuple[float, float]]) -> State:
    reducer = Reducer()
    for mono, mib in rss_mib:
        reducer.apply(
            ev.ProcessSample(**at(mono), target="server", pid=42, cpu_percent=5.0, rss_bytes=int(mib * MIB))
        )
    return reducer.state


def test_rss_growing_projects_when_it_reaches_the_limit() -> None:
    # 3.1 MiB a minute for the last five minutes, ending at 410 MiB: 102 MiB to go is about 33 minutes.
    samples = [(float(t), 410.0 - 3.1 * (300 - t) / 60) for t in range(0, 301, 2)]
    samples[40] = (samples[40][0], 480.0)  # one spike does not move the trend
    result = rss_time_to_limit(process_session(samples), 512.0)
    assert result.enough_data
    assert result.slope_per_min == pytest.approx(3.1, rel=0.02)
    assert result.eta_s == pytest.approx(102 / 3.1 * 60, rel=0.02)
    assert result.text == "RSS 410 MiB, +3.1 MiB/min, reaches 512 MiB in about 33 min"


def test_flat_rss_is_steady_with_no_eta() -> None:
    rng = random.Random(3)
    samples = [(float(t), 120.0 + rng.uniform(-0.5, 0.5)) for t in range(0, 301, 2)]
    result = rss_time_to_limit(process_session(samples), 512.0)
    assert result.enough_data
    assert result.eta_s is None
    assert result.text == "RSS 120 MiB, steady"


def test_falling_rss_has_no_eta() -> None:
    samples = [(float(t), 300.0 - t / 10) for t in range(0, 301, 2)]
    result = rss_time_to_limit(process_session(samples), 512.0)
    assert result.slope_per_min == pytest.approx(-6.0, rel=0.02)
    assert result.eta_s is None
    assert result.text == "RSS 270 MiB, −6.0 MiB/min"


def test_only_the_window_counts() -> None:
    # Ten minutes of fast growth, then five flat minutes: what matters now is the flat part.
    samples = [(float(t), 100.0 + t / 2) for t in range(0, 600, 2)]
    samples += [(float(t), 400.0) for t in range(600, 901, 2)]
    result = rss_time_to_limit(process_session(samples), 512.0, window_s=300)
    assert result.eta_s is None
    assert result.text.endswith("steady")


def test_over_the_limit_already_says_so() -> None:
    samples = [(float(t), 500.0 + t / 10) for t in range(0, 121, 2)]
    result = rss_time_to_limit(process_session(samples), 512.0)
    assert result.eta_s == 0.0
    assert "at or over its limit of 512 MiB" in result.text


@pytest.mark.parametrize(
    ("samples", "why"),
    [
        ([(float(t), 100.0 + t) for t in range(0, 9)], "fewer than 10 points"),
        ([(t * 0.5, 100.0 + t) for t in range(0, 100)], "under a minute"),
    ],
)
def test_not_enough_data_gives_no_projection(samples: list[tuple[float, float]], why: str) -> None:
    result = rss_time_to_limit(process_session(samples), 512.0)
    assert not result.enough_data, why
    assert result.eta_s is None and result.slope_per_min is None
    assert result.text.endswith("not enough data for a trend")


def test_no_samples_at_all() -> None:
    result = rss_time_to_limit(State(), 512.0)
    assert result.current is None
    assert result.text == "RSS: not enough data for a trend"


def test_postgres_connections_against_max_connections() -> None:
    reducer = Reducer()
    for t in range(0, 181, 5):
        connections = 40 + t // 6  # +10 connections a minute
        reducer.apply(
            ev.PostgresSample(**at(float(t)), target="pg", connections=connections, max_connections=100)
        )
    # A sample without a count is not a point.
    reducer.apply(ev.PostgresSample(**at(181.0), target="pg", select1_ms=1.0, max_connections=100))
    state = reducer.state
    assert len(state.pg_connections.values) == 37
    result = postgres_connections_time_to_limit(state)
    assert result.slope_per_min == pytest.approx(10.0, rel=0.02)
    assert result.limit == 100
    assert result.text == "PostgreSQL connections 70, +10.0/min, reaches 100 in about 3 min"


def test_redis_memory_against_maxmemory_and_none_without_one() -> None:
    reducer = Reducer()
    for t in range(0, 121, 4):
        used = int((200 + t / 2) * MIB)  # +30 MiB a minute
        reducer.apply(ev.RedisSample(**at(float(t)), target="redis", used_memory=used, maxmemory=512 * MIB))
    result = redis_memory_time_to_limit(reducer.state)
    assert result is not None
    assert result.slope_per_min == pytest.approx(30.0, rel=0.02)
    assert result.text == "Redis memory 260 MiB, +30.0 MiB/min, reaches 512 MiB in about 8 min"

    reducer.apply(ev.RedisSample(**at(124.0), target="redis", used_memory=300 * MIB, maxmemory=0))
    assert redis_memory_time_to_limit(reducer.state) is None  # 0: Redis has no memory limit


def test_the_new_series_survive_a_keyframe() -> None:
    reducer = Reducer()
    reducer.apply(ev.PostgresSample(**at(1.0), target="pg", connections=12, max_connections=100))
    reducer.apply(ev.RedisSample(**at(1.0), target="redis", used_memory=64 * MIB, maxmemory=0))
    state = decode_state(encode_state(reducer.state))
    assert state.pg_connections.values == [12.0]
    assert state.redis_used_mib.values == [64.0]


def test_time_to_limit_on_plain_sequences() -> None:
    times = [float(t) for t in range(0, 120, 6)]
    result = time_to_limit("x", "Queue", "", times, [10 + t / 6 for t in times], None)
    assert result.eta_s is None
    assert result.text == "Queue 29, +10.0/min, no limit"
