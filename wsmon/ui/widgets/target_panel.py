"""What the Redis, PostgreSQL and HTTP panels share: finding their targets, UP/DOWN lines, sizes.

A target panel is shown only while a target of one of its kinds exists, so an unconfigured Redis
takes no room (the header already says "not configured").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from textual.content import Content

from wsmon.core.state import State, TargetState
from wsmon.ui.format import LEVEL_STYLES, coarse_age
from wsmon.ui.widgets.text_panel import TextPanel

WARN_FILL = 0.8  # memory and connection slots turn warn at 80 % full and breach at 100 %
Part = str | tuple[str, str] | Content


class TargetPanel(TextPanel):
    """A bordered TextPanel that hides itself while no target of ``KINDS`` exists."""

    KINDS: frozenset[str] = frozenset()
    TITLE = ""

    DEFAULT_CSS = """
    TargetPanel {
        border: round $primary-darken-1;
        border-title-color: $text;
        height: 1fr;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = self.TITLE

    def targets_of(self, state: State) -> list[TargetState]:
        kinds = self.KINDS
        return [target for target in state.targets.values() if target.kind in kinds]

    def show_if(self, present: bool) -> bool:
        """Show or hide the panel; returns ``present`` so callers can stop early when hidden."""
        if self.display != present:
            self.display = present
        return present


def status_key(target: TargetState, now: float) -> tuple[object, ...]:
    """What a target's status line is a function of: its age moves once a second at most."""
    since = None if target.since_mono is None else coarse_age(now - target.since_mono)
    return (target.status, since, target.error, len(target.hints))


def status_parts(target: TargetState, now: float) -> list[Part]:
    """'UP 3m' / 'DOWN 12s · connection refused' / 'pending', coloured."""
    since = f" {coarse_age(now - target.since_mono)}" if target.since_mono is not None else ""
    if target.starting:
        parts: list[Part] = [("STARTING", "bold $warning"), since]
        if target.error:
            parts.append((f" · {target.error}", "$text-muted"))
        return parts
    if target.up is None:
        return [("pending", "$text-muted")]
    if target.up and target.saturated_since is not None:
        return [("SATURATED", "bold $warning"), f" {coarse_age(now - target.saturated_since)}"]
    if target.up:
        return [("UP", "bold $success"), since]
    parts = [(down_word(target), "bold $error"), since]
    if target.error:
        parts.append((f" · {target.error}", "$error"))
    return parts


def down_word(target: TargetState) -> str:
    """DOWN, or STOPPED for a process that is alive but stopped (SIGSTOP): it comes back by itself."""
    return "STOPPED" if target.error_kind == "stopped" else "DOWN"


def hint_lines(targets: Iterable[TargetState]) -> list[Content]:
    return [Content.styled(f"hint: {hint}", "$warning") for target in targets for hint in target.hints]


def fill_style(ratio: float | None) -> str:
    """The level colour of how full something is (memory, connection slots)."""
    if ratio is None or math.isnan(ratio):
        return ""
    if ratio >= 1.0:
        return LEVEL_STYLES["breach"]
    if ratio >= WARN_FILL:
        return LEVEL_STYLES["warn"]
    return LEVEL_STYLES["ok"]


def size(n: float | None) -> str:
    """Bytes in binary units, as Redis's INFO shows them (used_memory_human)."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def seconds(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.1f} s" if value < 100 else coarse_age(value)


def rate(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def one_line(text: str, width: int) -> str:
    """A query or command on one line, cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def window_ms(state: State, kind: str) -> tuple[float, float]:
    """p50 and p95 of the last minute of ``kind`` latency samples (NaN without samples)."""
    dist = state.latency.get(kind)
    if dist is None or not dist.window_t:
        return (math.nan, math.nan)
    p50, p95 = dist.window_percentiles(state.last_mono, (50, 95))
    return (p50, p95)
