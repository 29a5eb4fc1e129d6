"""Whether a tap worker keeps up: its own event loop's lag, against the handshakes it measures.

Everything a worker measures passes through its event loop: a client's bytes wait there to be
accepted, forwarded and read, and so does the server's answer. When the loop runs late, the connect
times the tap reports (and the ones its clients see) grow by the tap's own delay, not the server's. So
the worker times a periodic timer (``LoopLag``: how late each firing is) and judges, from the last
second of those lags, whether its delay is a material share of what it measures (``is_saturated``):

- a lag p95 of at most ``LAG_FLOOR_MS`` is never saturation: scheduling jitter on a shared machine
  reaches a few milliseconds, and a delay that small moves no limit worth setting;
- over ``LAG_LIMIT_MS`` it always is (the lag alone would move a 100 ms limit by 10 %);
- between the two it is when the lag p95 is over ``SHARE`` of the median handshake the tap measured in
  the same second (an 8 ms lag is material to 5 ms handshakes, not to 200 ms ones).

``SaturationWatch`` keeps the window and says when the verdict changes: saturated at once, recovered only
after ``CLEAR_S`` under the threshold, so a load hovering at the edge does not flap (and figures from
its calm moments are not trusted too early). The worker sends each change as ``events.TapSaturation``.

A lone stall (a GC pass, the CPU taken by another process for 80 ms) moves no p95 of the second, yet
every handshake it spans reads 80 ms long. So the watch also keeps the stalls it saw — a firing over
``LAG_FLOOR_MS`` late means the loop was not known free since the firing before — and ``stalled()``
says whether a handshake's span crossed one: the tap holds each handshake's sample until the timer has
run after it, and marks it (``LatencySample.stalled``) so that it is not judged as the server's.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time

LAG_TIMER_S = 0.02  # how often the loop's lateness is sampled
WINDOW_S = 1.0  # the lags and handshakes a verdict looks at
LAG_FLOOR_MS = 5.0
LAG_LIMIT_MS = 10.0
SHARE = 0.2
CLEAR_S = 3.0
STALLS_KEPT_S = 10.0  # over the tap's longest handshake (its upstream connect times out at 5 s)


def is_saturated(lag_p95_ms: float, handshake_median_ms: float | None) -> bool:
    """The rule: is a loop lag p95 of ``lag_p95_ms`` a material share of handshakes of this median?"""
    if not lag_p95_ms > LAG_FLOOR_MS:  # also NaN: no lag measured
        return False
    if lag_p95_ms > LAG_LIMIT_MS:
        return True
    return handshake_median_ms is not None and lag_p95_ms > SHARE * handshake_median_ms


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN of nothing."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))]


class SaturationWatch:
    """The last second's loop lags and handshakes, and the saturated / recovered verdict on them."""

    def __init__(self) -> None:
        self._lags: collections.deque[tuple[float, float]] = collections.deque()
        self._stalls: collections.deque[tuple[float, float]] = collections.deque()  # (from, to)
        self.seen_until = -math.inf  # the last firing: the loop's state is known up to here
        self._handshakes: collections.deque[tuple[float, float]] = collections.deque()
        self.saturated = False
        self._calm_since: float | None = None  # under the threshold since, while saturated

    def lag(self, mono: float, ms: float, previous: float | None = None) -> None:
        """A firing at ``mono``, ``ms`` late; the loop was last seen free at ``previous``."""
        self._lags.append((mono, ms))
        if ms > LAG_FLOOR_MS:
            self._stalls.append((mono - ms / 1000.0 if previous is None else previous, mono))
        while self._stalls and self._stalls[0][1] < mono - STALLS_KEPT_S:
            self._stalls.popleft()
        self.seen_until = mono

    def stalled(self, start: float, end: float) -> bool:
        """Whether the loop stalled (as far as the timer could tell) between ``start`` and ``end``."""
        return any(begun < end and ended > start for begun, ended in self._stalls)

    def handshake(self, mono: float, ms: float) -> None:
        self._handshakes.append((mono, ms))

    def lag_p95(self, now: float) -> float:
        self._trim(now)
        return _percentile([ms for _, ms in self._lags], 95)

    def update(self, now: float) -> bool | None:
        """The new verdict when it changed (True: saturated, False: recovered), else None."""
        self._trim(now)
        lag = _percentile([ms for _, ms in self._lags], 95)
        median = _percentile([ms for _, ms in self._handshakes], 50) if self._handshakes else None
        over = is_saturated(lag, median)
        if over:
            self._calm_since = None
            if not self.saturated:
                self.saturated = True
                return True
            return None
        if not self.saturated:
            return None
        if self._calm_since is None:
            self._calm_since = now
        if now - self._calm_since >= CLEAR_S:
            self.saturated = False
            self._calm_since = None
            return False
        return None

    def _trim(self, now: float) -> None:
        start = now - WINDOW_S
        for samples in (self._lags, self._handshakes):
            while samples and samples[0][0] < start:
                samples.popleft()


class LoopLag:
    """A timer on the running loop that tells ``watch`` how late each of its firings was."""

    def __init__(self, watch: SaturationWatch) -> None:
        self.watch = watch
        self._loop = asyncio.get_running_loop()
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        # The clock is time.monotonic, not loop.time(): uvloop's is the time its iteration began, which
        # would miss the callbacks that ran before this one in the same iteration.
        self._due = time.monotonic() + LAG_TIMER_S
        self._handle = self._loop.call_later(LAG_TIMER_S, self._fire)

    def _fire(self) -> None:
        now = time.monotonic()
        self.watch.lag(now, max(0.0, now - self._due) * 1000.0, self._due - LAG_TIMER_S)
        self._due = now + LAG_TIMER_S
        self._handle = self._loop.call_later(LAG_TIMER_S, self._fire)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
