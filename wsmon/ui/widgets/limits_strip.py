"""Every limit's live value and level, and the alerts that are active now.

The figures are laid out for the width, each with its label kept whole on one line, so none is cut at
any size; an alert's headline and its history wrap the same way.
"""

from __future__ import annotations

from textual.content import Content

from wsmon.core.limits import (
    Limit,
    alert_headline,
    judged_value,
    live_value,
    shown_value,
    withheld_for_tap,
    worst_of,
)
from wsmon.core.state import State
from wsmon.ui.format import LEVEL_STYLES, LevelSymbols, coarse_age, level_symbols
from wsmon.ui.widgets.fitted_panel import FittedPanel, pack
from wsmon.ui.widgets.resources import current_level

SHORT_LABELS = {
    "connect_ms": "connect p95",
    "delivery_ms": "delivery p95",
    "db_ms": "db p95",
    "e2e_ms": "e2e p95",
    "connect_success": "connect ok",
    "delivery_success": "delivery ok",
    "rss_mib": "RSS",
    "cpu_percent": "CPU",
    "connections": "conns",
    "messages_per_s": "throughput",
}


class LimitsStrip(FittedPanel):
    DEFAULT_CSS = """
    LimitsStrip {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._figures_at: tuple[int, int] | None = None
        self._figures: tuple[Figure, ...] = ()

    def update_from(self, state: State, limits: tuple[Limit, ...]) -> bool:
        now = state.last_mono
        alerts = tuple(
            (
                a.figure,
                a.level,
                a.message,
                coarse_age(now - a.since_mono),
                state.breached.get(a.figure),
                float(a.value),
            )
            for a in state.alerts.values()
        )
        # A p95 over a minute of samples sorts the window: once a second (or on an alert) is plenty.
        figures_at = (int(now), state.alerts_raised + len(state.alerts))
        if figures_at != self._figures_at:
            self._figures_at = figures_at
            self._figures = tuple(_figure(state, limit) for limit in limits)
        figures = self._figures
        symbols = level_symbols(self)
        return self.show_fitted(
            (figures, alerts, symbols), lambda width: _build(figures, alerts, limits, symbols, width)
        )

    @property
    def figures(self) -> tuple[Figure, ...]:
        """Each limit's figure as the strip shows it now: (figure, as shown, level, value)."""
        return self._figures


def _figure(state: State, limit: Limit) -> Figure:
    value = live_value(state, limit)
    # A success ratio is coloured by its judged value (the upper end of its 95 % interval), and not at
    # all while it has too few attempts: its text says "n = 2, too few to judge" instead.
    judged = judged_value(state, limit) if limit.kind == "ratio" else value
    if withheld_for_tap(state, limit):  # "tap saturated — not judged": no colour either
        judged = None
    # Capacity targets are reported, not judged: colouring them would cry wolf on a quiet server.
    level = "" if limit.kind == "capacity" or judged is None else current_level(state, limit, judged)
    return (limit.figure, shown_value(state, limit), level, value)


Figure = tuple[str, str, str, float | None]  # figure, as shown, level, value
Alert = tuple[str, str, str, str, float | None, float]


def _build(
    figures: tuple[Figure, ...],
    alerts: tuple[Alert, ...],
    limits: tuple[Limit, ...],
    symbols: LevelSymbols,
    width: int,
) -> Content:
    units = [
        Content.assemble(
            (f"{SHORT_LABELS.get(figure, figure)} ", "$text-muted"),
            (symbols.mark(level) + shown, LEVEL_STYLES.get(level, "")),
        )
        for figure, shown, level, _ in figures
    ]
    lines = pack(units, width)
    if not alerts:
        return Content("\n").join([*lines, Content.styled("no active alerts", "$text-muted")])
    # Lead with the figure as it is now; the value it was raised at (and the worst) is history.
    current = {figure: (shown, value) for figure, shown, _, value in figures}
    by_figure = {limit.figure: limit for limit in limits}
    for figure, level, message, since, worst, raised_at in alerts:
        mark = (f"{symbols.mark(level)}{level.upper()} ", LEVEL_STYLES.get(level, ""))
        limit = by_figure.get(figure)
        if limit is None:  # an alert on a figure these limits do not know: all we have is its message
            lines += pack([Content.assemble(mark, f"{message or figure} for {since}")], width)
            continue
        now, value = current.get(figure, ("—", None))
        worst = worst_of(limit, worst, value) if worst is not None else None
        headline, history = alert_headline(limit, "no data" if now == "—" else now, worst, raised_at)
        lines += pack(
            [
                Content.assemble(mark, f"{headline} for {since}"),
                Content.styled(f"· {history}", "$text-muted"),
            ],
            width,
            " ",
        )
    return Content("\n").join(lines)
