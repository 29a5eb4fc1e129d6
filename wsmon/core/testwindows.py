"""What happened inside each failed test's time window: the link between "test X timed out" and "the
server dropped 12 connections with 1006 at that moment".

Pure: it folds an iterable of events (a recording, read once) against the windows of the failed tests
in a State.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from wsmon.core import events as ev
from wsmon.core.state import State

MAX_LINES_KEPT = 10
FAILED = ("failed", "error")


class TestWindow(msgspec.Struct):
    __test__ = False

    test: str
    outcome: str
    message: str
    start_wall: float | None
    end_wall: float | None
    duration_s: float | None
    close_codes: dict[int, int] = {}
    delivery_failures: int = 0
    failure_reasons: dict[str, int] = {}
    outages: list[str] = []  # "redis: connection refused" — down at some moment of the window
    log_errors: int = 0
    log_error_lines: list[str] = []
    alerts: list[str] = []
    approximate: bool = False  # the window is derived from durations, not the runner's start and end


class _Span(msgspec.Struct):
    window: TestWindow
    start: float
    end: float
    entered: bool = False


def failed_test_windows(state: State) -> list[TestWindow]:
    windows = []
    for record in state.tests.values():
        if record.outcome not in FAILED or record.start_mono is None or record.end_mono is None:
            continue
        windows.append(
            TestWindow(
                test=record.name,
                outcome=record.outcome,
                message=record.message,
                start_wall=record.start_wall,
                end_wall=record.end_wall,
                duration_s=record.end_mono - record.start_mono,
                approximate=record.approximate,
            )
        )
    return windows


def summarise_windows(state: State, events: Iterable[ev.Event], margin_s: float = 0.1) -> list[TestWindow]:
    """Fill each failed test's window with the events whose time falls inside it.

    The window ends ``margin_s`` late: what a test did reaches wsmon a moment later (a server's log
    line is read after it is written), but not much later, or the next test's doings leak in.
    """
    spans: list[_Span] = []
    for window in failed_test_windows(state):
        record = state.tests[window.test]
        assert record.start_mono is not None and record.end_mono is not None
        spans.append(_Span(window, record.start_mono, record.end_mono + margin_s))
    if not spans:
        return []
    down: dict[str, str] = {}  # targets down at this point of the stream
    for event in events:
        kind = type(event)
        t = event.mono
        for span in spans:
            if not span.entered and t >= span.start:
                # A target already down when the test started was down during it, event or not.
                span.entered = True
                for target, error in down.items():
                    _outage(span.window, f"{target}: {error}")
        if kind is ev.TargetDown:
            down[event.target] = event.error  # type: ignore[attr-defined]
        elif kind is ev.TargetUp:
            down.pop(event.target, None)  # type: ignore[attr-defined]
        if kind not in _INTERESTING:
            continue
        for span in spans:
            if span.start <= t <= span.end:
                _add(span.window, event)
    return [span.window for span in spans]


def _outage(window: TestWindow, line: str) -> None:
    if line not in window.outages:
        window.outages.append(line)


_INTERESTING = frozenset(
    {ev.ConnectionClosed, ev.DeliveryFailed, ev.TargetDown, ev.LogLine, ev.AlertRaised, ev.ServerExit}
)


def _add(window: TestWindow, event: ev.Event) -> None:
    if isinstance(event, ev.TargetDown):
        _outage(window, f"{event.target}: {event.error}")
    elif isinstance(event, ev.ConnectionClosed):
        if not event.own:
            window.close_codes[event.code] = window.close_codes.get(event.code, 0) + 1
    elif isinstance(event, ev.DeliveryFailed):
        window.delivery_failures += 1
        reason = event.reason or "unknown"
        window.failure_reasons[reason] = window.failure_reasons.get(reason, 0) + 1
    elif isinstance(event, ev.LogLine):
        if event.level in ("error", "fatal"):
            window.log_errors += 1
            if len(window.log_error_lines) < MAX_LINES_KEPT:
                window.log_error_lines.append(event.text[:200])
    elif isinstance(event, ev.AlertRaised):
        window.alerts.append(event.message or f"{event.figure} {event.level}")
