"""Hypothesis profiles for the property and fuzz tests.

``ci`` (the default) runs a few hundred examples a property, enough to catch the usual breakage in
well under a minute for the whole fuzz set; ``long`` runs thousands, for a night or before a release:

    python -m pytest tests/test_fuzz_*.py --hypothesis-profile=long

No deadline in either: the test machines are shared and loaded, so a slow example is not a failure
(a hang still is: pytest-timeout ends it). ``HYPOTHESIS_PROFILE`` picks the default profile too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_SHARED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

settings.register_profile("ci", max_examples=200, **_SHARED)
settings.register_profile("long", max_examples=5_000, **_SHARED)
# The pytest option --hypothesis-profile, read after this file is imported, overrides this default.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Tests that measure time (CPU per interval, handshake or UP-within-two-intervals deadlines, RSS growth,
# kill-and-restart timing) are "serial": the README's command runs every other test on two workers
# (pytest-xdist), then these alone, so a neighbour's load cannot move their figures. One list, here,
# rather than a mark in each file, so a new timing test is added where the rule is written.
SERIAL_FILES = frozenset(
    {
        "test_cli_attach.py",
        "test_demo_loads.py",
        "test_demo_ratio_alerts.py",
        "test_fleet.py",
        "test_memory.py",
        "test_orphans.py",
        "test_probe_own_latency.py",
        "test_probe_timing.py",
        "test_process_cpu.py",
        "test_process_source.py",
        "test_process_stopped.py",
        "test_retry_backoff.py",
        "test_server_source.py",
        "test_session_shutdown.py",
        "test_soak.py",
        "test_tap_memory.py",
        "test_tap_saturation.py",
        "test_tap_witnesses.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).name in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def india(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time five and a half hours from UTC, so local and UTC differ in every digit that matters."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
