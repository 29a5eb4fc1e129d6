"""One connection, two witnesses: matching a server log's rows to the tap's and the probe's rows.

Part of the reducer (pure, no I/O): a connection seen by a tap or a probe and again in the server's
log is one row and one count. The log's row is matched by the peer address it saw (wsmon's end of a
tap's upstream leg or of a probe), or, for a log without peer addresses behind a tap, by close code
and close time. docs/design.md, "One connection, two witnesses".
"""

from __future__ import annotations

from typing import TypeVar

from wsmon.core import events as ev
from wsmon.core.state import MAX_OWN_PEERS, Connection, ConnState, State

_K = TypeVar("_K")
# Enum attribute lookups cost ~150 ns each on Python 3.11: the per-event path reads these globals.
_CLOSED = ConnState.CLOSED
_CLOSING = ConnState.CLOSING
_OPEN = ConnState.OPEN
_V = TypeVar("_V")
# A log without peer addresses is matched to the tap's rows by close code within this many seconds.
CLOSE_MATCH_WINDOW_S = 2.0
MAX_PENDING_CLOSES = 1000


def witnessed_by_log(state: State, conn: Connection, e: ev.ConnectionOpened, *, via_tap: bool) -> None:
    """A row seen from the far end — the server's log, or a tap a probe connects through: the other end
    of a tap's or probe's row (matched by the peer it saw), or — a log of a server a tap covers — the
    log's own row, shown but never counted."""
    peer = e.peer
    witness_id = state.relayed_peers.get(peer, "") if peer else ""
    witness = state.connections.get(witness_id) if witness_id else None
    # Only a tap's client can be wsmon's probe; and a port is reused once its connection is gone, so a
    # witness long closed is another connection's.
    if (
        witness is not None
        and witness_id != conn.id
        and (witness.own or not via_tap)
        and _current(witness, e.mono)
    ):
        _mirror(state, conn, witness)
        return
    if e.source in state.tapped_logs and not conn.mirror_of:
        conn.covered_by = state.tapped_logs[e.source]
    if peer:
        _bounded_put(state.log_peers, peer, conn.id)


def _current(conn: Connection, mono: float) -> bool:
    """Still open, or closed a moment ago (the other witness may speak late): its address is its own."""
    return conn.closed_mono is None or mono - conn.closed_mono <= CLOSE_MATCH_WINDOW_S


def _mirror(state: State, log_row: Connection, witness: Connection) -> None:
    """The log's row is the server's view of the witness's connection: it stops counting on its own."""
    if log_row.counted:
        if log_row.opened_mono is not None:
            state.opened_total -= 1
        if log_row.state in (_OPEN, _CLOSING):
            state.open_count -= 1
        elif log_row.state == _CLOSED and log_row.close_code is not None:
            _uncount_close(state, log_row.close_code, log_row.closed_by)
            if log_row.closed_mono is not None:
                state.timeline.uncount_close(log_row.closed_mono, log_row.close_code)
    log_row.mirror_of = witness.id
    log_row.covered_by = ""
    log_row.own = log_row.own or witness.own
    log_row.updated_seq = state.seq
    witness.server_conn = log_row.id
    witness.updated_seq = state.seq


def _uncount_close(state: State, code: int, closed_by: str) -> None:
    _decrement(state.close_codes, code)
    _decrement(state.closed_by, closed_by)


def _decrement(counts: dict[_K, int], key: _K) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def _bounded_put(index: dict[str, _V], key: str, value: _V) -> None:
    index[key] = value
    if len(index) > 2 * MAX_OWN_PEERS:
        for old in list(index)[:-MAX_OWN_PEERS]:
            del index[old]


def remember_peer(state: State, local: str, conn_id: str, *, own: bool, mono: float) -> None:
    """Our end's address of a probe (own) or of a tap's upstream leg: the server's log shows it as the
    peer, maybe already — that row is then the same connection, not another user's. Found through the
    index of log peers, never by scanning the connections."""
    _bounded_put(state.relayed_peers, local, conn_id)
    log_id = state.log_peers.pop(local, None)
    log_row = state.connections.get(log_id) if log_id is not None else None
    witness = state.connections.get(conn_id)
    if log_row is None or witness is None or log_row.id == conn_id or log_row.mirror_of:
        return
    if log_row.source == "tap" and not own:
        return  # a tap's client is only ever matched to a probe
    if _current(log_row, mono):
        _mirror(state, log_row, witness)


def match_close(state: State, conn: Connection, e: ev.ConnectionClosed) -> None:
    """Behind a tap, a server log without peer addresses: pair the log's close with a tap row's close
    of the same code within CLOSE_MATCH_WINDOW_S, whichever witness reports it first."""
    if conn.covered_by:
        if conn.peer:
            return  # a log with peer addresses is matched by them; this one came around the tap
        mine, theirs = state.log_closes, state.tap_closes
    elif e.source == "tap" and conn.counted and not conn.server_conn:
        mine, theirs = state.tap_closes, state.log_closes
    else:
        return
    other = _pop_recent(state, theirs, e.code, e.mono)
    if other is None:
        pending = mine.setdefault(e.code, [])
        pending.append((e.mono, conn.id))
        if len(pending) > MAX_PENDING_CLOSES:
            del pending[: len(pending) - MAX_PENDING_CLOSES]
        return
    log_row, tap_row = (conn, other) if conn.covered_by else (other, conn)
    _mirror(state, log_row, tap_row)


def _pop_recent(
    state: State, pending: dict[int, list[tuple[float, str]]], code: int, mono: float
) -> Connection | None:
    """The oldest close of this code still within the window (older ones are dropped on the way)."""
    queue = pending.get(code)
    while queue:
        closed_mono, conn_id = queue.pop(0)
        row = state.connections.get(conn_id)
        if row is None or abs(mono - closed_mono) > CLOSE_MATCH_WINDOW_S:
            continue
        if row.covered_by or (row.counted and not row.server_conn):
            return row
    return None
