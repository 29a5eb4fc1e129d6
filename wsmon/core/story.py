"""A connection's story: the events about it, in order, for the drill-down screen and its export.

Part of the reducer (pure, no I/O): the reducer's connection handlers call ``note`` with what they just
folded. What happens often is summed a window at a time: a connection's traffic, and its successful
deliveries (how many, the least and most latency, where the acks came back) in ``deliveries``
entries; a failed delivery is always an entry of its own. Bounded three times over: at most
MAX_TIMELINE_ENTRIES entries a connection (the newest); fewer when many connections are kept, so that
all timelines together stay near TIMELINE_BUDGET entries; and only for the connections State keeps —
when the reducer forgets a closed connection, ``forget`` drops its timeline too. An entry keeps its
facts as data, not text, so the per-event cost is one small Struct; ``describe`` writes the line a
person reads.
"""

from __future__ import annotations

import msgspec

from wsmon.core.closecodes import close_code_label
from wsmon.core.state import DeliverySums, State, TimelineEntry, TrafficSums
from wsmon.core.wallclock import clock_of, iso_utc

# The newest entries kept for each connection; a list is trimmed to its cap once it holds a quarter more,
# so trimming is rare, and the cap is never exceeded by more than that quarter.
MAX_TIMELINE_ENTRIES = 200
# All connections' entries together (an entry is ~260 bytes: ~52 MB): with 10,000 connections kept, each
# keeps its newest 20 (MIN_TIMELINE_ENTRIES), not 200 — memory and keyframes do not grow with the
# number of connections times 200.
TIMELINE_BUDGET = 200_000
MIN_TIMELINE_ENTRIES = 20
# A connection's traffic and its deliveries are an entry each per this many seconds, not one per event
# (the tap flushes traffic once a second per connection): a timeline of 200 seconds would say little,
# and keyframes carry every timeline, so their size is what this window keeps down
# (bench/bench_pipeline.py, file B/event).
TRAFFIC_WINDOW_S = 60.0
# A log line's field names that carry a connection's id (normalised: lower case, no '_' or '-'): a log
# line is about a connection when one of these holds an id State tracks. The names the log parser reads
# a connection's id from (sources.logs.vocabulary.CONN_NAMES), repeated: the core imports no source.
_CONN_FIELD_NAMES = frozenset(
    {
        "conn", "connid", "connectionid", "connection", "socketid", "socket", "clientid", "client", "sid",
        "wsid", "websocketid", "connectionkey", "clientkey", "peerid",
    }
)  # fmt: skip

Value = str | int | float | None
Facts = dict[str, Value] | TrafficSums | DeliverySums


def note(state: State, conn_id: str, wall: float, kind: str, data: Facts) -> None:
    entries = state.timelines.get(conn_id)
    if entries is None:
        entries = state.timelines[conn_id] = []
    entries.append(TimelineEntry(wall, kind, data))
    if len(entries) > MIN_TIMELINE_ENTRIES:
        cap = entries_cap(len(state.connections))
        if len(entries) > cap + cap // 4:
            del entries[:-cap]


def entries_cap(kept_connections: int) -> int:
    """How many entries each connection keeps, with this many connections kept."""
    return min(MAX_TIMELINE_ENTRIES, max(MIN_TIMELINE_ENTRIES, TIMELINE_BUDGET // max(kept_connections, 1)))


# Entries that sum a window of events rather than tell one: another of their kinds may follow one of
# them and the window still adds up (traffic and deliveries interleave every second); any other entry
# (a log line, a failed delivery, the close) ends the windows before it, so the story stays in order.
_SUMMING = frozenset({"traffic", "deliveries"})
# What DeliverySums.ack_conn holds when a window's acks came back on more than one other connection.
SEVERAL = "*"


def _window(entries: list[TimelineEntry], kind: str, wall: float) -> TimelineEntry | None:
    """The ``kind`` entry still summing at ``wall``: among the newest summing entries and younger than
    TRAFFIC_WINDOW_S."""
    for i in range(len(entries) - 1, -1, -1):
        entry = entries[i]
        if entry.kind == kind:
            return entry if wall - entry.wall < TRAFFIC_WINDOW_S else None
        if entry.kind not in _SUMMING:
            return None
    return None


def traffic(
    state: State, conn_id: str, wall: float, msgs_in: int, msgs_out: int, bytes_in: int, bytes_out: int
) -> None:
    """Added to the connection's traffic entry of the current window (TRAFFIC_WINDOW_S)."""
    entries = state.timelines.get(conn_id)
    if entries:
        entry = entries[-1]
        # The common cases without a call (this runs for every Traffic event): the traffic entry is
        # the newest, or the one before the window's deliveries entry.
        if entry.kind == "deliveries" and len(entries) > 1:
            entry = entries[-2]
        if entry.kind != "traffic":
            entry = _window(entries, "traffic", wall) if entries[-1].kind in _SUMMING else None
        if entry is not None and wall - entry.wall < TRAFFIC_WINDOW_S:
            sums = entry.data
            if isinstance(sums, TrafficSums):
                sums.msgs_in += msgs_in
                sums.msgs_out += msgs_out
                sums.bytes_in += bytes_in
                sums.bytes_out += bytes_out
                sums.span_ms = round((wall - entry.wall) * 1000)
                return
    note(state, conn_id, wall, "traffic", TrafficSums(msgs_in, msgs_out, bytes_in, bytes_out))


def delivered(state: State, conn_id: str, wall: float, ms: float, ack_conn: str) -> None:
    """A successful delivery of a message sent on ``conn_id``, counted in the connection's deliveries
    entry of the current window with the least and most latency; ``ack_conn`` is the connection its
    ack came back on when another one. A failed delivery is an entry of its own (``delivery_failed``)."""
    entries = state.timelines.get(conn_id)
    entry = _window(entries, "deliveries", wall) if entries else None
    sums = entry.data if entry is not None else None
    us = round(ms * 1000)
    if entry is None or not isinstance(sums, DeliverySums):
        elsewhere = 1 if ack_conn else 0
        note(state, conn_id, wall, "deliveries", DeliverySums(1, us, us, 0, elsewhere, ack_conn))
        return
    sums.count += 1
    if us < sums.min_us:
        sums.min_us = us
    if us > sums.max_us:
        sums.max_us = us
    sums.span_ms = round((wall - entry.wall) * 1000)
    if ack_conn:
        sums.acked_elsewhere += 1
        # One other connection is named; acks from several say so rather than naming the last one.
        if sums.ack_conn != ack_conn:
            sums.ack_conn = SEVERAL if sums.ack_conn else ack_conn


def facts(entry: TimelineEntry) -> dict[str, Value]:
    """An entry's facts as a dict, whatever form they are kept in: latencies in ms, and the wall time
    of the last event a summing entry counts as ``until``."""
    data = entry.data
    if isinstance(data, dict):
        return data
    until = entry.wall + data.span_ms / 1000
    if isinstance(data, TrafficSums):
        return {
            "msgs_in": data.msgs_in,
            "msgs_out": data.msgs_out,
            "bytes_in": data.bytes_in,
            "bytes_out": data.bytes_out,
            "until": until,
        }
    return {
        "count": data.count,
        "min_ms": data.min_us / 1000,
        "max_ms": data.max_us / 1000,
        "until": until,
        "acked_elsewhere": data.acked_elsewhere,
        "ack_conn": data.ack_conn,
    }


def _int(value: Value) -> int:
    return value if isinstance(value, int) else 0


def _float(value: Value, default: float) -> float:
    return value if isinstance(value, float | int) else default


def forget(state: State, conn_id: str) -> None:
    state.timelines.pop(conn_id, None)


def log_line_conns(state: State, fields: dict[str, str]) -> list[str]:
    """The tracked connections a log line names in its fields, and the tap or probe row each is the
    server's view of (the row a person opens)."""
    out: list[str] = []
    conns = state.connections
    for key, value in fields.items():
        conn = conns.get(value)
        if conn is None or key.replace("_", "").replace("-", "").lower() not in _CONN_FIELD_NAMES:
            continue
        for conn_id in (conn.id, conn.mirror_of):
            if conn_id and conn_id not in out:
                out.append(conn_id)
    return out


def describe(entry: TimelineEntry) -> str:
    """One line of the timeline, as a person reads it (wire and log text not yet made visible)."""
    d = facts(entry)
    kind = entry.kind
    if kind == "connecting":
        return f"connecting from {d.get('peer') or '?'}"
    if kind == "open":
        ms = d.get("handshake_ms")
        handshake = f", handshake {ms:.1f} ms" if isinstance(ms, float | int) else ""
        return f"opened from {d.get('peer') or '?'} {d.get('path') or ''}".rstrip() + handshake
    if kind == "traffic":
        parts = []
        if d.get("msgs_in"):
            parts.append(f"in {d['msgs_in']} msgs {d.get('bytes_in', 0)} B")
        if d.get("msgs_out"):
            parts.append(f"out {d['msgs_out']} msgs {d.get('bytes_out', 0)} B")
        until = d.get("until")
        span = f" over {until - entry.wall:.0f} s" if isinstance(until, float) and until > entry.wall else ""
        return "traffic " + (", ".join(parts) or "none") + span
    if kind == "deliveries":
        return _describe_deliveries(d)
    if kind == "delivery_failed":
        return f"delivery of {d.get('message_id') or '?'} failed: {d.get('reason')}"
    if kind == "log":
        return f"log {d.get('level')}: {d.get('text')}"
    if kind == "closing":
        return f"closing, started by {d.get('by')}"
    if kind == "close":
        reason = f' "{d["reason"]}"' if d.get("reason") else ""
        return f"closed {d.get('code')}{reason} by {d.get('closed_by')}"
    return f"{kind} {msgspec.json.encode(d).decode()}"


def _describe_deliveries(d: dict[str, Value]) -> str:
    """E.g. "delivered 12 msgs, 3.1–8.4 ms, acked on c2"."""
    count = _int(d.get("count"))
    low, high = _float(d.get("min_ms"), 0.0), _float(d.get("max_ms"), 0.0)
    text = f"delivered {count} msg{'' if count == 1 else 's'}, "
    text += f"{low:.1f} ms" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}–{high:.1f} ms"
    elsewhere = _int(d.get("acked_elsewhere"))
    if elsewhere:
        where = d.get("ack_conn")
        on = "on other connections" if where == SEVERAL else f"on {where}"
        text += f", acked {on}" if elsewhere == count else f", {elsewhere} acked {on}"
    return text


def summary(state: State, conn_id: str) -> str:
    """The connection's facts, one per line, as `c` copies them (wire text not yet made visible)."""
    conn = state.connections.get(conn_id)
    if conn is None:
        return f"connection {conn_id}: no longer kept"
    to_iso = clock_of(state)
    handshake = "—" if conn.handshake_ms is None else f"{conn.handshake_ms:.1f} ms"
    lines = [
        f"connection {conn.id}",
        f"peer        {conn.peer or '—'} {conn.path}".rstrip(),
        f"state       {conn.state.value}" + (" (wsmon's own probe)" if conn.own else ""),
        f"opened at   {to_iso(conn.opened_mono) or '—'}",
        f"handshake   {handshake}",
        f"in          {conn.msgs_in} msgs, {conn.bytes_in} B",
        f"out         {conn.msgs_out} msgs, {conn.bytes_out} B",
    ]
    if conn.state == "CLOSED":
        lines += [
            f"closed at   {to_iso(conn.closed_mono) or '—'}",
            f"close       {close_code_label(conn.close_code)}",
            f"reason      {conn.close_reason or '—'}",
            f"closed by   {conn.closed_by or '—'}",
        ]
    if conn.server_conn:
        lines.append(f"server id   {conn.server_conn}")
    return "\n".join(lines)


def json_lines(state: State, conn_id: str) -> bytes:
    """The connection's timeline as JSON Lines: one object an event, with its UTC time (`e` exports)."""
    out = []
    for entry in state.timelines.get(conn_id, ()):
        record = {"conn": conn_id, "time": iso_utc(entry.wall), "wall": entry.wall, "kind": entry.kind}
        out.append(msgspec.json.encode(record | facts(entry)))
    return b"".join(line + b"\n" for line in out)


__all__ = [
    "MAX_TIMELINE_ENTRIES",
    "delivered",
    "describe",
    "entries_cap",
    "facts",
    "forget",
    "json_lines",
    "log_line_conns",
    "note",
    "summary",
    "traffic",
]
