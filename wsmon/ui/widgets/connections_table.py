"""The connections table: a Line-API widget that repaints only the lines whose content changed.

A stock DataTable re-renders every visible cell when any cell changes; with fifty rows changing a
few times a second that costs a quarter of a core. Here each row's Strip is cached under a key
(conn id, the row's ``updated_seq``, its coarse age), each tick compares the key each visible line
would show with the key it shows, and only differing lines are refreshed. A tick that changes
nothing refreshes nothing, and rows scrolled out of view are never rendered.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wsmon.core.closecodes import close_code_label, expected_close
from wsmon.core.sanitize import visible
from wsmon.core.state import Connection, ConnState, State
from wsmon.ui.format import coarse_age, count


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

RowKey = tuple[str, int, str]
_UNPAINTED = ("", -1, "")


def row_age(conn: Connection, now: float) -> str:
    """Open rows show how long they have been open; closed rows how long they lived (a fixed value)."""
    if conn.opened_mono is None:
        return "—"
    end = conn.closed_mono if conn.state == ConnState.CLOSED and conn.closed_mono is not None else now
    return coarse_age(end - conn.opened_mono)


def _order_key(conn: Connection) -> tuple[int, float, str]:
    # Open first, newest first; then closed, most recently closed first. Traffic does not move a row,
    # so fifty busy connections do not reshuffle the screen four times a second.
    if conn.state == ConnState.CLOSED:
        return (1, -(conn.closed_mono or 0.0), conn.id)
    return (0, -(conn.opened_mono if conn.opened_mono is not None else float("inf")), conn.id)


def _matches(conn: Connection, needle: str) -> bool:
    return (
        needle in conn.id.lower()
        or needle in conn.server_conn.lower()  # the server log's id of a tapped connection finds it too
        or needle in conn.peer.lower()
        or needle in conn.state.lower()
        or needle in close_code_label(conn.close_code).lower()
    )


def _fit(text: str, column: Column) -> str:
    if column.right and len(text) < column.width:
        return text.rjust(column.width)
    return set_cell_size(text, column.width)


class ConnectionsTable(ScrollView, can_focus=True):
    """Every connection State knows of, open first; feed it with ``update_from(state)`` on a timer."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "connections-table--summary",
        "connections-table--header",
        "connections-table--closed",
        "connections-table--own",
        "connections-table--transient",
        "connections-table--bad-close",
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
        &:focus { border: round $accent; }
    }
    """

    filter_text: var[str] = var("")
    """Show only rows whose id, peer, state or close code contains this (case-insensitive)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._state: State | None = None
        self._rows: list[Connection] = []
        self._rows_stamp: tuple[int, str] | None = None
        self._last_view: tuple[object, ...] | None = None
        self._now = 0.0
        self._summary = ""
        self._shown: dict[int, RowKey | None] = {}  # visible row line -> key of what is painted there
        self._strips: dict[str, tuple[RowKey, Strip]] = {}
        self._fixed_strips: dict[int, tuple[str, Strip]] = {}
        self._styles: dict[str, Style] = {}
        self._painted_width = 0

    def on_mount(self) -> None:
        self.border_title = "Connections"

    # --- what the app calls ----------------------------------------------------------------------

    def update_from(self, state: State) -> None:
        """Recompute the row order if State moved, then refresh only the lines that would change."""
        self._state = state
        self._now = state.last_mono
        stamp = (state.seq, self.filter_text)
        view = (stamp, self.scroll_offset.y, self.size)
        if view == self._last_view:
            return  # same State, same viewport: every line already shows (or is queued to show) this
        self._last_view = view
        if stamp != self._rows_stamp:
            self._rows_stamp = stamp
            self._rows = self._ordered_rows(state)
            self._summary = self._summary_text(state)
            # A new virtual size relayouts the whole screen, and rows come and go every second; growing
            # in steps of VIRTUAL_STEP rows (the tail below the last row is blank) relayouts rarely.
            rows = len(self._rows) + FIXED_LINES
            height = -(-rows // VIRTUAL_STEP) * VIRTUAL_STEP
            if self.virtual_size.height != height:
                self.virtual_size = Size(TABLE_WIDTH, height)
        if self._fixed_strips.get(0, ("",))[0] != self._summary:
            self.refresh(Region(0, 0, max(self.size.width, 1), 1))
        self._refresh_changed_lines()

    @property
    def row_ids(self) -> list[str]:
        """Connection ids in the order shown (after the filter)."""
        return [conn.id for conn in self._rows]

    @property
    def summary(self) -> str:
        return self._summary

    # --- diffing ---------------------------------------------------------------------------------

    def _ordered_rows(self, state: State) -> list[Connection]:
        needle = self.filter_text.strip().lower()
        # A tapped connection is also in the server's log: show it once, as the tap saw it on the wire.
        conns = [conn for conn in state.connections.values() if not conn.mirror_of]
        rows = [conn for conn in conns if _matches(conn, needle)] if needle else conns
        rows.sort(key=_order_key)
        return rows

    def _summary_text(self, state: State) -> str:
        closed = sum(
            1 for conn in state.connections.values() if conn.state == ConnState.CLOSED and not conn.mirror_of
        )
        text = f"{count(state.open_count)} open · peak {count(state.peak_open)} · {count(closed)} closed kept"
        if self.filter_text:
            text += f" · showing {count(len(self._rows))} matching '{self.filter_text}'"
        return text + f"   {OWN_MARK} wsmon's own probe"

    def _row_key(self, conn: Connection) -> RowKey:
        return (conn.id, conn.updated_seq, row_age(conn, self._now))

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
                key = self._row_key(rows[index]) if index < len(rows) else None
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
        key = self._row_key(conn)
        cached = self._strips.get(conn.id)
        if cached is not None and cached[0] == key:
            strip = cached[1]
        else:
            strip = self._render_row(conn, key[2], width)
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
        text = self._summary if y == 0 else " ".join(_fit(c.title, c) for c in COLUMNS)
        cached = self._fixed_strips.get(y)
        if cached is not None and cached[0] == text:
            return cached[1]
        style = self._style("summary" if y == 0 else "header")
        strip = Strip([Segment(set_cell_size(text, width), style)], width)
        self._fixed_strips[y] = (text, strip)
        return strip

    def _render_row(self, conn: Connection, age: str, width: int) -> Strip:
        if conn.state == ConnState.CLOSED:
            row_style = self._style("closed")
        elif conn.own:
            row_style = self._style("own")
        else:
            row_style = self._style("base")
        cells = (
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
