"""The Trends panel's columns: the whole kept history (core.timeline) folded into as many columns as the
panel is wide, each column a whole number of seconds from a short list of round spans.

A column keeps what a reader looks for in it: rates and failures as the busiest second's (a spike of
one second is not averaged away over a five-second column), delivery p95 as the worst span's, open
connections as the most open at once, and closes by class as their count. The timeline keeps its last
ten minutes a second at a time and older ones a minute at a time; a column narrower than a minute takes
its share of a minute's closes and that minute's mean rate (all there is of it). Pure: reads a Timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsmon.core.timeline import Bucket, Timeline

# The seconds a column may cover, shortest first: round figures a reader can count in.
COLUMN_SPANS_S: tuple[int, ...] = (1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass
class Column:
    open: int = 0  # the most connections open at once in the column
    msgs: float = 0.0  # the busiest second's messages
    failures: float = 0.0  # the busiest second's delivery and connect failures
    p95: float | None = None  # the worst delivery p95 of a second (or, older, a minute) in it
    closes: dict[str, float] = field(default_factory=dict)  # close class → closes in the column


@dataclass
class OverLimit:
    """The spans in the window whose delivery p95 was above a limit: seconds, (older) minutes, the first."""

    seconds: int = 0
    minutes: int = 0
    first_wall: float | None = None


@dataclass
class Chart:
    span_s: int  # seconds a column
    first: int  # the monotonic second the first column starts at
    columns: list[Column]
    open_now: int  # open connections at the last change up to the end
    over: OverLimit  # of the p95 limit chart() was given


def column_span(history_s: int, width: int) -> int:
    """The shortest span whose ``width`` columns hold ``history_s`` seconds (the longest span otherwise)."""
    return next((span for span in COLUMN_SPANS_S if span * width >= history_s), COLUMN_SPANS_S[-1])


def chart(timeline: Timeline, width: int, end: int, p95_limit: float = float("inf")) -> Chart:
    """``width`` columns ending with the one that holds second ``end``, wide enough for all the history
    kept, and how long delivery p95 was above ``p95_limit`` in them. Columns start at multiples of their
    span, so a column's content does not shift every second."""
    buckets = [*timeline.coarse, *timeline.fine]
    oldest = buckets[0].start if buckets else end
    span = column_span(end - oldest + 1, width)
    first = end - end % span - (width - 1) * span
    columns = [Column() for _ in range(width)]
    seen: list[int | None] = [None] * width  # the open count at each column's last change in it
    carried = 0  # open connections before the first column
    over = OverLimit()
    for b in buckets:
        last = b.start + b.span - 1
        if last < first:
            carried = b.open
            continue
        if b.start > end:
            break
        p95 = b.latency_p95() if b.latency else None
        _spread(b, p95, columns, seen, first, span, min(last, end))
        if p95 is not None and p95 > p95_limit:
            over.first_wall = b.wall if over.first_wall is None else over.first_wall
            if b.span == 1:
                over.seconds += 1
            else:
                over.minutes += 1
    open_now = carried
    for column, last_open in zip(columns, seen, strict=True):
        column.open = max(column.open, open_now)
        if last_open is not None:
            open_now = last_open
    return Chart(span_s=span, first=first, columns=columns, open_now=open_now, over=over)


def _spread(
    b: Bucket,
    p95: float | None,
    columns: list[Column],
    seen: list[int | None],
    first: int,
    span: int,
    last: int,
) -> None:
    """Add one bucket (its delivery p95 worked out once) to the columns its seconds (to ``last``) fall in."""
    msgs, failures = b.msgs / b.span, b.failures / b.span  # per second: a minute's mean, a second's own
    start = max(b.start, first)
    for index in range((start - first) // span, (last - first) // span + 1):
        column = columns[index]
        lo, hi = max(start, first + index * span), min(last, first + (index + 1) * span - 1)
        share = (hi - lo + 1) / b.span
        column.msgs = max(column.msgs, msgs)
        column.failures = max(column.failures, failures)
        if p95 is not None and (column.p95 is None or p95 > column.p95):
            column.p95 = p95
        for name, n in b.closes.items():
            column.closes[name] = column.closes.get(name, 0.0) + n * share
        column.open = max(column.open, b.open)
        seen[index] = b.open


def duration(seconds: int) -> str:
    """'90 s', '8 min 20 s', '2 h 30 min': a window's length as the panel's title says it."""
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(seconds // 60, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


__all__ = ["COLUMN_SPANS_S", "Chart", "Column", "OverLimit", "chart", "column_span", "duration"]
