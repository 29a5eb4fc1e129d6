"""The connections table's default order, kept sorted as State changes rather than re-sorted each frame.

With 10,000 tracked connections a full sort costs ~20 ms a frame, yet between two frames only the rows
that opened, closed or went away can move: traffic does not change a row's place. Each row's
``updated_seq`` says which rows changed since the last frame; only those are looked at, and a row whose
key changed is taken out of the sorted list and put back in by bisection.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from wsmon.core.state import Connection, ConnState, State

OrderKey = tuple[int, float, str]
_FIRST_CLOSED: tuple[int] = (1,)  # sorts before every closed row's key and after every open one's


def order_key(conn: Connection) -> OrderKey:
    # Open first, newest first; then closed, most recently closed first. Traffic does not move a row,
    # so fifty busy connections do not reshuffle the screen four times a second.
    if conn.state == ConnState.CLOSED:
        return (1, -(conn.closed_mono or 0.0), conn.id)
    return (0, -(conn.opened_mono if conn.opened_mono is not None else float("inf")), conn.id)


class DefaultOrder:
    """Every connection the table shows (a tapped connection's server-log mirror is left out), in order."""

    def __init__(self) -> None:
        self._state: State | None = None
        self._connections: dict[str, Connection] | None = None
        self._seq = -1
        self._keys: dict[str, OrderKey] = {}
        self._ordered: list[OrderKey] = []  # the keys end with the id, so each is unique

    def rows(self, state: State) -> list[Connection]:
        """A new list each call: the caller may filter, sort or reverse it."""
        self._catch_up(state)
        connections = state.connections
        return [connections[key[2]] for key in self._ordered]

    @property
    def closed(self) -> int:
        """How many of the rows are closed (the last ones in the order)."""
        return len(self._ordered) - bisect_left(self._ordered, _FIRST_CLOSED)

    def _catch_up(self, state: State) -> None:
        connections = state.connections
        # Another State (a seek, a keyframe) or one that went back: its rows' seqs say nothing about ours.
        if state is not self._state or connections is not self._connections or state.seq < self._seq:
            self._state, self._connections = state, connections
            self._keys = {conn.id: order_key(conn) for conn in connections.values() if not conn.mirror_of}
            self._ordered = sorted(self._keys.values())
        elif state.seq != self._seq:
            keys, ordered = self._keys, self._ordered
            for gone in keys.keys() - connections.keys():
                del ordered[bisect_left(ordered, keys.pop(gone))]
            since = self._seq  # >=: a row changed by the event that made this seq may not be in yet
            for conn in [conn for conn in connections.values() if conn.updated_seq >= since]:
                old = keys.get(conn.id)
                new = None if conn.mirror_of else order_key(conn)
                if old == new:
                    continue
                if old is not None:
                    del ordered[bisect_left(ordered, old)]
                    del keys[conn.id]
                if new is not None:
                    insort(ordered, new)
                    keys[conn.id] = new
        self._seq = state.seq
