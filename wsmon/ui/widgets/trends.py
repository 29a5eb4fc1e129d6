"""Trends (panel 9): the users' figures second by second against their limits, and closes by class.

One column a second, newest on the right, as wide as the panel: open connections, messages/s, delivery
p95 (seconds above its limit drawn in the breach style) and failures/s, then a strip a close class, so
"when did the 1006s start?" is read off the screen, and printed: the first abnormal close's wall-clock
time with its zone. Shown only when maximised (9): it needs the width, and the overview has no room.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from textual.content import Content
from textual.widget import Widget

from wsmon.core.closecodes import EXPECTED_CLASSES, CloseClass
from wsmon.core.limits import BREACH, DEFAULT_LIMITS, WARN, Limit, format_value
from wsmon.core.state import State
from wsmon.core.timeline import Bucket
from wsmon.ui.format import LEVEL_STYLES, level_symbols, shows_utc, wall_clock
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
    """The panel's text: ``width`` seconds up to the session's now, one column each."""
    timeline = state.timeline
    utc = shows_utc(node)
    end = int(state.last_mono)
    buckets = timeline.seconds(width, end)
    breach_style = LEVEL_STYLES[BREACH]
    delivery = limit_for_figure(limits, "delivery_ms")
    capacity = limit_for(limits, "capacity")

    open_counts = _carried_open(buckets, timeline.open_before(end - width + 1))
    msgs = [float(b.msgs) if b else 0.0 for b in buckets]
    p95 = [b.latency_p95() if b else None for b in buckets]
    failures = [float(b.failures) if b else 0.0 for b in buckets]
    above = [v is not None and v > delivery.value for v in p95]

    lines: list[Content] = [_heading(width, utc)]
    lines.append(_row("open connections", str(open_counts[-1]), [float(v) for v in open_counts]))
    lines.append(_row("messages/s", str(int(msgs[-2] if len(msgs) > 1 else msgs[-1])), msgs))
    latest_p95 = next((v for v in reversed(p95) if v is not None), None)
    lines.append(
        _row(
            "delivery p95",
            format_value(latest_p95, "ms"),
            [v or 0.0 for v in p95],
            floor=delivery.value,
            marked=lambda i: above[i],
            marked_style=breach_style,
        )
    )
    lines.append(
        _row(
            "failures/s",
            str(int(failures[-1])),
            failures,
            marked=lambda i: failures[i] > 0,
            marked_style=breach_style,
        )
    )
    lines.extend(_close_rows(buckets))
    lines.append(_axis(end, width, state, utc))
    lines.extend(_notes(state, buckets, above, delivery, capacity, utc, node))
    return Content("\n").join(lines)


def limit_for_figure(limits: tuple[Limit, ...], figure: str) -> Limit:
    return next(limit for limit in (*limits, *DEFAULT_LIMITS) if limit.figure == figure)


def _carried_open(buckets: list[Bucket | None], before: int) -> list[int]:
    """Open connections each second: a second without a change keeps the last count."""
    out: list[int] = []
    current = before
    for b in buckets:
        if b is not None:
            current = b.open
        out.append(current)
    return out


def _heading(width: int, utc: bool) -> Content:
    zone = "UTC" if utc else "local time"
    return Content.styled(
        f"last {width} s, a column a second · times in {zone} (z)",
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


def _close_rows(buckets: list[Bucket | None]) -> list[Content]:
    """A row a close class seen in the window, in CloseClass order; unexpected ends in the warn style."""
    per_class: dict[str, list[float]] = {}
    for i, b in enumerate(buckets):
        if b is None:
            continue
        for name, n in b.closes.items():
            per_class.setdefault(name, [0.0] * len(buckets))[i] = float(n)
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
        total = int(sum(values))
        rows.append(
            _row(f"closes {kind.value}", str(total), values, marked=lambda _i: True, marked_style=style)
        )
    return rows


def _axis(end: int, width: int, state: State, utc: bool) -> Content:
    end_wall = state.last_wall - (state.last_mono - end)
    start = wall_clock(end_wall - width + 1, utc)
    stop = wall_clock(end_wall, utc)
    gap = max(1, width - len(start) - len(stop))
    return Content.styled(f"{'':<{PREFIX}}{start}{'':<{gap}}{stop}", MUTED)


def _notes(
    state: State,
    buckets: list[Bucket | None],
    above: list[bool],
    delivery: Limit,
    capacity: Limit,
    utc: bool,
    node: Widget,
) -> list[Content]:
    timeline = state.timeline
    breach_style = LEVEL_STYLES[BREACH]
    mark = level_symbols(node).mark(BREACH)
    lines: list[Content] = []
    over = [b for b, hot in zip(buckets, above, strict=True) if hot and b is not None]
    if over:
        lines.append(
            Content.styled(
                f"{mark}delivery p95 over its {format_value(delivery.value, delivery.unit)} limit"
                f" for {len(over)} s, from {wall_clock(over[0].wall, utc)}",
                breach_style,
            )
        )
    else:
        lines.append(
            Content.styled(
                f"delivery p95 within its {format_value(delivery.value, delivery.unit)} limit", MUTED
            )
        )
    lines.append(
        Content.styled(
            f"open connections: peak {state.peak_open}, capacity target {capacity.describe()}",
            MUTED,
        )
    )
    first, last = timeline.first_abnormal_wall, timeline.last_abnormal_wall
    if first is None or last is None:
        lines.append(Content.styled("no 1006 (abnormal) closes yet", MUTED))
    else:
        lines.append(
            Content.styled(
                f"{mark}first 1006 (abnormal) {wall_clock(first, utc)} · latest {wall_clock(last, utc)}",
                breach_style,
            )
        )
    return lines
