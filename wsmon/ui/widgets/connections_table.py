"""The connections table: a Line-API widget that repaints only the lines whose content changed.

A stock DataTable re-renders every visible cell when any cell changes; with fifty rows changing a
few times a second that costs a quarter of a core. Here each row's Strip is cached under a key
(conn id, the row's ``updated_seq``, its coarse age), each tick compares the key each visible line
would show with the key it shows, and only differing lines are refreshed. A tick that changes
nothing refreshes nothing, and rows scrolled out of view are never rendered.

The row cursor and the sort are part of that key and of the row order: moving the cursor repaints
the two lines it leaves and enters; ``s`` / ``S`` reorder the rows once, and the order then holds
from tick to tick (ties keep the default order: open first, newest first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar, NamedTuple

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wsmon.core.closecodes import close_code_label, expected_close
from wsmon.core.sanitize import visible
from wsmon.core.state import Connection, ConnState, State
from wsmon.ui.filtering import matches, parse_query
from wsmon.ui.format import coarse_age, count
from wsmon.ui.widgets.row_order import DefaultOrder


class Column(NamedTuple):
    title: str
    width: int
    right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("", 1),
    Column("id", 14),
    Column("peer", 22),
    Column("state", 10),
    Column("age", 6, right=True),
    Column("msgs in", 9, right=True),
    Column("msgs out", 9, right=True),
    Column("last close", 26),
    Column("closed by", 9),
)
_CLOSE_COLUMN = 7
_STATE_COLUMN = 3
TABLE_WIDTH = sum(column.width + 1 for column in COLUMNS)
FIXED_LINES = 2  # the count line and the column titles stay put while the rows scroll
OWN_MARK = "◆"
VIRTUAL_STEP = 64
DOUBLE_PRESS_S = 0.5  # g pressed twice within this goes to the top, as in less and k9s
ASCENDING, DESCENDING = "▲", "▼"

RowKey = tuple[str, int, str, bool]  # conn id, its updated_seq, its coarse age, under the cursor
_UNPAINTED = ("", -1, "", False)


def row_age(conn: Connection, now: float) -> str:
    """Open rows show how long they have been open; closed rows how long they lived (a fixed value)."""
    if conn.opened_mono is None:
        return "—"
    end = conn.closed_mono if conn.state == ConnState.CLOSED and conn.closed_mono is not None else now
    return coarse_age(end - conn.opened_mono)


def row_seconds(conn: Connection, now: float) -> float:
    """The age row_age shows, as a number to sort by (-1 for a row that never opened)."""
    if conn.opened_mono is None:
        return -1.0
    end = conn.closed_mono if conn.state == ConnState.CLOSED and conn.closed_mono is not None else now
    return end - conn.opened_mono


_STATE_ORDER = {state: n for n, state in enumerate(ConnState)}
SortKey = Callable[[Connection, float], str | int | float | tuple[bool, int]]


class SortBy(NamedTuple):
    column: int  # index in COLUMNS
    key: SortKey
    descending: bool  # its natural direction: counts and ages largest first, text A to Z


# What `s` cycles through after the default order, in column order.
SORTS: tuple[SortBy, ...] = (
    SortBy(1, lambda conn, _now: conn.id.lower(), descending=False),
    SortBy(2, lambda conn, _now: conn.peer.lower(), descending=False),
    SortBy(3, lambda conn, _now: _STATE_ORDER[conn.state], descending=False),
    SortBy(4, row_seconds, descending=True),
    SortBy(5, lambda conn, _now: conn.msgs_in, descending=True),
    SortBy(6, lambda conn, _now: conn.msgs_out, descending=True),
    SortBy(7, lambda conn, _now: (conn.close_code is None, conn.close_code or 0), descending=False),
    SortBy(8, lambda conn, _now: conn.closed_by, descending=False),
)


def _fit(text: str, column: Column) -> str:
    if column.right and len(text) < column.width:
        return text.rjust(column.width)
    return set_cell_size(text, column.width)


def row_cells(conn: Connection, age: str) -> tuple[str, ...]:
    """A row's cells as the table shows them (before fitting to the columns), one a COLUMNS entry."""
    return (
        OWN_MARK if conn.own else " ",
        visible(conn.id),
        visible(conn.peer) or "—",
        conn.state,
        age,
        count(conn.msgs_in),
        count(conn.msgs_out),
        close_code_label(conn.close_code) if conn.close_code is not None else "",
        conn.closed_by,
    )


def header_text(sort: SortBy | None, reverse: bool) -> str:
    """The column titles, the sorted one with its direction (in its column, or the gap beside it)."""
    cells: list[str] = []
    for number, column in enumerate(COLUMNS):
        if sort is None or sort.column != number:
            cells.append(_fit(column.title, column) + " ")
            continue
        arrow = DESCENDING if sort.descending != reverse else ASCENDING
        if column.right:
            cells.append((arrow + column.title).rjust(column.width) + " ")
        else:
            cells.append((column.title + arrow).ljust(column.width + 1))
    return "".join(cells).rstrip()


class ConnectionsTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Every connection State knows of, open first; feed it with ``update_from(state)`` on a timer."""

    # Its own keys only: the cursor replaces ScrollView's scrolling keys, and ← → belong to the replay.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor(1)", "Down", show=False, tooltip="move the row cursor down"),
        Binding("k,up", "cursor(-1)", "Up", show=False, tooltip="move the row cursor up"),
        Binding("pagedown", "page(1)", "Page down", show=False, tooltip="move the cursor a page down"),
        Binding("pageup", "page(-1)", "Page up", show=False, tooltip="move the cursor a page up"),
        Binding("g", "top_pending", "Top", show=False, key_display="g g", tooltip="the first row"),
        Binding("home", "top", "Top", show=False, tooltip="the first row"),
        Binding("G,end", "bottom", "Bottom", show=False, tooltip="the last row"),
        Binding("s", "sort", "Sort", tooltip="sort by the next column (id … closed by, then the default)"),
        Binding("S", "reverse_sort", "Reverse sort", show=False, tooltip="reverse the order"),
        Binding(
            "enter",
            "app.open_connection",
            "Open",
            show=False,
            tooltip="open the cursor row's connection: summary, timeline",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "connections-table--summary",
        "connections-table--header",
        "connections-table--closed",
        "connections-table--own",
        "connections-table--transient",
        "connections-table--bad-close",
        "connections-table--cursor",
    }

    DEFAULT_CSS = """
    ConnectionsTable {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        border: round $primary-darken-1;
        border-title-color: $text;
        height: 1fr;
        & > .connections-table--summary { color: $text-muted; }
        & > .connections-table--header { text-style: bold; color: $text-accent; }
        & > .connections-table--closed { color: $text-muted; text-style: dim; }
        & > .connections-table--own { color: $text-primary; text-style: italic; }
        & > .connections-table--transient { color: $text-warning; }
        & > .connections-table--bad-close { color: $text-error; }
        & > .connections-table--cursor { background: $block-cursor-background; }
        &:focus { border: round $accent; }
    }
    """

    filter_text: var[str] = var("")
    """Show only the rows this query keeps (wsmon.ui.filtering: `code:1006 state:closed peer:10.0.`)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._state: State | None = None
        self._rows: list[Connection] = []
        self._default_order = DefaultOrder()
        self._rows_stamp: tuple[object, ...] | None = None
        self._last_view: tuple[object, ...] | None = None
        self._now = 0.0
        self._summary = ""
        self._shown: dict[int, RowKey | None] = {}  # visible row line -> key of what is painted there
        self._strips: dict[str, tuple[RowKey, Strip]] = {}
        self._fixed_strips: dict[int, tuple[str, Strip]] = {}
        self._styles: dict[str, Style] = {}
        self._painted_width = 0
        self._query = parse_query("")
        self._sort: SortBy | None = None
        self._reverse = False
        self._cursor = 0  # index in _rows
        self._cursor_id: str | None = None  # the row the user put the cursor on; it follows that row
        self._g_pressed_at = float("-inf")

    def on_mount(self) -> None:
        self.border_title = "Connections"

    # --- what the app calls ----------------------------------------------------------------------

    def update_from(self, state: State) -> None:
        """Recompute the row order if State moved, then refresh only the lines that would change."""
        self._state = state
        self._now = state.last_mono
        stamp = (state.seq, self.filter_text, self._sort, self._reverse)
        view = (stamp, self.scroll_offset.y, self.size)
        if view == self._last_view:
            return  # same State, same viewport: every line already shows (or is queued to show) this
        self._last_view = view
        if stamp != self._rows_stamp:
            self._rows_stamp = stamp
            self._rows = self._ordered_rows(state)
            self._summary = self._summary_text(state)
            self._fit_virtual_height(len(self._rows) + FIXED_LINES)
        if self._fixed_strips.get(0, ("",))[0] != self._summary:
            self.refresh(Region(0, 0, max(self.size.width, 1), 1))
        self._refresh_changed_lines()

    def _fit_virtual_height(self, rows: int) -> None:
        # A new virtual size relayouts the whole screen (~30 ms with 10,000 rows), and rows come and go
        # every second. The height keeps slack (the tail below the last row is blank, and scrolling
        # stops at the last row, see max_scroll_y) proportional to the rows, and changes only when the
        # rows outgrow it or leave twice the slack unused: 100 new rows a second relayout once in ~7 s.
        slack = max(VIRTUAL_STEP, rows // 16)
        if rows <= self.virtual_size.height <= rows + 2 * slack:
            return
        height = -(-(rows + slack) // VIRTUAL_STEP) * VIRTUAL_STEP
        self.virtual_size = Size(TABLE_WIDTH, height)

    @property
    def row_ids(self) -> list[str]:
        """Connection ids in the order shown (after the filter)."""
        return [conn.id for conn in self._rows]

    def shown_rows(self) -> list[tuple[str, ...]]:
        """Every row in the order shown (after the filter and the sort), as its cells (row_cells)."""
        return [row_cells(conn, row_age(conn, self._now)) for conn in self._rows]

    @property
    def summary(self) -> str:
        return self._summary

    @property
    def cursor_row(self) -> str | None:
        """The id of the connection under the cursor (None while the table is empty)."""
        return self._rows[self._cursor].id if self._cursor < len(self._rows) else None

    @property
    def sort_title(self) -> str:
        """The sorted column's title and direction, e.g. 'msgs in ▼'; '' in the default order."""
        sort = self._sort
        if sort is None:
            return "default, reversed" if self._reverse else ""
        return f"{COLUMNS[sort.column].title} {DESCENDING if sort.descending != self._reverse else ASCENDING}"

    # --- keys ------------------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self._cursor + direction * max(1, self.size.height - FIXED_LINES))

    def action_top(self) -> None:
        self.move_cursor(0)

    def action_bottom(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_top_pending(self) -> None:
        now = time.monotonic()
        if now - self._g_pressed_at <= DOUBLE_PRESS_S:
            self._g_pressed_at = float("-inf")
            self.move_cursor(0)
        else:
            self._g_pressed_at = now

    def action_sort(self) -> None:
        """The next column in SORTS, in its natural direction; after the last, the default order."""
        at = SORTS.index(self._sort) if self._sort is not None else -1
        self._sort = SORTS[at + 1] if at + 1 < len(SORTS) else None
        self._reverse = False
        self._reorder()

    def action_reverse_sort(self) -> None:
        self._reverse = not self._reverse
        self._reorder()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= FIXED_LINES:
            index = self.scroll_offset.y + offset.y - FIXED_LINES
            if index < len(self._rows):
                self.move_cursor(index)

    def move_cursor(self, index: int) -> None:
        """Put the cursor on the row at this index (clamped), scrolled into view; it then follows that row."""
        if not self._rows:
            return
        index = min(max(index, 0), len(self._rows) - 1)
        self._cursor = index
        self._cursor_id = self._rows[index].id
        visible = max(1, self.size.height - FIXED_LINES)
        top = self.scroll_offset.y
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False, immediate=True)
        self._last_view = None
        if self._state is not None:
            self.update_from(self._state)

    def _reorder(self) -> None:
        self._rows_stamp = None
        self._last_view = None
        self._fixed_strips.pop(1, None)
        self.refresh(Region(0, 1, max(self.size.width, 1), 1))
        if self._state is not None:
            self.update_from(self._state)

    # --- diffing ---------------------------------------------------------------------------------

    def _ordered_rows(self, state: State) -> list[Connection]:
        query = self._query
        # A tapped connection is also in the server's log: DefaultOrder shows it once, as the tap saw it.
        conns = self._default_order.rows(state)
        rows = [conn for conn in conns if matches(conn, query)] if query else conns
        sort = self._sort
        if sort is not None:
            now = self._now
            # Python's sort is stable, also reversed: ties keep the default order, so rows do not swap.
            rows.sort(key=lambda conn: sort.key(conn, now), reverse=sort.descending != self._reverse)
        elif self._reverse:
            rows.reverse()
        self._follow_cursor(rows)
        return rows

    def _follow_cursor(self, rows: list[Connection]) -> None:
        """Keep the cursor on the row the user chose when rows move; clamp it when that row has gone."""
        wanted = self._cursor_id
        if wanted is not None:
            for index, conn in enumerate(rows):
                if conn.id == wanted:
                    self._cursor = index
                    return
        self._cursor = min(self._cursor, max(len(rows) - 1, 0))

    def _summary_text(self, state: State) -> str:
        closed = self._default_order.closed
        text = f"{count(state.open_count)} open · peak {count(state.peak_open)} · {count(closed)} closed kept"
        if self._sort is not None or self._reverse:
            text += f" · sorted by {self.sort_title}"
        if self.filter_text:
            text += f" · showing {count(len(self._rows))} matching '{self.filter_text}'"
        return text + f"   {OWN_MARK} wsmon's own probe"

    def _row_key(self, conn: Connection, index: int) -> RowKey:
        return (conn.id, conn.updated_seq, row_age(conn, self._now), index == self._cursor)

    def _refresh_changed_lines(self) -> None:
        visible = self.size.height - FIXED_LINES
        if visible <= 0:
            return
        width = self.size.width
        top = self.scroll_offset.y
        rows = self._rows
        shown = self._shown
        run_start: int | None = None
        for line in range(visible + 1):
            index = top + line
            if line < visible:
                key = self._row_key(rows[index], index) if index < len(rows) else None
                changed = shown.get(line, _UNPAINTED) != key
            else:
                changed = False  # one past the end closes the last run
            if changed and run_start is None:
                run_start = line
            elif not changed and run_start is not None:
                # Contiguous changed lines go as one region: fewer, larger compositor updates.
                self.refresh(Region(0, FIXED_LINES + run_start, width, line - run_start))
                run_start = None

    def watch_filter_text(self) -> None:
        self._query = parse_query(self.filter_text)
        self._cursor = 0
        self._cursor_id = None
        self._rows_stamp = None
        self._last_view = None
        self.scroll_to(y=0, animate=False)
        if self._state is not None:
            self.update_from(self._state)
        self.refresh()

    # --- rendering -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}
        self._strips.clear()
        self._fixed_strips.clear()
        self._shown.clear()
        self._last_view = None

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            base = self.rich_style
            style = (
                base
                if name == "base"
                else base + self.get_component_rich_style(f"connections-table--{name}", partial=True)
            )
            self._styles[name] = style
        return style

    @property
    def max_scroll_y(self) -> int:
        # The virtual height is rounded up (see update_from); scrolling stops at the last real row.
        rows = len(self._rows) + FIXED_LINES
        return max(0, rows - (self.container_size.height - self.scrollbar_size_horizontal))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._painted_width:
            self._painted_width = width
            self._strips.clear()
            self._fixed_strips.clear()
        if y < FIXED_LINES:
            return self._fixed_line(y, width)
        line = y - FIXED_LINES
        index = self.scroll_offset.y + line
        if index >= len(self._rows):
            self._shown[line] = None
            return Strip.blank(width, self._style("base"))
        conn = self._rows[index]
        key = self._row_key(conn, index)
        cached = self._strips.get(conn.id)
        if cached is not None and cached[0] == key:
            strip = cached[1]
        else:
            strip = self._render_row(conn, key[2], width, cursor=key[3])
            self._strips[conn.id] = (key, strip)
            if len(self._strips) > 4 * max(self.size.height, 64):
                self._forget_offscreen_strips()
        self._shown[line] = key
        return strip

    def _forget_offscreen_strips(self) -> None:
        top = self.scroll_offset.y
        keep = {conn.id for conn in self._rows[top : top + self.size.height]}
        self._strips = {conn_id: entry for conn_id, entry in self._strips.items() if conn_id in keep}

    def _fixed_line(self, y: int, width: int) -> Strip:
        text = self._summary if y == 0 else header_text(self._sort, self._reverse)
        cached = self._fixed_strips.get(y)
        if cached is not None and cached[0] == text:
            return cached[1]
        style = self._style("summary" if y == 0 else "header")
        strip = Strip([Segment(set_cell_size(text, width), style)], width)
        self._fixed_strips[y] = (text, strip)
        return strip

    def _render_row(self, conn: Connection, age: str, width: int, *, cursor: bool) -> Strip:
        if conn.state == ConnState.CLOSED:
            row_style = self._style("closed")
        elif conn.own:
            row_style = self._style("own")
        else:
            row_style = self._style("base")
        if cursor:
            row_style += self._style("cursor")
        cells = row_cells(conn, age)
        segments: list[Segment] = []
        used = 0
        for number, (column, text) in enumerate(zip(COLUMNS, cells, strict=True)):
            style = row_style
            code = conn.close_code
            if number == _CLOSE_COLUMN and code is not None and not expected_close(code):
                style = row_style + self._style("bad-close")
            elif number == _STATE_COLUMN and conn.state in (ConnState.CONNECTING, ConnState.CLOSING):
                style = row_style + self._style("transient")
            segments.append(Segment(_fit(text, column) + " ", style))
            used += column.width + 1
        if used < width:
            segments.append(Segment(" " * (width - used), row_style))
        return Strip(segments, max(used, width)).crop(0, width)
