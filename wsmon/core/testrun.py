"""The tests `wsmon run` watched, as the report shows them: a row per test, and the run's verdict with
the reason it failed, most telling first (docs/report.md, "Tests"). Pure."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from wsmon.core.state import State
from wsmon.core.testwindows import TestWindow, failed_test_windows
from wsmon.core.wallclock import iso_utc

FAIL = "fail"  # the tests failed, errored, or none ran: the verdict names that before any limit
FAILED_OUTCOMES = ("failed", "error")


class TestRow(msgspec.Struct, kw_only=True):
    name: str
    outcome: str  # passed | failed | error | skipped; "" when it never ended
    start: str | None
    end: str | None
    duration_s: float | None
    message: str


class Tests(msgspec.Struct, kw_only=True):
    """The tests `wsmon run` watched, as recorded (docs/report.md)."""

    verdict: str  # pass | fail
    reason: str  # why they fail ("no tests ran: …", "1 failed: …"); "" when they pass
    command: str | None
    exit_code: int | None  # None: not recorded, or the command never started
    counts: dict[str, int]  # tests by outcome
    tests: list[TestRow]
    failed: list[TestWindow]  # each failed test's window: what the server did while it ran


def tests_of(state: State, windows: Sequence[TestWindow] | None) -> Tests | None:
    """None when the session watched no tests. ``windows``: the failed tests' windows filled from the
    events (testwindows.summarise_windows); without them the failed tests' windows are empty."""
    run = state.test_run
    if run is None and not state.tests:
        return None
    rows = [
        TestRow(
            name=t.name,
            outcome=t.outcome,
            start=iso_utc(t.start_wall),
            end=iso_utc(t.end_wall),
            duration_s=None
            if t.start_mono is None or t.end_mono is None
            else round(t.end_mono - t.start_mono, 6),
            message=t.message,
        )
        for t in state.tests.values()
    ]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome or "running"] = counts.get(row.outcome or "running", 0) + 1
    reason = _failure_reason(state, rows, counts)
    return Tests(
        verdict=FAIL if reason else "pass",
        reason=reason,
        command=run.command if run is not None else None,
        exit_code=run.exit_code if run is not None else None,
        counts=counts,
        tests=rows,
        failed=list(windows) if windows is not None else failed_test_windows(state),
    )


def _failure_reason(state: State, rows: list[TestRow], counts: dict[str, int]) -> str:
    """Why the tests count as failed, most telling first; "" when they passed."""
    run = state.test_run
    exited = "" if run is None or not run.exit_code else f"; the test command exited {run.exit_code}"
    if run is not None and run.exit_code is None:
        return "the tests did not start" + (f" ({run.note})" if run.note else "")
    if not rows and run is not None and run.ran == 0:
        return "no tests ran" + (f" ({run.note})" if run.note else "") + exited
    failed = [row.name for row in rows if row.outcome in FAILED_OUTCOMES]
    if failed:
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        named = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        return f"tests failed ({summary}): {named}{exited}"
    if exited:
        return exited.removeprefix("; ")
    return ""
