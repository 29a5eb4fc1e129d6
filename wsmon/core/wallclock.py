"""Wall times as the report writes them: ISO 8601 in UTC to the millisecond, e.g.
``2025-06-15T15:06:40.000Z``, from a wall clock reading or from a monotonic instant of the session."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from wsmon.core.state import State


def clock_of(state: State) -> Callable[[float | None], str | None]:
    """Wall time of a monotonic instant, anchored on the session's last event."""

    def to_iso(mono: float | None) -> str | None:
        if mono is None or state.first_wall is None:
            return None
        return iso_utc(state.last_wall - (state.last_mono - mono))

    return to_iso


def iso_utc(wall: float | None) -> str | None:
    if wall is None or not math.isfinite(wall):
        return None
    stamp = datetime.fromtimestamp(wall, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return stamp[:-3] + "Z"
