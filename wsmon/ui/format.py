"""Small text formatters shared by the widgets: coarse ages, counts, wall-clock times, how a level looks."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import NamedTuple

from textual.dom import DOMNode

from wsmon.core.limits import BREACH, OK, WARN

# Theme variables (wsmon/ui/themes.py sets them from each theme's levels), so a level's colour and weight
# follow the active theme: t, ctrl+p → theme, NO_COLOR.
LEVEL_STYLES: dict[str, str] = {
    OK: "$wsmon-ok-style",
    WARN: "$wsmon-warn-style",
    BREACH: "$wsmon-breach-style",
}


class LevelSymbols(NamedTuple):
    """What a theme draws beside a judged figure and before an alert, so levels never differ by colour
    alone: every theme has them (these, unless its file names its own)."""

    ok: str = "✓"
    warn: str = "▲"
    breach: str = "✗"

    def mark(self, level: str) -> str:
        """The level's symbol and a space, or "" for a figure with no level (a capacity target)."""
        symbol = getattr(self, level, "") if level in self._fields else ""
        return f"{symbol} " if symbol else ""


def level_symbols(node: DOMNode) -> LevelSymbols:
    """The symbols of the theme the node's app shows now (the dashboard keeps them beside its theme)."""
    symbols = getattr(node.app, "level_symbols", None)
    return symbols if isinstance(symbols, LevelSymbols) else LevelSymbols()


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


def shows_utc(node: DOMNode) -> bool:
    """Whether the node's app shows wall-clock times in UTC (z toggles it) rather than local time."""
    return getattr(node.app, "utc_times", False) is True


def clock_time(wall: float, utc: bool) -> str:
    """HH:MM:SS in local time or UTC, for columns of times whose zone is said once (z toggles it)."""
    return time.strftime("%H:%M:%S", time.gmtime(wall) if utc else time.localtime(wall))


def wall_date(wall: float, utc: bool) -> str:
    """The day of a wall-clock time, 2025-06-15, in local time or UTC."""
    return time.strftime("%Y-%m-%d", time.gmtime(wall) if utc else time.localtime(wall))


def wall_clock(wall: float, utc: bool) -> str:
    """A wall-clock time with its zone: '14:03:07 UTC', or local with the zone's abbreviation."""
    if utc:
        return time.strftime("%H:%M:%S UTC", time.gmtime(wall))
    return time.strftime("%H:%M:%S %Z", time.localtime(wall))


def wall_clock_ms(wall: float, utc: bool, *, date: bool = False) -> str:
    """HH:MM:SS.mmm in local time or UTC, the zone said once beside the column (zone_name); with
    ``date``, '2025-06-15 15:06:40.000 UTC', the date and the zone's name included."""
    moment = datetime.fromtimestamp(wall, tz=UTC) if utc else datetime.fromtimestamp(wall).astimezone()
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S.%f" if date else "%H:%M:%S.%f")[:-3]
    return f"{stamp} {moment.tzname()}" if date else stamp


def zone_name(wall: float, utc: bool) -> str:
    """'UTC', or 'local time, CET': the zone the times of a column are in (at ``wall``)."""
    return "UTC" if utc else f"local time, {time.strftime('%Z', time.localtime(wall))}"
