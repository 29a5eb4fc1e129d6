"""How often a down target is retried: often enough that a target coming back is seen UP within two
intervals (the fault soak's promise, bench/soak.py), and still backing off from the interval."""

from __future__ import annotations

import pytest

from wsmon.sources.base import retry_backoff


@pytest.mark.parametrize("interval", [0.05, 0.5, 1.0, 10.0, 60.0])
def test_a_down_target_is_retried_in_time_to_be_seen_up_within_two_intervals(interval: float) -> None:
    backoff = retry_backoff(interval)
    delays = [backoff.next() for _ in range(10)]
    assert delays[0] == min(interval, 30.0)
    # At most 1.5 intervals between tries leaves half an interval for the pass that finds it up.
    assert max(delays) <= 1.5 * interval
    assert max(delays) <= 30.0
    if interval < 20.0:
        assert delays[-1] > interval  # it still backs off: a down target is not hammered


def test_success_starts_the_schedule_again() -> None:
    backoff = retry_backoff(1.0)
    backoff.next(), backoff.next()
    backoff.reset()
    assert backoff.next() == 1.0
