"""Small text formatters shared by the widgets: coarse ages, counts, level colours."""

from __future__ import annotations

import math

from wsmon.core.limits import BREACH, OK, WARN

# Textual theme variables, so levels follow the active theme (ctrl+p → theme).
LEVEL_STYLES: dict[str, str] = {OK: "$success", WARN: "$warning", BREACH: "bold $error"}


def coarse_age(seconds: float | None) -> str:
    """Whole seconds under a minute, whole minutes under an hour: a row's age changes rarely."""
    if seconds is None or math.isnan(seconds):
        return "—"
    s = int(seconds) if seconds > 0 else 0
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    hours, rest = divmod(s, 3600)
    return f"{hours}h{rest // 60:02d}m"


def clock(seconds: float) -> str:
    """Elapsed time as H:MM:SS."""
    s = int(seconds) if seconds > 0 else 0
    hours, rest = divmod(s, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def count(n: int) -> str:
    return f"{n:,}"


def percent(ratio: float) -> str:
    """A success ratio (0…1) as the limits table shows it; NaN when nothing was attempted."""
    if math.isnan(ratio):
        return "—"
    value = ratio * 100.0
    return f"{value:.2f} %" if value >= 99 else f"{value:.1f} %"
