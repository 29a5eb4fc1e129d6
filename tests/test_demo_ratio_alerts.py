"""The demo (its real server and load generator, over real sockets): success-ratio alerts wait for
evidence. Before, the delivery-success alert fired a quarter of a second after the very first
failure, on 11 of 12 deliveries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from wsmon.core import events as ev
from wsmon.core.limits import BREACH, DEFAULT_LIMITS, ratio_counts, wilson_interval
from wsmon.core.reducer import Reducer
from wsmon.demo.runner import build_demo_session
from wsmon.store.reader import RecordingReader

pytestmark = pytest.mark.slow

LIMITS = {limit.figure: limit for limit in DEFAULT_LIMITS}


def test_demo_ratio_alerts_are_raised_only_on_enough_attempts(tmp_path: Path) -> None:
    path = tmp_path / "demo.wsmon"
    session = build_demo_session(clients=50, limits=DEFAULT_LIMITS, record=path, duration=10.0)
    asyncio.run(session.run())

    reducer = Reducer()
    first_failure: float | None = None
    judged: list[tuple[ev.AlertRaised, int, int, int]] = []  # alert, successes, attempts, failures
    for event in RecordingReader(path).iter_events():
        if isinstance(event, ev.AlertRaised) and event.figure in ("connect_success", "delivery_success"):
            successes, attempts = ratio_counts(reducer.state, LIMITS[event.figure])
            judged.append((event, successes, attempts, attempts - successes))
        if isinstance(event, ev.DeliveryFailed) and first_failure is None:
            first_failure = event.mono
        reducer.apply(event)
    state = reducer.state
    assert first_failure is not None and state.delivery_failed > 0, "the demo injected no delivery failure"
    start = state.first_mono or 0.0

    # The demo's failures are real (a device registry that forgets closed devices late): still caught.
    assert any(alert.figure == "delivery_success" and alert.level == BREACH for alert, *_ in judged)
    for alert, successes, attempts, failures in judged:
        where = f"{alert.figure} {alert.level} at {alert.mono - start:.2f} s on {successes}/{attempts}"
        assert alert.mono - first_failure >= 1.0, f"raised within a second of the first failure: {where}"
        assert attempts >= LIMITS[alert.figure].min_events, f"raised on too few attempts: {where}"
        assert failures > 1, f"raised on the first failure: {where}"
        if alert.level == BREACH:
            # Breach only when even the upper end of the 95 % interval is below the limit.
            assert 100.0 * wilson_interval(successes, attempts)[1] < alert.limit, where
        assert alert.message.startswith(f"{LIMITS[alert.figure].label} "), alert.message
