"""What every source shares: the clock events are stamped with, the emit callback, backoff."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wsmon.core.events import Event, TargetDown, TargetUp

Emit = Callable[[Event], None]


def now() -> tuple[float, float]:
    """(UTC wall seconds, monotonic seconds): every event carries both."""
    return time.time(), time.monotonic()


class Backoff:
    """Capped exponential backoff: interval, 2×, 4× … at most ``cap`` seconds; reset on success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.first


@dataclass(frozen=True)
class CheckResult:
    """One pass against a target, for `wsmon check`: reachable or not, how fast, and what to fix."""

    ok: bool
    latency_ms: float | None = None
    error: str = ""
    hint: str = ""
    kind: str = ""  # the failure kind, as in TargetDown: refused, timeout, auth, ...


RETRY_CAP_INTERVALS = 1.5  # the longest wait between tries of a down target, in intervals


def retry_backoff(interval: float) -> Backoff:
    """The retry schedule for a down target: the interval, then 1.5 times it, never more than 30 s.

    Why 1.5 and not more: a target that comes back must be seen UP within two intervals — at most 1.5
    intervals until the next try, and the half interval left for the pass (connect, authenticate, a
    few commands) that finds it up. With 2 intervals between tries, a restart just after a failed try
    was seen a pass's time late (the fault soak, bench/soak.py, measured 1,002 ms at a 500 ms interval).
    """
    return Backoff(min(interval, 30.0), min(RETRY_CAP_INTERVALS * interval, 30.0))


async def poll_forever(interval: float, one_pass: Callable[[], Awaitable[bool]]) -> None:
    """Run ``one_pass`` every ``interval`` seconds, start to start; after a failed pass (False), wait
    by ``retry_backoff`` instead, so a target that is down is retried but not hammered."""
    backoff = retry_backoff(interval)
    task = asyncio.current_task()
    while True:
        started = time.monotonic()
        passed = await one_pass()
        if task is not None and task.cancelling():
            # A client library below swallowed our cancellation (redis-py can, when it lands mid-command):
            # honour it here, or the session's shutdown waits for this loop for ever.
            raise asyncio.CancelledError
        if passed:
            backoff.reset()
            delay = interval - (time.monotonic() - started)
        else:
            delay = backoff.next()
        await asyncio.sleep(max(delay, 0.0))


class TargetStatus:
    """A target's up/down, emitted only on transitions (and again when the kind of failure changes:
    refused after dropped is news, a second refused is not)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.up: bool | None = None
        self.down_kind = ""

    def mark_up(self, emit: Emit, detail: str = "") -> None:
        if self.up is not True:
            self.up = True
            wall, mono = now()
            emit(TargetUp(wall=wall, mono=mono, target=self.target, detail=detail))

    def mark_down(self, emit: Emit, error: str, kind: str) -> None:
        if self.up is False and self.down_kind == kind:
            return
        self.up = False
        self.down_kind = kind
        wall, mono = now()
        emit(TargetDown(wall=wall, mono=mono, target=self.target, error=error, kind=kind))
