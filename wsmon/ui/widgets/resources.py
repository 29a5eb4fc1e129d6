"""The server's CPU and RSS against their limits, with sparklines, and its threads, fds and sockets."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Sparkline

from wsmon.core.limits import DEFAULT_LIMITS, OK, Limit, format_value, level_of, live_value
from wsmon.core.state import Series, State
from wsmon.core.trend import TimeToLimit, all_time_to_limit
from wsmon.ui.format import LEVEL_STYLES, level_symbols
from wsmon.ui.widgets.text_panel import TextPanel

SPARK_SAMPLES = 180  # three minutes at one sample a second


def limit_for(limits: tuple[Limit, ...], kind: str) -> Limit:
    for limit in limits:
        if limit.kind == kind:
            return limit
    return next(limit for limit in DEFAULT_LIMITS if limit.kind == kind)


def current_level(state: State, limit: Limit, value: float | None) -> str:
    """The level as the judge sees it: hysteresis starts from the active alert, if any."""
    active = state.alerts.get(limit.figure)
    return level_of(limit, value, active.level if active is not None else OK)


class ResourcesPanel(Vertical):
    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    ResourcesPanel {
        border: round $primary-darken-1;
        border-title-color: $text;
        height: 1fr;
        padding: 0 1;
    }
    ResourcesPanel > Sparkline {
        height: 2;
        margin-bottom: 0;
    }
    """

    def compose(self) -> ComposeResult:
        yield TextPanel(id="cpu-line")
        yield Sparkline([], id="cpu-spark")
        yield TextPanel(id="rss-line")
        yield Sparkline([], id="rss-spark")
        yield TextPanel(id="process-line")
        yield TextPanel(id="trend-line")
        yield TextPanel(id="hint-line")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._series_keys: dict[str, tuple[int, float | None]] = {}

    def on_mount(self) -> None:
        self.border_title = "Server resources"

    def update_from(self, state: State, limits: tuple[Limit, ...]) -> None:
        self._figure("cpu", state, limit_for(limits, "cpu"), state.cpu, "CPU", " of one core")
        self._figure("rss", state, limit_for(limits, "rss"), state.rss_mib, "RSS", "")
        process = state.process
        key = None if process is None else (process.threads, process.fds, tuple(process.tcp.items()))
        self.query_one("#process-line", TextPanel).show(key, lambda: _process_text(state))
        # Trends cost a few ms each: recompute only when one of their series got a new sample.
        trend_key = tuple(
            (len(s.values), s.times[-1] if s.times else None)
            for s in (state.rss_mib, state.pg_connections, state.redis_used_mib)
        )
        rss_limit = limit_for(limits, "rss").value
        self.query_one("#trend-line", TextPanel).show(trend_key, lambda: _trend_text(state, rss_limit))
        hints = [
            (name, hint)
            for name, target in sorted(state.targets.items())
            if target.kind in ("process", "server", "websocket", "tap", "log")
            for hint in target.hints
        ]
        self.query_one("#hint-line", TextPanel).show(
            tuple(hints),
            lambda: Content.assemble(
                *_joined([(f"hint {name}: {hint}", "$warning") for name, hint in hints])
            ),
        )

    def _figure(self, name: str, state: State, limit: Limit, series: Series, label: str, basis: str) -> None:
        value = live_value(state, limit)
        level = current_level(state, limit, value)
        shown = format_value(value, limit.unit)
        peak = format_value(series.peak, limit.unit) if series.values else "—"
        verdict = "" if value is None else level
        mark = level_symbols(self).mark(verdict)
        line = self.query_one(f"#{name}-line", TextPanel)
        line.show(
            (shown, verdict, peak, limit.value, mark),
            lambda: Content.assemble(
                (f"{label} ", "bold"),
                (f"{shown}{basis}", LEVEL_STYLES.get(verdict, "")),
                (f"  {mark}{verdict.upper()}" if verdict else "", LEVEL_STYLES.get(verdict, "")),
                (f"   limit {limit.describe()} · peak {peak}", "$text-muted"),
            ),
        )
        # A sparkline repaints only when a new sample arrived, not on every tick.
        series_key = (len(series.values), series.times[-1] if series.times else None)
        if self._series_keys.get(name) != series_key:
            self._series_keys[name] = series_key
            self.query_one(f"#{name}-spark", Sparkline).data = series.values[-SPARK_SAMPLES:]


def _process_text(state: State) -> Content:
    process = state.process
    if process is None:
        return Content.styled("no process samples yet", "$text-muted")
    tcp = " ".join(f"{name} {n}" for name, n in sorted(process.tcp.items(), key=lambda i: -i[1])) or "—"
    return Content(
        f"pid {process.pid} · {process.processes} proc · threads {process.threads} · fds {process.fds}"
        f"\ntcp {tcp}"
    )


def _trend_text(state: State, rss_limit_mib: float) -> Content:
    trends = all_time_to_limit(state, rss_limit_mib)
    parts = []
    for trend in trends:
        soon = trend.eta_s is not None and trend.eta_s < 3600
        parts.append((_compact(trend), "$warning" if soon else "$text-muted"))
    return Content.assemble(*_joined(parts))


def _compact(trend: TimeToLimit) -> str:
    """The report's sentence, short enough for a panel: "RSS +3.1 MiB/min, 512 MiB in ~33 min"."""
    if trend.eta_s is None or trend.slope_per_min is None or trend.limit is None:
        return trend.text
    unit = f" {trend.unit}" if trend.unit else ""
    minutes = max(1, round(trend.eta_s / 60))
    return f"{trend.label} {trend.slope_per_min:+.1f}{unit}/min, {trend.limit:.0f}{unit} in ~{minutes} min"


def _joined(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        if i:
            out.append(("\n", ""))
        out.append(part)
    return out
