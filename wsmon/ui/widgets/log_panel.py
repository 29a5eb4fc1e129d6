"""The last log lines (time, level, source, text), newest at the bottom, with counts by level on top."""

from __future__ import annotations

from textual.content import Content

from wsmon.core.sanitize import visible
from wsmon.core.state import LogEntry, State
from wsmon.ui.format import clock_time, count, shows_utc
from wsmon.ui.widgets.text_panel import TextPanel

LINES_KEPT = 200  # enough to fill a maximised panel on a tall terminal
LEVEL_ORDER = ("fatal", "error", "warn", "info", "debug", "trace")
LEVEL_LINE_STYLES = {
    "fatal": "bold $error",
    "error": "bold $error",
    "warn": "$warning",
    "info": "$success",
    "debug": "$text-muted",
    "trace": "$text-muted",
}


class LogPanel(TextPanel):
    """Rebuilt only when a line arrived; shows as many of the newest lines as its height holds."""

    DEFAULT_CSS = """
    LogPanel {
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
        &.-maximized { height: 1fr; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Content] = []
        # Lines already styled, by entry: a new log line styles one line, not LINES_KEPT of them.
        self._styled: dict[int, tuple[LogEntry, Content]] = {}
        self._utc = False  # what the styled lines' times are in (z toggles it)

    def on_mount(self) -> None:
        self.border_title = "Logs"

    def update_from(self, state: State) -> bool:
        logs = state.logs
        # A class, not display: a short terminal hides the panel by the app's class (wsmon.tcss).
        self.set_class(bool(logs), "-has-lines")
        if not logs:
            return False
        # The list is trimmed from the front, so its length alone can repeat; with the newest entry
        # (compared by identity first) it cannot.
        utc = shows_utc(self)
        key = (len(logs), logs[-1], utc)
        if key == self._key:
            return False
        if utc != self._utc:
            self._utc = utc
            self._styled = {}  # every line's time changes zone
        self._key = key
        self._build(state, utc)
        self.refresh()  # the height is fixed by the layout: a new line never needs a relayout
        return True

    def _build(self, state: State, utc: bool) -> None:
        title = "Logs · " + _counts(state.log_counts)
        if self.border_title != title:
            self.border_title = title
        origin = (state.first_wall or 0.0) - (state.first_mono or 0.0)
        styled = self._styled
        kept: dict[int, tuple[LogEntry, Content]] = {}
        lines = []
        for entry in state.logs[-LINES_KEPT:]:
            hit = styled.get(id(entry))
            # Identity, not just the id: a trimmed entry's id may be reused by a new one.
            line = hit[1] if hit is not None and hit[0] is entry else _line(entry, origin, utc)
            kept[id(entry)] = (entry, line)
            lines.append(line)
        self._styled = kept
        self._lines = lines

    @property
    def text(self) -> str:
        # Joined on demand: joining LINES_KEPT styled lines on every new log line showed in profiles.
        return "\n".join(line.plain for line in self._lines)

    @property
    def shown_lines(self) -> list[str]:
        """The plain lines on screen now, oldest first."""
        return [line.plain for line in self._visible()]

    def _visible(self) -> list[Content]:
        height = self.size.height
        return self._lines[-height:] if height > 0 else []

    def render(self) -> Content:
        # Newest at the bottom: the tail that fits, so a resize or maximise needs no rebuild.
        return Content("\n").join(self._visible())


def _counts(counts: dict[str, int]) -> str:
    known = [level for level in LEVEL_ORDER if counts.get(level)]
    others = sorted(level for level in counts if level not in LEVEL_ORDER and counts[level])
    return " · ".join(f"{level} {count(counts[level])}" for level in (*known, *others))


def _line(entry: LogEntry, origin: float, utc: bool) -> Content:
    stamp = clock_time(origin + entry.mono, utc)
    style = LEVEL_LINE_STYLES.get(entry.level, "")
    source = f" {visible(entry.source)}" if entry.source else ""
    # Log lines are a stranger's text (and maybe from an old recording): shown, never obeyed.
    text = visible(" ".join(entry.text.splitlines()))
    return Content.assemble(
        (stamp, "$text-muted"),
        " ",
        (f"{visible(entry.level.upper()):<5}", style),
        (source, "bold"),
        " ",
        (text, "$error" if entry.level in ("fatal", "error") else ""),
        (visible(_telling_fields(entry)), "$text-muted"),
    )


_TELLING = ("id", "error", "err", "reason", "code", "exception")
FIELDS_SHOWN = 4
FIELD_CHARS = 80


def _telling_fields(entry: LogEntry) -> str:
    """For a warning or worse, the fields that say which connection and message, and what went wrong."""
    if not entry.fields or entry.level not in ("warn", "error", "fatal"):
        return ""
    shown = []
    for key, value in entry.fields.items():
        leaf = key.rpartition(".")[2].lower()
        if leaf.endswith(_TELLING) and value:
            first = value.partition("\n")[0]
            shown.append(f"{key}={first[:FIELD_CHARS]}")
            if len(shown) == FIELDS_SHOWN:
                break
    return "  " + " ".join(shown) if shown else ""
