"""The replay's time bar: the recording's start, where the replay is and its end (wall-clock with the zone:
local, or UTC after z, and the date: once, before the start, or on all three when the recording spans more
than one day in that zone), how far along, the span ← / → step by, and the bookmarks (⚑ on the bar).

Shown only in a replay. The header keeps its percentage; this bar says *when*, which is what a reader
compares with a report or a log ("when did the 1006s start?").
"""

from __future__ import annotations

from textual.content import Content

from wsmon.ui.format import shows_utc, wall_clock, wall_date
from wsmon.ui.widgets.fitted_panel import FittedPanel, pack

# Under this many cells the bar says nothing a percentage does not: the times go on their own line.
MIN_BAR = 10


def span_label(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def dated_times(start: float, now: float, end: float, utc: bool) -> tuple[str, str, str]:
    """Start, now and end as the bar shows them: the date before the start, and before the other two as
    well when the recording crosses midnight (in the zone shown)."""
    crosses = wall_date(start, utc) != wall_date(end, utc)

    def dated(wall: float, date: bool) -> str:
        return f"{wall_date(wall, utc)} {wall_clock(wall, utc)}" if date else wall_clock(wall, utc)

    return dated(start, True), dated(now, crosses), dated(end, crosses)


def track(start: float, now: float, end: float, marks: list[float], cells: int) -> str:
    """``cells`` of ━ (played) and ─ (to come), ● where the replay is, ⚑ at each bookmark."""
    length = end - start

    def cell(wall: float) -> int:
        ratio = (wall - start) / length if length > 0 else 1.0
        return min(max(round(ratio * (cells - 1)), 0), cells - 1)

    at = cell(now)
    line = ["━" if i < at else "─" for i in range(cells)]
    for mark in marks:
        line[cell(mark)] = "⚑"
    line[at] = "●"
    return "".join(line)


class ReplayBar(FittedPanel):
    DEFAULT_CSS = """
    ReplayBar {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    def update_from(
        self, walls: tuple[float, float, float] | None, *, span_s: float, bookmarks: list[float]
    ) -> bool:
        # Whole seconds: the clock moves every frame while playing, the text only once a second.
        utc = shows_utc(self)
        key = (None if walls is None else tuple(int(w) for w in walls), span_s, tuple(bookmarks), utc)
        return self.show_fitted(key, lambda width: self._build(walls, span_s, bookmarks, utc, width))

    def _build(
        self,
        walls: tuple[float, float, float] | None,
        span_s: float,
        bookmarks: list[float],
        utc: bool,
        width: int,
    ) -> Content:
        # The keys are in the footer and the help; an 80-column bar has room for the figures only.
        keys = Content(f"step {span_label(span_s)}   ⚑ {len(bookmarks)}")
        if walls is None:
            return Content("empty recording   ") + keys
        start, now, end = walls
        first, current, last = dated_times(start, now, end, utc)
        ends = (Content(first), Content(last))
        here = Content.styled(f"now {current}", "bold")
        # The bar between the start and the end, a space either side; three between the groups.
        fixed = sum(part.cell_length for part in ends) + 2 + here.cell_length + keys.cell_length + 2 * 3
        cells = width - fixed if width > 0 else 40
        if cells >= MIN_BAR:
            line = Content(track(start, now, end, bookmarks, cells))
            timeline = Content(" ").join([ends[0], line, ends[1]])
            return Content("   ").join([here, timeline, keys])
        # Narrow: the times and the span whole, the bar on a line of its own when it has room.
        lines = pack([here, ends[0] + " → " + ends[1], keys], width, "   ")
        if width >= MIN_BAR:
            lines.append(Content(track(start, now, end, bookmarks, width)))
        return Content("\n").join(lines)
