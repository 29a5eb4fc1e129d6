"""`Export view` (ctrl+p): what the dashboard shows now, as JSON Lines.

The first line is the view itself: when (the session's time and the time of writing, UTC ISO 8601), the
title and mode, the table's filter, sort and summary line, the header's lines, every limit's figure as
the strip shows it (label, value, level) and the active alerts. Then one line a connections-table row,
in the order shown, after the filter: the cells as the table shows them, keyed by column. Written to
``wsmon-view-YYYYmmdd-HHMMSS.jsonl`` (local time) in the current directory, never over a file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec

from wsmon.core.state import State
from wsmon.core.wallclock import iso_utc
from wsmon.ui.exports import new_path
from wsmon.ui.widgets.connections_table import ConnectionsTable
from wsmon.ui.widgets.limits_strip import SHORT_LABELS, Figure

# The table's columns as keys of a row's line, in COLUMNS order (the first, untitled, is the probe mark).
ROW_KEYS = ("own", "id", "peer", "state", "age", "msgs_in", "msgs_out", "last_close", "closed_by")


def view_path(directory: Path, now: float) -> Path:
    return new_path(directory, time.strftime("wsmon-view-%Y%m%d-%H%M%S", time.localtime(now)))


def view_lines(
    state: State,
    *,
    title: str,
    mode: str,
    header: str,
    figures: tuple[Figure, ...],
    table: ConnectionsTable,
    written: float,
) -> bytes:
    view: dict[str, Any] = {
        "kind": "view",
        "written": iso_utc(written),
        "at": iso_utc(state.last_wall) if state.first_wall is not None else None,
        "title": title,
        "mode": mode,
        "filter": table.filter_text,
        "sort": table.sort_title or "default",
        "summary": table.summary,
        "header": header.splitlines(),
        "limits": [
            {"figure": figure, "label": SHORT_LABELS.get(figure, figure), "shown": shown, "level": level}
            for figure, shown, level, _ in figures
        ],
        "alerts": [
            {"figure": alert.figure, "level": alert.level, "message": alert.message}
            for alert in state.alerts.values()
        ],
    }
    lines = [view]
    for cells in table.shown_rows():
        row: dict[str, Any] = {"kind": "row", **dict(zip(ROW_KEYS, cells, strict=True))}
        row["own"] = cells[0].strip() != ""
        lines.append(row)
    return b"".join(msgspec.json.encode(line) + b"\n" for line in lines)


__all__ = ["ROW_KEYS", "view_lines", "view_path"]
