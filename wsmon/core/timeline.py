"""Per-second history of the users' figures, so the dashboard can answer "when did it start?".

Open connections, messages/s, delivery latency p95, failures/s and closes by close class, one bucket a
second of the session's monotonic clock. Pure and kept by the reducer (so live and replay build the same
series) and carried in keyframes as part of State.

Bounded: the last FINE_SECONDS (10 minutes) at one second, then COARSE_BUCKETS (24 hours) at one minute,
older history is dropped. A bucket's latency is a log-bucketed histogram (percentiles.bucket_of, 1 % wide),
so its size depends on the spread of the latencies, not on their number: a few dozen entries in practice,
at most ~1,400 between 1 µs and 10 min. Worst case ~2,040 buckets.
"""

from __future__ import annotations

import math

import msgspec

from wsmon.core.closecodes import CloseClass, close_class
from wsmon.core.percentiles import bucket_value

FINE_SECONDS = 600
COARSE_SECONDS = 60
COARSE_BUCKETS = 1440
# Trim in chunks: deleting from the head of a list is a memmove, not worth doing every second.
_TRIM_SLACK = 60


class Bucket(msgspec.Struct, gc=False, omit_defaults=True):
    """One span of the session: ``start`` is the monotonic second it begins at, ``wall`` that instant's
    wall-clock time. ``open`` is the open connections at the span's last change (carried forward by the
    reader across spans with no change)."""

    start: int
    wall: float
    span: int = 1
    open: int = 0
    msgs: int = 0
    delivery_failures: int = 0
    connect_failures: int = 0
    closes: dict[str, int] = {}  # CloseClass value → count
    latency: dict[int, int] = {}  # percentiles.bucket_of(ms) → samples

    @property
    def failures(self) -> int:
        return self.delivery_failures + self.connect_failures

    def latency_p95(self) -> float | None:
        """Nearest-rank p95 of the span's delivery latencies (within 0.5 %), None without any."""
        total = sum(self.latency.values())
        if not total:
            return None
        rank = max(1, math.ceil(0.95 * total))
        seen = 0
        for key in sorted(self.latency):
            seen += self.latency[key]
            if seen >= rank:
                return bucket_value(key)
        return None  # unreachable: the counts add up to total

    def merge(self, other: Bucket) -> None:
        self.open = other.open
        self.msgs += other.msgs
        self.delivery_failures += other.delivery_failures
        self.connect_failures += other.connect_failures
        for name, n in other.closes.items():
            self.closes[name] = self.closes.get(name, 0) + n
        for key, n in other.latency.items():
            self.latency[key] = self.latency.get(key, 0) + n


class Timeline(msgspec.Struct, gc=False):
    fine: list[Bucket] = []  # one-second buckets, oldest first, only the seconds something happened
    coarse: list[Bucket] = []  # one-minute buckets of what left ``fine``
    # Exact whatever the rings dropped: the first and latest abnormal close (1006), wall clock.
    first_abnormal_wall: float | None = None
    last_abnormal_wall: float | None = None

    def bucket(self, mono: float, wall: float, open_now: int) -> Bucket:
        """The one-second bucket of ``mono``, made if needed (a late event's, in its place)."""
        second = int(mono)
        fine = self.fine
        if fine and fine[-1].start == second:
            return fine[-1]
        if not fine or fine[-1].start < second:
            made = Bucket(start=second, wall=wall - (mono - second), open=open_now)
            fine.append(made)
            if len(fine) > FINE_SECONDS + _TRIM_SLACK:
                # At a minute's start, so every coarse bucket is a whole minute.
                cutoff = second - FINE_SECONDS
                self._retire(cutoff - cutoff % COARSE_SECONDS)
            return made
        # A late event (sources' clocks interleave): usually a second or two back.
        for i in range(len(fine) - 1, -1, -1):
            start = fine[i].start
            if start == second:
                return fine[i]
            if start < second:
                made = Bucket(start=second, wall=wall - (mono - second), open=fine[i].open)
                fine.insert(i + 1, made)
                return made
        if second > fine[-1].start - FINE_SECONDS:
            made = Bucket(start=second, wall=wall - (mono - second), open=open_now)
            fine.insert(0, made)
            return made
        # Older than the fine ring reaches: kept in its oldest bucket rather than lost.
        return fine[0]

    def _retire(self, cutoff: int) -> None:
        fine = self.fine
        keep = 0
        while keep < len(fine) and fine[keep].start < cutoff:
            keep += 1
        coarse = self.coarse
        for old in fine[:keep]:
            start = old.start - old.start % COARSE_SECONDS
            if coarse and coarse[-1].start == start:
                coarse[-1].merge(old)
            else:
                merged = Bucket(start=start, wall=old.wall - (old.start - start), span=COARSE_SECONDS)
                merged.merge(old)
                coarse.append(merged)
        del fine[:keep]
        if len(coarse) > COARSE_BUCKETS + _TRIM_SLACK:
            del coarse[:-COARSE_BUCKETS]

    def opened_or_closed(self, mono: float, wall: float, open_now: int) -> Bucket:
        b = self.bucket(mono, wall, open_now)
        b.open = open_now
        return b

    def closed(self, mono: float, wall: float, open_now: int, code: int) -> None:
        kind = close_class(code)
        closes = self.opened_or_closed(mono, wall, open_now).closes
        closes[kind.value] = closes.get(kind.value, 0) + 1
        if kind is CloseClass.ABNORMAL:
            if self.first_abnormal_wall is None or wall < self.first_abnormal_wall:
                self.first_abnormal_wall = wall
            if self.last_abnormal_wall is None or wall > self.last_abnormal_wall:
                self.last_abnormal_wall = wall

    def uncount_close(self, mono: float, code: int) -> None:
        """A close counted twice (the tap's and the server log's view of one connection) counts once.

        The first and last abnormal times stay: the other witness's close of the same connection,
        matched by code and time, is the one that counts."""
        second = int(mono)
        for b in reversed(self.fine):
            if b.start == second:
                name = close_class(code).value
                left = b.closes.get(name, 0) - 1
                if left > 0:
                    b.closes[name] = left
                else:
                    b.closes.pop(name, None)
                return
            if b.start < second:
                return

    def seconds(self, last: int, end: int) -> list[Bucket | None]:
        """The ``last`` one-second buckets up to and including second ``end``: None where nothing
        happened (and for seconds older than the fine ring)."""
        by_second = {b.start: b for b in self.fine[-last:] if end - last < b.start <= end}
        return [by_second.get(s) for s in range(end - last + 1, end + 1)]

    def at(self, second: int) -> Bucket | None:
        """The one-second bucket of ``second``, None when nothing happened in it (or it left the ring)."""
        for b in reversed(self.fine):
            if b.start <= second:
                return b if b.start == second else None
        return None

    def open_before(self, second: int) -> int:
        """Open connections at the last change before ``second`` (0 when none is kept)."""
        for b in reversed(self.fine):
            if b.start < second:
                return b.open
        return self.coarse[-1].open if self.coarse else 0


__all__ = ["COARSE_BUCKETS", "COARSE_SECONDS", "FINE_SECONDS", "Bucket", "Timeline"]
