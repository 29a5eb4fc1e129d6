"""The source contract, and what every source shares: the clock events are stamped with, the emit
callback, backoff, and a target's up/down.

``Source`` is what the session runs (docs/design.md, "The source contract"); ``PolledSource`` is a
source that reads its target every interval (Redis, PostgreSQL, HTTP) and only implements one pass.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from wsmon.core.events import Event, TargetAdded, TargetDown, TargetUp

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


def raise_if_cancelled() -> None:
    """redis-py can swallow a cancellation that lands as a command starts (the command then returns
    normally), which would leave a reading loop running for ever after wsmon asked it to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


STOPPED = "stopped"  # the TargetDown kind of a process that is alive but frozen (SIGSTOP)


class Retell(enum.Enum):
    """When a target already down is announced DOWN again."""

    KIND = "kind"  # the kind of failure changed: refused after dropped is news, a second refused is not
    ERROR = "error"  # the error changed: a 401, then a failed first exchange (both "rejected")
    FROM_STOPPED = "from stopped"  # only a stopped target that then fails otherwise (it exited while stopped)


class TargetStatus:
    """A target's up/down, emitted only on transitions, and again for a down target when ``retell``
    says its failure is news."""

    def __init__(self, target: str, retell: Retell = Retell.KIND) -> None:
        self.target = target
        self.retell = retell
        self.up: bool | None = None
        self.down_kind = ""
        self.down_error = ""

    @property
    def stopped(self) -> bool:
        """Down because the process is stopped (SIGSTOP, Ctrl-Z, a debugger), not gone."""
        return self.up is False and self.down_kind == STOPPED

    def mark_up(self, emit: Emit, detail: str = "") -> None:
        if self.up is not True:
            self.up = True
            wall, mono = now()
            emit(TargetUp(wall=wall, mono=mono, target=self.target, detail=detail))

    def mark_down(self, emit: Emit, error: str, kind: str) -> None:
        if self.up is False and not self._is_news(error, kind):
            return
        self.up = False
        self.down_kind = kind
        self.down_error = error
        wall, mono = now()
        emit(TargetDown(wall=wall, mono=mono, target=self.target, error=error, kind=kind))

    def _is_news(self, error: str, kind: str) -> bool:
        if self.retell is Retell.KIND:
            return kind != self.down_kind
        if self.retell is Retell.ERROR:
            return error != self.down_error
        return self.down_kind == STOPPED and kind != STOPPED


class StopOrder(enum.IntEnum):
    """The stage a source is stopped in at the end of a session, lowest first."""

    CLIENTS = 0  # clients wsmon drives (a load generator): they leave first, and close normally
    WATCHERS = 1  # probes, samplers, taps, feeds, logs: they end before what they watch
    OWNED = 2  # processes wsmon started (a server): stopped last, so their exit and last lines are recorded


class Source(abc.ABC):
    """What the session runs: one target watched (or, for test markers and the load generator, none).

    A source only emits events; it never raises out of ``run`` except when cancelled (an error that
    escapes anyway is logged by the session, which restarts the source). Its target's up/down goes
    through ``self.status``, so every source announces transitions the same way.
    """

    stop_order: ClassVar[StopOrder] = StopOrder.WATCHERS
    # True when stop() makes run() return by itself, after recording how the target ended; the session
    # then gives run() a moment before cancelling it. False: stop() has nothing to do and run() is cancelled.
    stop_ends_run: ClassVar[bool] = False
    retell: ClassVar[Retell] = Retell.KIND

    def __init__(self, target: str = "") -> None:
        self.target = target  # the name its events carry; "" for a source that watches no target
        self.status = TargetStatus(target, self.retell)

    @abc.abstractmethod
    async def run(self, emit: Emit) -> None:
        """Watch the target for the whole session, emitting events; ends when cancelled (or stopped)."""

    @abc.abstractmethod
    async def check(self) -> CheckResult:
        """One look at the target for `wsmon check`: reachable or not, how fast, and what to fix."""

    async def stop(self) -> None:
        """Ask ``run`` to end gracefully (see ``stop_ends_run``); nothing to ask by default."""
        return None


@dataclass(frozen=True)
class Up:
    """A pass that reached its target; ``then``: what it read, emitted after the UP."""

    detail: str = ""
    then: Sequence[Event] = ()


@dataclass(frozen=True)
class Down:
    """A pass that failed; ``then``: what it still has to say, emitted after the DOWN."""

    error: str
    kind: str
    then: Sequence[Event] = ()


class PolledSource(Source):
    """A source that reads its target every ``interval`` (Redis, PostgreSQL, HTTP). It implements one
    pass; this class runs the passes start to start, retries a failed one by ``retry_backoff``, and
    turns each pass's verdict into UP and DOWN through ``self.status``."""

    kind: ClassVar[str]  # the TargetAdded kind: "redis", "postgres", "http"

    def __init__(self, target: str, interval: float) -> None:
        super().__init__(target)
        self.interval = interval

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """Where the target is, as shown and recorded: secrets masked."""

    @abc.abstractmethod
    async def poll_once(self, emit: Emit) -> Up | Down:
        """One pass: read the target, emit what comes before the verdict, return the verdict. Never
        raises but for a cancellation: a failure is a ``Down``."""

    async def close(self) -> None:
        """Release what the passes keep open (a connection); called when ``run`` ends."""
        return None

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(TargetAdded(wall=wall, mono=mono, target=self.target, kind=self.kind, address=self.address))
        try:
            await poll_forever(self.interval, lambda: self._pass(emit))
        finally:
            await self.close()

    async def _pass(self, emit: Emit) -> bool:
        verdict = await self.poll_once(emit)
        if isinstance(verdict, Up):
            self.status.mark_up(emit, verdict.detail)
        else:
            self.status.mark_down(emit, verdict.error, verdict.kind)
        for event in verdict.then:
            emit(event)
        return isinstance(verdict, Up)
