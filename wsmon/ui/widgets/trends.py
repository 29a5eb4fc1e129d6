"""Trends (panel 9): the users' figures over the whole kept history against their limits, and closes by
class.

As many columns as the panel is wide, newest on the right, each a round number of seconds (1 s while the
session is younger than the panel is wide, then 2 s, 5 s, … 1 min …: ui/trend_columns.py), said in the
title: open connections, messages/s and failures/s (the busiest second of a column), delivery p95 (its
worst; columns above the limit drawn in the breach style), then a strip a close class, so "when did the
1006s start?" is read off the screen, and printed: the first abnormal close's wall-clock time with its
zone. Shown only when maximised (9): it needs the width, and the overview has no room.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from textual.content import Content
from textual.widget import Widget

from wsmon.core.closecodes import EXPECTED_CLASSES, CloseClass
from wsmon.core.limits import BREACH, DEFAULT_LIMITS, WARN, Limit, format_value
from wsmon.core.state import State
from wsmon.core.timeline import Timeline
from wsmon.ui.format import LEVEL_STYLES, level_symbols, shows_utc, wall_clock
from wsmon.ui.trend_columns import Chart, Column, OverLimit, chart, duration
from wsmon.ui.widgets.replay_bar import span_label
from wsmon.ui.widgets.resources import limit_for

BLOCKS = "▁▂▃▄▅▆▇█"
LABEL_WIDTH = 19  # "closes server error", the longest label
VALUE_WIDTH = 9
PREFIX = LABEL_WIDTH + VALUE_WIDTH + 1
MIN_CHART = 10
MUTED = "$text-muted"


class TrendsPanel(Widget):
    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    TrendsPanel {
        display: none;
        border: round $primary-darken-1;
        border-title-color: $text;
        height: 1fr;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TrendsPanel.-maximized {
        display: block;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._state: State | None = None
        self._limits: tuple[Limit, ...] = ()
        self._key: Hashable = None

    def on_mount(self) -> None:
        self.border_title = "Trends"

    def update_from(self, state: State, limits: tuple[Limit, ...]) -> None:
        """Keep what to draw; draw only when shown (hidden, a refresh costs nothing) and changed."""
        self._state, self._limits = state, limits
        key = (state.seq, int(state.last_mono), shows_utc(self), limits)
        if key != self._key:
            self._key = key
            self.refresh()

    def render(self) -> Content:
        state = self._state
        if state is None or not state.timeline.fine:
            return Content.styled("nothing over time yet", MUTED)
        return trends_content(state, self._limits, max(MIN_CHART, self.size.width - PREFIX), self)


def trends_content(state: State, limits: tuple[Limit, ...], width: int, node: Widget) -> Content:
    """The panel's text: ``width`` columns up to the session's now, covering all the history kept."""
    timeline = state.timeline
    utc = shows_utc(node)
    end = int(state.last_mono)
    delivery = limit_for_figure(limits, "delivery_ms")
    drawn = chart(timeline, width, end, delivery.value)
    columns = drawn.columns
    breach_style = LEVEL_STYLES[BREACH]
    capacity = limit_for(limits, "capacity")

    msgs = [c.msgs for c in columns]
    p95 = [c.p95 for c in columns]
    failures = [c.failures for c in columns]
    above = [v is not None and v > delivery.value for v in p95]
    last_second, this_second = timeline.seconds(2, end)

    lines: list[Content] = [_heading(drawn, utc)]
    lines.append(_row("open connections", str(drawn.open_now), [float(c.open) for c in columns]))
    lines.append(_row("messages/s", str(last_second.msgs if last_second else 0), msgs))
    lines.append(
        _row(
            "delivery p95",
            format_value(_latest_p95(timeline, drawn.first), "ms"),
            [v or 0.0 for v in p95],
            floor=delivery.value,
            marked=lambda i: above[i],
            marked_style=breach_style,
        )
    )
    lines.append(
        _row(
            "failures/s",
            str(this_second.failures if this_second else 0),
            failures,
            marked=lambda i: failures[i] > 0,
            marked_style=breach_style,
        )
    )
    lines.extend(_close_rows(columns))
    lines.append(_axis(drawn.first, end, width, state, utc))
    lines.extend(_notes(state, drawn.over, delivery, capacity, utc, node))
    return Content("\n").join(lines)


def limit_for_figure(limits: tuple[Limit, ...], figure: str) -> Limit:
    return next(limit for limit in (*limits, *DEFAULT_LIMITS) if limit.figure == figure)


def _latest_p95(timeline: Timeline, first: int) -> float | None:
    """The newest second's delivery p95 in the window (not a column's worst)."""
    for b in reversed(timeline.fine):
        if b.start < first:
            return None
        if b.latency:
            return b.latency_p95()
    return None


def _heading(drawn: Chart, utc: bool) -> Content:
    zone = "UTC" if utc else "local time"
    span = drawn.span_s
    per_column = "a column a second" if span == 1 else f"{span_label(span)}/col, rates its busiest second"
    return Content.styled(
        f"last {duration(span * len(drawn.columns))}, {per_column} · times in {zone} (z)",
        MUTED,
    )


def _row(
    label: str,
    value: str,
    values: list[float],
    *,
    floor: float = 0.0,
    marked: Callable[[int], bool] | None = None,
    marked_style: str = "",
) -> Content:
    # The scale reaches at least the limit, so a series under its limit never looks like one over it.
    top = max(max(values, default=0.0), floor)
    parts: list[tuple[str, str] | str] = [
        (f"{label[:LABEL_WIDTH]:<{LABEL_WIDTH}}", "bold"),
        f"{value[-VALUE_WIDTH:]:>{VALUE_WIDTH}} ",
    ]
    # One part a run of equally styled cells, not one a cell: a span a column made the terminal's
    # rendering of this panel the largest part of the dashboard's CPU (docs/performance.md).
    run: list[str] = []
    run_style = ""
    for i, v in enumerate(values):
        cell = " " if v <= 0 or top <= 0 else BLOCKS[min(len(BLOCKS) - 1, int(v / top * len(BLOCKS)))]
        style = marked_style if marked is not None and marked(i) else ""
        if style != run_style and run:
            parts.append(("".join(run), run_style) if run_style else "".join(run))
            run = []
        run_style = style
        run.append(cell)
    if run:
        parts.append(("".join(run), run_style) if run_style else "".join(run))
    return Content.assemble(*parts)


def _close_rows(columns: list[Column]) -> list[Content]:
    """A row a close class seen in the window, in CloseClass order; unexpected ends in the warn style."""
    per_class: dict[str, list[float]] = {}
    for i, column in enumerate(columns):
        for name, n in column.closes.items():
            per_class.setdefault(name, [0.0] * len(columns))[i] = n
    if not per_class:
        return [Content.assemble((f"{'closes':<{LABEL_WIDTH}}", "bold"), (f"{'none':>{VALUE_WIDTH}}", MUTED))]
    rows: list[Content] = []
    for kind in CloseClass:
        values = per_class.get(kind.value)
        if values is None:
            continue
        style = MUTED if kind in EXPECTED_CLASSES else LEVEL_STYLES[WARN]
        if kind is CloseClass.ABNORMAL:
            style = LEVEL_STYLES[BREACH]
        total = round(sum(values))
        rows.append(
            _row(f"closes {kind.value}", str(total), values, marked=lambda _i: True, marked_style=style)
        )
    return rows


def _axis(first: int, end: int, width: int, state: State, utc: bool) -> Content:
    def wall(second: int) -> float:
        return state.last_wall - (state.last_mono - second)

    start, stop = wall_clock(wall(first), utc), wall_clock(wall(end), utc)
    gap = max(1, width - len(start) - len(stop))
    return Content.styled(f"{'':<{PREFIX}}{start}{'':<{gap}}{stop}", MUTED)


def _notes(
    state: State,
    over: OverLimit,
    delivery: Limit,
    capacity: Limit,
    utc: bool,
    node: Widget,
) -> list[Content]:
    timeline = state.timeline
    breach_style = LEVEL_STYLES[BREACH]
    mark = level_symbols(node).mark(BREACH)
    lines: list[Content] = []
    limit_text = format_value(delivery.value, delivery.unit)
    if over.first_wall is not None:
        spans = [f"{over.seconds} s"] if over.seconds else []
        spans += [f"{over.minutes} one-minute span{'s' if over.minutes > 1 else ''}"] if over.minutes else []
        lines.append(
            Content.styled(
                f"{mark}delivery p95 over its {limit_text} limit for {' and '.join(spans)},"
                f" from {wall_clock(over.first_wall, utc)}",
                breach_style,
            )
        )
    else:
        lines.append(Content.styled(f"delivery p95 within its {limit_text} limit", MUTED))
    lines.append(
        Content.styled(
            f"open connections: peak {state.peak_open}, capacity target {capacity.describe()}",
            MUTED,
        )
    )
    first_1006, last_1006 = timeline.first_abnormal_wall, timeline.last_abnormal_wall
    if first_1006 is None or last_1006 is None:
        lines.append(Content.styled("no 1006 (abnormal) closes yet", MUTED))
    else:
        lines.append(
            Content.styled(
                f"{mark}first 1006 (abnormal) {wall_clock(first_1006, utc)}"
                f" · latest {wall_clock(last_1006, utc)}",
                breach_style,
            )
        )
    return lines
