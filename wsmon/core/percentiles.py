"""Latency distributions: exact over a sliding window, log-bucketed over a whole session.

A whole session can hold millions of samples, so it keeps a histogram whose buckets are 1 %
wide: constant memory, O(1) per sample, percentiles within 0.5 % of the exact value.
"""

from __future__ import annotations

import bisect
import math

import msgspec

GAMMA = 1.01
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
_FLOOR_MS = 0.001  # below a microsecond the bucket index is meaningless
WINDOW_S = 60.0
WINDOW_TRIM_AT = 1_000
WINDOW_MAX_SAMPLES = 200_000
_TRIM_AFTER_S = 1.05 * WINDOW_S


def bucket_of(ms: float) -> int:
    return math.floor(math.log(ms if ms > _FLOOR_MS else _FLOOR_MS) * _INV_LOG_GAMMA)


def bucket_value(bucket: int) -> float:
    # The geometric middle of the bucket: at most half a bucket (0.5 %) from any sample in it.
    return GAMMA ** (bucket + 0.5)


def exact_percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


class Distribution(msgspec.Struct, gc=False):
    """One latency kind: count, min, max, mean, session histogram and the recent window."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = 0.0
    buckets: dict[int, int] = {}
    window_t: list[float] = []
    window_v: list[float] = []

    def add(self, mono: float, ms: float) -> int:
        """Count the sample; returns its histogram bucket (the reducer's per-second series reuse it)."""
        self.count += 1
        self.total += ms
        if ms < self.minimum:
            self.minimum = ms
        if ms > self.maximum:
            self.maximum = ms
        b = bucket_of(ms)
        buckets = self.buckets
        buckets[b] = buckets.get(b, 0) + 1
        times = self.window_t
        times.append(mono)
        self.window_v.append(ms)
        # Trim in chunks, not per sample: deleting from the head of a long list is a memmove. A short
        # overhang (5 %, at least WINDOW_TRIM_AT samples), because every keyframe carries the window
        # and a float sample is all but incompressible: it was 25 %, a fifth of a keyframe's bytes.
        if len(times) > WINDOW_TRIM_AT and times[0] < mono - _TRIM_AFTER_S:
            self.trim(mono)
        if len(times) > WINDOW_MAX_SAMPLES:
            # Beyond this rate the window holds the newest samples only (it covers less than a minute).
            del times[: WINDOW_MAX_SAMPLES // 2]
            del self.window_v[: WINDOW_MAX_SAMPLES // 2]
        return b

    def trim(self, now: float) -> None:
        """Drop window samples older than WINDOW_S before ``now``."""
        times = self.window_t
        cut = now - WINDOW_S
        i = 0
        n = len(times)
        if n and times[0] >= cut:
            return
        # Binary search: samples arrive in (nearly) time order.
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if times[mid] < cut:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        del times[:i]
        del self.window_v[:i]

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def session_percentile(self, q: float) -> float:
        """Percentile over the whole session from the histogram (within 0.5 %), exact at the ends."""
        if not self.count:
            return math.nan
        if q >= 100:
            return self.maximum
        rank = max(1, math.ceil(q / 100.0 * self.count))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(max(bucket_value(b), self.minimum), self.maximum)
        return self.maximum

    def window_percentiles(self, now: float, qs: tuple[float, ...] = (50, 95, 99)) -> tuple[float, ...]:
        """Exact percentiles over the last WINDOW_S seconds before ``now``."""
        values = sorted(self._window_values(now - WINDOW_S))
        return tuple(exact_percentile(values, q) for q in qs)

    def _window_values(self, cut: float) -> list[float]:
        """The samples at or after ``cut``. Samples are appended in event order, so their times nearly
        always ascend: then the window is a tail of the list, found by bisection and checked with
        min/max (C loops). The judge asks for this every tick; a generator over ~10,000 pairs cost
        twice the sort (bench/bench_report_log.py). Out of order, every pair is tested, as before."""
        times = self.window_t
        start = bisect.bisect_left(times, cut)
        if (start == 0 or max(times[:start]) < cut) and (start == len(times) or min(times[start:]) >= cut):
            return self.window_v[start:]
        return [v for t, v in zip(times, self.window_v, strict=True) if t >= cut]

    def window_count(self, now: float) -> int:
        cut = now - WINDOW_S
        return sum(1 for t in self.window_t if t >= cut)
