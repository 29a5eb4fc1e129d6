"""Which rows of panels a short terminal drops, least important first, and the line that says so.

The header, the limits strip and the connections table always stay: they hold the targets' states, every
limit's figure, the breaches and the connections. Below them, the log tail goes first (the log's counts
are in its title, its errors in the failures panel), then the attach targets' row (their states are in
the header), then the close-codes / failures / resources row. A dropped row is named, with the key that
shows it maximised, so nothing is hidden without saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

# The connections table keeps its summary, its column names and three rows (with its border).
CONNECTIONS_MIN = 7
NOTE_ROWS = 1


@dataclass(frozen=True)
class Row:
    name: str  # the app's class "-hide-<name>" hides it (wsmon.tcss)
    label: str
    keys: str
    height: int
    crowded_height: int  # its height under -crowded (wsmon.tcss)


# Least important first: the order rows are dropped in.
ROWS = (
    Row("logs", "Logs", "7", 8, 5),
    Row("targets", "Redis/PostgreSQL/HTTP", "5 6 8", 12, 11),
    Row("panels", "close codes, failures, resources", "2 3 4", 14, 10),
)


def rows_to_drop(room: int, shown: frozenset[str], *, crowded: bool) -> tuple[Row, ...]:
    """The rows to drop so the connections table keeps ``CONNECTIONS_MIN`` lines of ``room``.

    ``room`` is the screen's height less the header, the limits strip and the footer; ``shown`` names
    the rows that have something to show.
    """
    heights = {row.name: row.crowded_height if crowded else row.height for row in ROWS if row.name in shown}
    need = CONNECTIONS_MIN + sum(heights.values())
    dropped: list[Row] = []
    for row in ROWS:
        if need <= room - (NOTE_ROWS if dropped else 0):
            break
        if row.name in heights:
            need -= heights[row.name]
            dropped.append(row)
    return tuple(dropped)


def hidden_note(dropped: tuple[Row, ...]) -> list[str]:
    """One phrase per dropped row: what it is and the key that shows it."""
    return [f"{row.label} hidden · {row.keys} to show" for row in dropped]
