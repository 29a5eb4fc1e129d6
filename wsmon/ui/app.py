"""The dashboard: reads the session's State a few times a second and shows it.

It never does I/O and never reacts per event: a timer at ``refresh_hz`` reads ``feed.state``, and
each widget compares what it would show with what it shows, repainting only what changed.

The replay's actions and palette commands (step, span, bookmarks, anomalies, seek, speed) are in
``replay_actions.py``, the base class this app builds on; their bindings stay here with the others, so
help and ctrl+p, generated from the bindings, list every key in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import Theme
from textual.widget import Widget
from textual.widgets import Footer, Input
from textual.worker import Worker

from wsmon.core.limits import BREACH
from wsmon.core.sanitize import visible
from wsmon.core.state import State
from wsmon.ui.connection_screen import ConnectionScreen
from wsmon.ui.exports import write_new
from wsmon.ui.feed import Feed, LiveMarkers, ReplayControls
from wsmon.ui.format import LevelSymbols, wall_clock
from wsmon.ui.help_screen import HelpScreen, action_name, declared_bindings, key_sections
from wsmon.ui.layout import ROWS, hidden_note, rows_to_drop
from wsmon.ui.replay_actions import ReplayActions
from wsmon.ui.seek_screen import MarkerScreen
from wsmon.ui.themes import ThemeSetup, WsmonTheme, default_catalogue
from wsmon.ui.view_export import view_lines, view_path
from wsmon.ui.widgets import (
    CloseCodesPanel,
    ConnectionsTable,
    FailuresPanel,
    HeaderBar,
    HiddenNote,
    HttpPanel,
    LimitsStrip,
    LogPanel,
    PostgresPanel,
    RedisPanel,
    ReplayBar,
    ResourcesPanel,
    TrendsPanel,
)

# Digit → the panel it maximises, and its name in the palette; 0 goes back to all panels.
PANELS: dict[str, tuple[str, str]] = {
    "1": ("#connections", "Connections"),
    "2": ("#close-codes", "Close codes"),
    "3": ("#failures", "Delivery failures"),
    "4": ("#resources", "Server resources"),
    "5": ("#redis", "Redis"),
    "6": ("#postgres", "PostgreSQL"),
    "7": ("#logs", "Logs"),
    "8": ("#http", "HTTP"),
    "9": ("#trends", "Trends"),  # shown only maximised
}
# Frames a second. Live, once a second, as top (3 s), htop (1.5 s) and Dolphie (1 s) do: drawing is most
# of what the dashboard costs (1.6 % of a core at 50 clients, live against paused), and a second table
# frame a second was 0.9 of it (docs/performance.md). A replay's steps and seeks are the user's own:
# they draw twice as often. Keys draw at once either way.
LIVE_REFRESH_HZ = 1.0
REPLAY_REFRESH_HZ = 2.0
# The figures and the log tail are redrawn once a second whatever the frame rate; the table every frame.
FIGURES_EVERY_S = 1.0
REPLAY_ACTIONS = frozenset(
    {"step", "step_time", "span", "faster", "slower", "anomaly", "seek", "bookmark", "next_bookmark"}
)
# The help's sections, by action; a binding whose action is not here is listed under "Other".
KEY_SECTIONS: dict[str, str] = {
    **dict.fromkeys(
        ("quit", "help", "filter", "back", "pause", "marker", "cycle_theme", "toggle_utc", "command_palette"),
        "Session",
    ),
    "panel": "Panels",
    **dict.fromkeys(REPLAY_ACTIONS, "Replay (wsmon replay FILE)"),
}
SECTION_ORDER = ("Session", "Connections table", "Panels", "Replay (wsmon replay FILE)", "Other")
PANEL_HELP = (
    "maximise 1 connections, 2 close codes, 3 failures, 4 resources, 5 Redis, 6 PostgreSQL, 7 logs, 8 HTTP, "
    "9 trends; 0 all"
)
MARKER_TEXT = "marked on the dashboard"  # a live marker's text when none is typed
MAX_MARKER_CHARS = 500  # as a test suite's markers (sources/markers.py)
# Below this many rows, with the attach targets or logs shown, the lower rows shrink (see wsmon.tcss)
# so the connections table keeps a few rows.
CROWDED_BELOW = 48


class WsmonApp(ReplayActions):
    # Absolute, because Textual resolves a relative CSS_PATH beside whichever module subclasses the app.
    CSS_PATH = Path(__file__).with_name("wsmon.tcss")
    TITLE = "wsmon"
    ESCAPE_TO_MINIMIZE = False  # esc is "back", which also restores a maximised panel
    ALLOW_IN_MAXIMIZED_VIEW = "HeaderBar, LimitsStrip, ReplayBar, Footer, #filter"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "q", "quit", "Quit", tooltip="stops the session and closes the recording first; twice forces"
        ),
        Binding("question_mark", "help", "Help", tooltip="this screen"),
        Binding(
            "slash",
            "filter",
            "Filter",
            tooltip="code:1006 state:closed peer:10.0. by:neither reason:bye id:c-4, "
            "or words: whole ids, codes, reasons; enter returns to the table",
        ),
        Binding("escape", "back", "Back", show=False, tooltip="clear the filter, restore a maximised panel"),
        Binding("space", "pause", "Pause", tooltip="live: freeze the screen (the session goes on)"),
        *(
            Binding(digit, f"panel('{digit}')", "Panels", show=digit == "1", tooltip=PANEL_HELP)
            for digit in (*PANELS, "0")
        ),
        Binding("left", "step_time(-1)", "Back", priority=True, tooltip="back by the span on the replay bar"),
        Binding(
            "right", "step_time(1)", "Forward", priority=True, tooltip="forward by the span on the replay bar"
        ),
        Binding(
            "left_square_bracket",
            "span(-1)",
            "Shorter span",
            show=False,
            tooltip="← / → step 1 s, 10 s, 1 min",
        ),
        Binding(
            "right_square_bracket",
            "span(1)",
            "Longer span",
            show=False,
            tooltip="← / → step 1 s, 10 s, 1 min",
        ),
        Binding("comma", "step(-1)", "Event back", show=False, tooltip="one event back"),
        Binding("full_stop", "step(1)", "Event forward", show=False, tooltip="one event forward"),
        Binding("plus", "faster", "Faster", priority=True, tooltip="double the replay speed"),
        Binding("minus", "slower", "Slower", priority=True, tooltip="halve the replay speed"),
        Binding("n", "anomaly(1)", "Next anomaly", tooltip="abnormal close, delivery failure, alert, outage"),
        Binding("N", "anomaly(-1)", "Previous anomaly", show=False),
        # Not g: g g is the top of the table, as in less and k9s; ':' goes to a place, as in vi.
        Binding("colon", "seek", "Seek", tooltip="go to a moment: 50%, 1:30 or 90s from the start"),
        Binding(
            "m",
            "bookmark",
            "Bookmark",
            tooltip="this moment, kept beside the recording; ctrl+p lists them",
        ),
        # m in a live session: a marker (bookmark, above, answers only in a replay).
        Binding(
            "m",
            "marker",
            "Marker",
            tooltip="live: a marker, now, in the session and its recording, as a test suite's markers "
            "(the report and a replay's ctrl+p list them)",
        ),
        Binding("b", "next_bookmark(1)", "Next bookmark", show=False, tooltip="jump to the next bookmark"),
        Binding(
            "B", "next_bookmark(-1)", "Previous bookmark", show=False, tooltip="jump to the previous bookmark"
        ),
        Binding(
            "t", "cycle_theme", "Theme", show=False, tooltip="the next of wsmon's themes; kept for next time"
        ),
        Binding("z", "toggle_utc", "Local/UTC", show=False, tooltip="wall-clock times in local time or UTC"),
    ]

    def __init__(
        self, feed: Feed, *, refresh_hz: float | None = None, themes: ThemeSetup | None = None
    ) -> None:
        super().__init__()
        self.feed = feed
        self._replay = feed if isinstance(feed, ReplayControls) else None
        if refresh_hz is None:
            refresh_hz = REPLAY_REFRESH_HZ if self._replay is not None else LIVE_REFRESH_HZ
        self.refresh_hz = refresh_hz
        self._figures_every = max(1, round(refresh_hz * FIGURES_EVERY_S))
        # Every theme the creator found (wsmon.themes), registered so ctrl+p lists them; without any,
        # Textual's and the default. Nothing is remembered unless the creator says where.
        themes = ThemeSetup(default_catalogue()) if themes is None else themes
        self._themes = themes.catalogue
        self._theme_notes = themes.notes
        self._remember_theme = themes.remember
        for known in self._themes.themes.values():
            self.register_theme(self._as_shown(known).textual_theme())
        self.theme = themes.start
        self.level_symbols: LevelSymbols = self._as_shown(self._themes.themes[self.theme]).symbols
        self._stamp: tuple[object, ...] | None = None
        self._ticks = 0
        self._behind = False  # a throttled panel skipped the last frame: catch up even if nothing new
        self._stopping = False
        self._feed_worker: Worker[None] | None = None
        self.utc_times = False  # wall-clock times in local time with its zone; z: UTC (format.shows_utc)
        # What the last toast check saw: each target's up/down, and the figures in breach.
        self._seen: tuple[dict[str, bool | None], frozenset[str]] | None = None

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield LimitsStrip(id="limits")
        if self._replay is not None:
            yield ReplayBar(id="replay-bar")
        yield ConnectionsTable(id="connections")
        with Horizontal(id="panels"):
            yield CloseCodesPanel(id="close-codes")
            yield FailuresPanel(id="failures")
            yield ResourcesPanel(id="resources")
        # The attach targets' row and the log lines take room only once there is something to show.
        with Horizontal(id="targets"):
            yield RedisPanel(id="redis")
            yield PostgresPanel(id="postgres")
            yield HttpPanel(id="http")
        yield LogPanel(id="logs")
        yield TrendsPanel(id="trends")
        yield Input(
            placeholder="filter: code:1006 state:closed peer:10.0. by:neither, or ids, codes, reasons",
            id="filter",
        )
        yield HiddenNote(id="hidden")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.feed.title
        self._feed_worker = self.run_worker(self._run_feed(), name="feed", exit_on_error=True)
        self.set_interval(1.0 / self.refresh_hz, self._frame)
        self.refresh_from_state()
        self.query_one(ConnectionsTable).focus()
        for note in self._theme_notes:
            self.notify(note, severity="error", timeout=10, markup=False)
        for note in self._replay.take_notes() if self._replay is not None else ():
            self.notify(visible(note), severity="warning", timeout=10, markup=False)
        # Subscribed only now, so the theme set at start is not taken for a choice to remember.
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    async def _run_feed(self) -> None:
        await self.feed.run()
        self.exit(0)

    # --- the tick --------------------------------------------------------------------------------

    def _frame(self) -> None:
        # Panels repaint at the rate their content is worth; repainting is what a frame costs (measured
        # in a real terminal, docs/performance.md), and a frame that changes nothing costs nothing.
        self._ticks += 1
        try:
            due = self._ticks % self._figures_every == 0
            self.refresh_from_state(figures=due, logs=due)
        except NoMatches:
            # Closing: Textual removes the screen's widgets before it stops the app's timers, and a tick
            # can fall between (seen at 10 frames a second in tests/test_follow.py).
            return

    def refresh_from_state(self, *, figures: bool = True, logs: bool = True) -> None:
        """Show the State as it is now; the timer calls this, tests may call it directly."""
        feed = self.feed
        state = feed.state
        replay = self._replay
        speed = replay.speed if replay is not None else None
        progress = replay.progress if replay is not None else None
        if replay is not None:
            self._update_replay_bar(replay)
        # A live pause freezes the screen (as in top); the session and the recording go on.
        frozen = feed.paused and replay is None
        # The mode and notice too: a followed recording's "no new events for N s" changes with no event.
        seen = (feed.paused, speed, progress, feed.mode, feed.notice, self._stopping)
        stamp = (None if frozen else state.seq, *seen)
        if stamp == self._stamp and not self._behind:
            return  # nothing happened since the last frame: do nothing at all
        self._stamp = stamp
        self._behind = not (figures and logs) and not frozen
        if not frozen:
            self.query_one(ConnectionsTable).update_from(state)
        if figures or frozen:
            self.query_one(HeaderBar).update_from(
                state,
                title=feed.title + ("  · stopping…" if self._stopping else ""),
                mode=feed.mode,
                paused=feed.paused,
                speed=speed,
                progress=progress,
                notice=feed.notice,
            )
        if figures and not frozen:
            self.query_one(LimitsStrip).update_from(state, feed.limits)
            self.query_one(CloseCodesPanel).update_from(state)
            self.query_one(FailuresPanel).update_from(state, feed.limits)
            self.query_one(ResourcesPanel).update_from(state, feed.limits)
            self.query_one(TrendsPanel).update_from(state, feed.limits)
            self._update_targets(state, feed)
            self._toast_changes(state)
        if logs and not frozen:
            self.query_one(LogPanel).update_from(state)
        self._fit_rows()

    def _update_replay_bar(self, replay: ReplayControls) -> None:
        # Every frame, not only when events arrive: the replay's clock moves between them.
        self.query_one(ReplayBar).update_from(
            replay.wall_times, span_s=replay.span_s, bookmarks=replay.bookmarks()
        )

    def _update_targets(self, state: State, feed: Feed) -> None:
        """The Redis, PostgreSQL and HTTP panels, and their row, which shows when any of them does."""
        redis = self.query_one(RedisPanel)
        postgres = self.query_one(PostgresPanel)
        http = self.query_one(HttpPanel)
        redis.update_from(state)
        postgres.update_from(state, feed.limits)
        http.update_from(state)
        # A class, not display: a short terminal hides the row by the app's class (wsmon.tcss).
        self.query_one("#targets", Horizontal).set_class(
            redis.display or postgres.display or http.display, "-shown"
        )

    def _toast_changes(self, state: State) -> None:
        """A toast when a target goes down or comes back, and when a figure reaches breach.

        Only changes between two frames: what was already so when the dashboard opened (or before a
        seek) is on screen, not news.
        """
        ups = {name: target.up for name, target in state.targets.items()}
        breaches = frozenset(figure for figure, alert in state.alerts.items() if alert.level == BREACH)
        seen = self._seen
        self._seen = (ups, breaches)
        if seen is None:
            return
        was_up, was_breached = seen
        for name, up in ups.items():
            before = was_up.get(name)
            if before is not False and up is False:
                error = state.targets[name].error
                self.notify(
                    visible(f"{name} DOWN" + (f": {error}" if error else "")), severity="error", markup=False
                )
            elif before is False and up:
                self.notify(visible(f"{name} is back UP"), timeout=4, markup=False)
        for figure in sorted(breaches - was_breached):
            alert = state.alerts[figure]
            self.notify(visible(f"BREACH {alert.message or figure}"), severity="error", markup=False)

    def _fit_rows(self, height: int | None = None) -> None:
        """Mark the app crowded when the extra rows would squeeze the connections table, and drop rows
        (wsmon.ui.layout) a short terminal has no room for (wsmon.tcss)."""
        height = self.size.height if height is None else height
        shown = frozenset(
            name
            for name, present in (
                ("panels", True),
                ("targets", self.query_one("#targets", Horizontal).has_class("-shown")),
                ("logs", self.query_one(LogPanel).has_class("-has-lines")),
            )
            if present
        )
        crowded = len(shown) > 1 and height < CROWDED_BELOW
        if self.has_class("-crowded") != crowded:
            self.set_class(crowded, "-crowded")
        # The header, the strip and the replay bar are laid out for the width: their lines are their heights.
        bars = (*self.query(HeaderBar), *self.query(LimitsStrip), *self.query(ReplayBar))
        fixed = sum(bar.text.count("\n") + 1 for bar in bars)
        dropped = rows_to_drop(height - fixed - 1, shown, crowded=crowded)  # 1: the footer
        for row in ROWS:
            if self.has_class(f"-hide-{row.name}") != (row in dropped):
                self.set_class(row in dropped, f"-hide-{row.name}")
        self.query_one(HiddenNote).update_from(hidden_note(dropped))

    def on_fitted_panel_refitted(self) -> None:
        self._fit_rows()

    def on_resize(self, event: events.Resize) -> None:
        # This runs before App's own handler has taken the new size: read it from the event.
        self._fit_rows(event.size.height)

    # --- themes ----------------------------------------------------------------------------------

    def _as_shown(self, theme: WsmonTheme) -> WsmonTheme:
        # Textual greys every colour under NO_COLOR: levels then differ by symbol and weight instead.
        return theme.monochrome() if self.no_color else theme

    def _theme_changed(self, theme: Theme) -> None:
        """A theme picked with t or ctrl+p: draw its symbols now and keep it for the next start."""
        known = self._themes.themes.get(theme.name)
        self.level_symbols = self._as_shown(known).symbols if known is not None else LevelSymbols()
        if self._remember_theme is not None:
            self._remember_theme(
                theme.name, lambda line: self.notify(line, severity="warning", timeout=6, markup=False)
            )
        self._stamp = None  # repaint even if nothing else changed since the last frame
        self.refresh_from_state()

    def action_cycle_theme(self) -> None:
        """The next of wsmon's themes (Textual's own are in ctrl+p)."""
        names = self._themes.cycle_names()
        at = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(at + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    # --- actions ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REPLAY_ACTIONS:
            return self._replay is not None
        if action == "marker":
            return isinstance(self.feed, LiveMarkers)
        return True

    async def action_quit(self) -> None:
        """Ask the session to stop; the app exits when its run() returns (recordings closed)."""
        worker = self._feed_worker
        if self._stopping or worker is None or worker.is_finished:
            self.exit(0)
            return
        self._stopping = True
        self.feed.stop()
        self.refresh_from_state()

    def key_help_groups(self) -> list[tuple[str, list[Binding]]]:
        """Every binding of the app and the connections table, by help section (see KEY_SECTIONS)."""
        palette = Binding(
            self.COMMAND_PALETTE_BINDING,
            "command_palette",
            "Commands",
            tooltip="wsmon's commands (panels, pause, filter, sort, themes, export view, markers, seek) "
            "and Textual's",
        )
        by_section: dict[str, list[Binding]] = {title: [] for title in SECTION_ORDER}
        by_section["Connections table"] = declared_bindings(ConnectionsTable)
        for binding in (*declared_bindings(type(self)), palette):
            by_section[KEY_SECTIONS.get(action_name(binding), "Other")].append(binding)
        return list(by_section.items())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(key_sections(self.key_help_groups(), self.get_key_display)))

    def action_open_connection(self) -> None:
        """Enter in the connections table (its binding): the cursor row's drill-down."""
        conn_id = self.query_one(ConnectionsTable).cursor_row
        if conn_id is not None:
            self.push_screen(ConnectionScreen(conn_id, lambda: self.feed.state))

    def action_marker(self) -> None:
        """m in a live session: a marker with the text typed (or MARKER_TEXT), into the session."""
        feed = self.feed
        if not isinstance(feed, LiveMarkers):
            return

        def done(text: str | None) -> None:
            if text is None:
                return
            marked = (text.strip() or MARKER_TEXT)[:MAX_MARKER_CHARS]
            feed.marker(marked)
            wall = self.feed.state.last_wall
            self.notify(
                visible(f"marker {wall_clock(wall, self.utc_times)}: {marked}"), timeout=4, markup=False
            )
            self.refresh_from_state()

        self.push_screen(MarkerScreen(MARKER_TEXT), done)

    def action_export_view(self) -> None:
        """ctrl+p → Export view: the table's rows as shown and the figures, as JSON Lines (view_export)."""
        now = time.time()
        path = view_path(Path.cwd(), now)
        table = self.query_one(ConnectionsTable)
        data = view_lines(
            self.feed.state,
            title=self.feed.title,
            mode=self.feed.mode,
            header=self.query_one(HeaderBar).text,
            figures=self.query_one(LimitsStrip).figures,
            table=table,
            written=now,
        )
        problem = write_new(path, data)
        if problem is not None:
            self.notify(visible(f"export failed: {problem}"), severity="error", timeout=6, markup=False)
            return
        rows = len(table.row_ids)
        self.notify(visible(f"view exported to {path} ({rows} rows)"), timeout=6, markup=False)

    def action_pause(self) -> None:
        self.feed.toggle_pause()
        self.refresh_from_state()

    def action_panel(self, digit: str) -> None:
        if digit == "0" or digit not in PANELS:
            self.screen.minimize()
            return
        panel = self.query_one(PANELS[digit][0], Widget)
        # The log panel may be hidden for room; the trends panel is only ever shown maximised.
        if not (panel.display or panel.has_class("-has-lines") or isinstance(panel, TrendsPanel)):
            self.notify(f"{panel.border_title}: nothing to show yet", timeout=2)
            return
        self.screen.maximize(panel, container=False)

    def action_toggle_utc(self) -> None:
        self.utc_times = not self.utc_times
        self.notify(f"times in {'UTC' if self.utc_times else 'local time'}", timeout=2)
        self._stamp = None  # repaint even if nothing else changed since the last frame
        self.refresh_from_state()
        if isinstance(self.screen, ConnectionScreen):  # z from the drill-down: its times now, too
            self.screen.refresh_from_state()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("-shown")
        field.focus()

    def action_back(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_class("-shown"):
            field.value = ""
            field.remove_class("-shown")
            self.query_one(ConnectionsTable).focus()
        elif self.screen.maximized is not None:
            self.screen.minimize()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(ConnectionsTable).filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(ConnectionsTable).focus()

    def toggle_panel(self, digit: str) -> None:
        """Maximise the panel, or restore all panels when it already is."""
        if self.screen.maximized is self.query_one(PANELS[digit][0], Widget):
            self.action_panel("0")
        else:
            self.action_panel(digit)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's commands, then wsmon's (replay ones only in a replay)."""
        yield from super().get_system_commands(screen)
        table = self.query_one(ConnectionsTable)
        for digit, (_, name) in PANELS.items():
            yield SystemCommand(
                f"Panel: {name}",
                f"maximise {name}, or restore all panels ({digit} / 0)",
                lambda digit=digit: self.toggle_panel(digit),
            )
        yield SystemCommand("Pause / resume", "space", self.action_pause)
        yield SystemCommand("Times: local / UTC", "z", self.action_toggle_utc)
        yield SystemCommand(
            "Filter connections", "/ — code:1006 state:closed peer:10.0. …", self.action_filter
        )
        yield SystemCommand("Sort connections by the next column", "s", table.action_sort)
        yield SystemCommand("Reverse the connections' order", "S", table.action_reverse_sort)
        yield SystemCommand(
            "Export view",
            "the connections as filtered and sorted, and the figures, to wsmon-view-….jsonl here",
            self.action_export_view,
        )
        if isinstance(self.feed, LiveMarkers):
            yield SystemCommand(
                "Add marker",
                "m — now, in the session and its recording",
                self.action_marker,
            )
        yield SystemCommand("Help: keys and symbols", "?", self.action_help)
        yield SystemCommand("Theme: next of wsmon's", "t (kept for next time)", self.action_cycle_theme)
        for name in self._themes.cycle_names():
            yield SystemCommand(
                f"Theme: {name}", "kept for next time", lambda name=name: self._set_theme(name)
            )
        yield from self.replay_commands()

    def _set_theme(self, name: str) -> None:
        self.theme = name


def run_dashboard(feed: Feed, *, refresh_hz: float | None = None, themes: ThemeSetup | None = None) -> int:
    """Run the dashboard until the session ends or the user quits; returns the app's exit code."""
    app = WsmonApp(feed, refresh_hz=refresh_hz, themes=themes)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
