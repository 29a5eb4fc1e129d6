"""The one reducer: a pure, synchronous fold of events into State.

No I/O, no clock, no asyncio: the same events give the same State, live or replayed. Dispatch is a
dict lookup on the event's type, because this runs for every event (the goal is well over half a
million a second on one core).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar, cast

from wsmon.core import events as ev
from wsmon.core import story, witnesses
from wsmon.core.fleet import NODE_KIND
from wsmon.core.percentiles import Distribution
from wsmon.core.state import (
    MAX_CLOSED_KEPT,
    MAX_DELIVERY_REFS,
    MAX_FAILURES_KEPT,
    MAX_LOG_LINES,
    MAX_SLOWLOG_KEPT,
    MAX_TESTS_KEPT,
    PROBE_CONNECT,
    TAP_SATURATED_CONNECT,
    ActiveAlert,
    Connection,
    ConnState,
    DeliveryFailure,
    ExitEntry,
    LogEntry,
    MarkerEntry,
    State,
    TargetState,
    TestRecord,
    TestRunRecord,
)

_MIB = 1024 * 1024
# Enum attribute lookups cost ~150 ns each on Python 3.11: the per-event path reads these globals.
_CLOSED = ConnState.CLOSED
_CLOSING = ConnState.CLOSING
_CONNECTING = ConnState.CONNECTING
_OPEN = ConnState.OPEN
START_TIMEOUT = "start-timeout"
# While STARTING, only these DOWN kinds are outages: the start failed, the process exited, or the
# start-up timeout passed. Anything else (refused: not listening yet) is what starting looks like.
STARTUP_FAILURES = frozenset({"start", "exited", START_TIMEOUT})

_Handler = Callable[[State, ev.Event], None]
_E = TypeVar("_E", bound=ev.Event)


def _handles(kind: type[_E], handler: Callable[[State, _E], None]) -> tuple[type[ev.Event], _Handler]:
    """One entry of the dispatch table, checked: ``handler`` takes ``kind``'s events. The table's type
    cannot say "the handler of each key takes that key's events"; the cast is sound because ``apply``
    only ever calls an entry with an event whose type is its key."""
    return kind, cast(_Handler, handler)


class Reducer:
    """Folds events into ``self.state``. Keep one per session; replay builds its own from a keyframe."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state if state is not None else State()
        self._handlers: dict[type[ev.Event], _Handler] = dict(
            [
                _handles(ev.TargetAdded, _target_added),
                _handles(ev.TargetDown, _target_down),
                _handles(ev.TargetUp, _target_up),
                _handles(ev.Hint, _hint),
                _handles(ev.ConnectionConnecting, _connecting),
                _handles(ev.ConnectionOpened, _opened),
                _handles(ev.ConnectionClosing, _closing),
                _handles(ev.ConnectionClosed, _closed),
                _handles(ev.ConnectFailed, _connect_failed),
                _handles(ev.Traffic, _traffic),
                _handles(ev.DeliveryFailed, _delivery_failed),
                _handles(ev.LatencySample, _latency),
                _handles(ev.ProcessSample, _process),
                _handles(ev.RedisSample, _redis),
                _handles(ev.PostgresSample, _postgres),
                _handles(ev.AlertRaised, _alert_raised),
                _handles(ev.AlertCleared, _alert_cleared),
                _handles(ev.Marker, _marker),
                _handles(ev.LogLine, _log),
                _handles(ev.ServerExit, _server_exit),
                _handles(ev.HttpSample, _http),
                _handles(ev.TestEvent, _test),
                _handles(ev.TestRunEnded, _test_run_ended),
                _handles(ev.TapSaturation, _tap_saturation),
            ]
        )

    def apply(self, event: ev.Event) -> None:
        state = self.state
        state.seq += 1
        if state.first_mono is None:
            state.first_mono = event.mono
            state.first_wall = event.wall
        # Sources' clocks interleave; the session's "now" only moves forward.
        if event.mono > state.last_mono:
            state.last_mono = event.mono
            state.last_wall = event.wall
        self._handlers[type(event)](state, event)

    def apply_many(self, events: Iterable[ev.Event]) -> None:
        handlers = self._handlers
        state = self.state
        for event in events:
            state.seq += 1
            if state.first_mono is None:
                state.first_mono = event.mono
                state.first_wall = event.wall
            if event.mono > state.last_mono:
                state.last_mono = event.mono
                state.last_wall = event.wall
            handlers[type(event)](state, event)


def fold(events: Iterable[ev.Event], state: State | None = None) -> State:
    reducer = Reducer(state)
    reducer.apply_many(events)
    return reducer.state


# --- targets -------------------------------------------------------------------------------------


def _target(state: State, name: str) -> TargetState:
    target = state.targets.get(name)
    if target is None:
        target = state.targets[name] = TargetState(name=name)
    return target


def _target_added(state: State, e: ev.TargetAdded) -> None:
    target = _target(state, e.target)
    target.kind = e.kind or target.kind
    target.address = e.address or target.address
    for log_source in e.covers:
        state.tapped_logs[log_source] = e.target
    if e.starting and target.up is None:
        target.starting = True
        target.since_mono = e.mono
        target.startup_timeout_s = e.startup_timeout_s


def _target_down(state: State, e: ev.TargetDown) -> None:
    target = _target(state, e.target)
    if target.starting and e.kind not in STARTUP_FAILURES:
        # Not listening yet is what starting looks like: shown, not counted as an outage.
        target.error = e.error
        target.error_kind = e.kind
        return
    target.starting = False
    if target.up is not False:
        target.up = False
        target.since_mono = e.mono
        target.down_count += 1
    target.error = e.error
    target.error_kind = e.kind


def _target_up(state: State, e: ev.TargetUp) -> None:
    target = _target(state, e.target)
    if target.starting:
        target.starting = False
        target.since_mono = None
    if target.up is False and target.since_mono is not None:
        target.down_total_s += e.mono - target.since_mono
    if target.up is not True:
        target.up = True
        target.since_mono = e.mono
    target.error = ""
    target.error_kind = ""


def startup_timeouts(state: State, wall: float, mono: float) -> list[ev.TargetDown]:
    """The DOWN events of targets still STARTING past their start-up timeout (the live session asks on
    its tick; a replay re-applies the recorded events instead)."""
    out = []
    for target in state.targets.values():
        if not target.starting or target.since_mono is None or target.startup_timeout_s <= 0:
            continue
        if mono - target.since_mono >= target.startup_timeout_s:
            error = f"did not answer within {target.startup_timeout_s:g} s of starting"
            if target.error:
                error += f" ({target.error})"
            out.append(
                ev.TargetDown(wall=wall, mono=mono, target=target.name, error=error, kind=START_TIMEOUT)
            )
    return out


def _tap_saturation(state: State, e: ev.TapSaturation) -> None:
    target = _target(state, e.target)
    if e.saturated:
        target.saturated_lag_ms = max(target.saturated_lag_ms, e.lag_ms)
        if target.saturated_since is None:
            target.saturated_since = e.mono
            target.saturated_count += 1
    elif target.saturated_since is not None:
        target.saturated_total_s += max(0.0, e.mono - target.saturated_since)
        target.saturated_since = None


def _saturated(state: State, name: str) -> bool:
    target = state.targets.get(name)
    return target is not None and target.saturated_since is not None


def _hint(state: State, e: ev.Hint) -> None:
    target = _target(state, e.target)
    if e.text not in target.hints:
        target.hints.append(e.text)


# --- connections ---------------------------------------------------------------------------------


def _connection(state: State, conn_id: str) -> Connection:
    conn = state.connections.get(conn_id)
    if conn is None:
        conn = state.connections[conn_id] = Connection(
            id=conn_id, state=_CONNECTING, node=_node(state, conn_id)
        )
    return conn


def _node(state: State, conn_id: str) -> str:
    """The fleet node of a ``NODE/ID`` connection, when NODE is a node target (core.fleet)."""
    head, sep, _ = conn_id.partition("/")
    target = state.targets.get(head) if sep else None
    return head if target is not None and target.kind == NODE_KIND else ""


def _connecting(state: State, e: ev.ConnectionConnecting) -> None:
    conn = _connection(state, e.conn)
    conn.state = _CONNECTING
    conn.peer = e.peer or conn.peer
    conn.path = e.path or conn.path
    conn.source = e.source or conn.source
    conn.updated_seq = state.seq
    story.note(state, e.conn, e.wall, "connecting", {"peer": e.peer})


def _opened(state: State, e: ev.ConnectionOpened) -> None:
    conn = _connection(state, e.conn)
    was_counted = conn.counted and conn.state in (_OPEN, _CLOSING)
    open_before = state.open_count
    if e.local:
        witnesses.remember_peer(state, e.local, e.conn, own=e.own, mono=e.mono)
    conn.own = conn.own or e.own
    if not e.own:
        witnesses.witnessed_by_log(state, conn, e, via_tap=bool(e.local))
    if conn.counted and not was_counted:
        state.open_count += 1
        state.opened_total += 1
        if state.open_count > state.peak_open:
            state.peak_open = state.open_count
    # Also when a witness match took a log row out of the count (witnesses._mirror).
    if state.open_count != open_before:
        state.timeline.opened_or_closed(e.mono, e.wall, state.open_count)
    conn.state = _OPEN
    conn.peer = e.peer or conn.peer
    conn.path = e.path or conn.path
    conn.source = e.source or conn.source
    conn.opened_mono = e.mono
    conn.handshake_ms = e.handshake_ms
    conn.updated_seq = state.seq
    story.note(
        state, e.conn, e.wall, "open", {"peer": e.peer, "path": e.path, "handshake_ms": e.handshake_ms}
    )


def _closing(state: State, e: ev.ConnectionClosing) -> None:
    conn = state.connections.get(e.conn)
    if conn is not None and conn.state == _OPEN:
        conn.state = _CLOSING
        conn.closed_by = e.by
        conn.updated_seq = state.seq
        story.note(state, e.conn, e.wall, "closing", {"by": e.by})


def _closed(state: State, e: ev.ConnectionClosed) -> None:
    conn = _connection(state, e.conn)
    conn.own = conn.own or e.own
    if not conn.source and e.source in state.tapped_logs and not conn.mirror_of:
        conn.covered_by = state.tapped_logs[e.source]  # the log's close of a connection it never opened
    if conn.state in (_OPEN, _CLOSING) and conn.counted:
        state.open_count -= 1
    if conn.state != _CLOSED:
        state.closed_order.append(e.conn)
    first_close = conn.state != _CLOSED
    conn.state = _CLOSED
    conn.closed_mono = e.mono
    conn.close_code = e.code
    conn.close_reason = e.reason
    conn.closed_by = e.closed_by
    conn.source = conn.source or e.source
    conn.updated_seq = state.seq
    story.note(state, e.conn, e.wall, "close", {"code": e.code, "reason": e.reason, "closed_by": e.closed_by})
    if conn.counted:
        codes = state.close_codes
        codes[e.code] = codes.get(e.code, 0) + 1
        by = state.closed_by
        by[e.closed_by] = by.get(e.closed_by, 0) + 1
        state.timeline.closed(e.mono, e.wall, state.open_count, e.code)
    if first_close and state.tapped_logs:
        open_before = state.open_count
        witnesses.match_close(state, conn, e)
        if state.open_count != open_before:
            state.timeline.opened_or_closed(e.mono, e.wall, state.open_count)
    # Bounded memory: forget the oldest closed connections, as a terminal forgets scrollback.
    order = state.closed_order
    if len(order) > 2 * MAX_CLOSED_KEPT:
        drop = order[:-MAX_CLOSED_KEPT]
        del order[:-MAX_CLOSED_KEPT]
        conns = state.connections
        for conn_id in drop:
            old = conns.get(conn_id)
            if old is not None and old.state == _CLOSED:
                del conns[conn_id]
                story.forget(state, conn_id)


def _connect_failed(state: State, e: ev.ConnectFailed) -> None:
    if e.own:
        return
    state.connect_failed += 1
    state.timeline.bucket(e.mono, e.wall, state.open_count).connect_failures += 1
    kinds = state.connect_fail_kinds
    kinds[e.kind] = kinds.get(e.kind, 0) + 1


def _traffic(state: State, e: ev.Traffic) -> None:
    # Runs for most events: each field is read once into a local.
    msgs_in, msgs_out, bytes_in, bytes_out = e.msgs_in, e.msgs_out, e.bytes_in, e.bytes_out
    conn = state.connections.get(e.conn)
    if conn is not None:
        conn.msgs_in += msgs_in
        conn.msgs_out += msgs_out
        conn.bytes_in += bytes_in
        conn.bytes_out += bytes_out
        conn.updated_seq = state.seq
        story.traffic(state, e.conn, e.wall, msgs_in, msgs_out, bytes_in, bytes_out)
        if not conn.counted:
            return
    if e.own:
        return
    state.msgs_in += msgs_in
    state.msgs_out += msgs_out
    state.bytes_in += bytes_in
    state.bytes_out += bytes_out
    mono = e.mono
    second = int(mono)
    msgs = msgs_in + msgs_out
    timeline = state.timeline
    fine = timeline.fine
    # The common case inline: this runs for every traffic report.
    bucket = (
        fine[-1] if fine and fine[-1].start == second else timeline.bucket(mono, e.wall, state.open_count)
    )
    bucket.msgs += msgs
    # A second's count is its bucket's (core.timeline); msgs_by_second only holds what a keyframe
    # written before brought (State.msgs_in_second). An event older than the fine ring lands in its
    # oldest bucket: it counts alone.
    if bucket.start == second:
        count = bucket.msgs
        before = fine[-2] if bucket is fine[-1] and len(fine) > 1 else timeline.at(second - 1)
    else:
        count, before = msgs, None
    previous = before.msgs if before is not None and before.start == second - 1 else 0
    legacy = state.msgs_by_second
    if legacy:
        count = max(count, legacy.get(second, 0))
        previous = max(previous, legacy.get(second - 1, 0))
    # A second counts towards the peak only once it is complete: the one before this event's, or this
    # event's own second when the event arrived late (the session's now has already moved past it:
    # int(last_mono) > second, which for these positive times is last_mono >= second + 1).
    peak = state.peak_msgs_per_s
    if previous > peak:
        state.peak_msgs_per_s = peak = previous
    if count > peak and state.last_mono >= second + 1:
        state.peak_msgs_per_s = count


# --- delivery and latency ------------------------------------------------------------------------


def _first_witness(state: State, message_id: str) -> bool:
    """False when this message's delivery was already counted (the tap and the server's log both
    report it); the first report wins."""
    refs = state.delivery_refs
    if message_id in refs:
        return False
    refs[message_id] = True
    if len(refs) > 2 * MAX_DELIVERY_REFS:
        for old in list(refs)[:-MAX_DELIVERY_REFS]:
            del refs[old]
    return True


def _delivery_failed(state: State, e: ev.DeliveryFailed) -> None:
    if e.message_id and not _first_witness(state, e.message_id):
        return
    state.delivery_failed += 1
    state.timeline.bucket(e.mono, e.wall, state.open_count).delivery_failures += 1
    reason = e.reason or "unknown"
    reasons = state.failure_reasons
    reasons[reason] = reasons.get(reason, 0) + 1
    failures = state.failures
    failures.append(DeliveryFailure(e.mono, e.wall, e.message_id, e.conn, reason, e.source))
    if e.conn in state.connections:
        story.note(state, e.conn, e.wall, "delivery_failed", {"message_id": e.message_id, "reason": reason})
    if len(failures) > 2 * MAX_FAILURES_KEPT:
        del failures[:-MAX_FAILURES_KEPT]


def _latency(state: State, e: ev.LatencySample) -> None:
    if e.ref and e.kind == "delivery" and not _first_witness(state, e.ref):
        return
    # The probe's own handshakes are reported as the probe's, never judged as the users' connect time.
    kind = e.kind
    if kind == "connect":
        if e.own:
            kind = PROBE_CONNECT
        elif e.stalled or (e.target and _saturated(state, e.target)):
            # Measured by a tap that could not keep up: its own delay as much as the server's.
            kind = TAP_SATURATED_CONNECT
    dist = state.latency.get(kind)
    if dist is None:
        dist = state.latency[kind] = Distribution()
    key = dist.add(e.mono, e.ms)
    if e.kind == "delivery":
        state.delivered += 1
        if e.conn and e.conn in state.connections:
            story.delivered(state, e.conn, e.wall, e.ms, e.ack_conn)
        timeline = state.timeline
        fine = timeline.fine
        second = int(e.mono)
        # The common case inline: this runs for every delivery.
        bucket = (
            fine[-1]
            if fine and fine[-1].start == second
            else timeline.bucket(e.mono, e.wall, state.open_count)
        )
        latency = bucket.latency
        latency[key] = latency.get(key, 0) + 1


# --- resources -----------------------------------------------------------------------------------


def _process(state: State, e: ev.ProcessSample) -> None:
    state.process = e
    state.cpu.add(e.mono, e.cpu_percent)
    state.rss_mib.add(e.mono, e.rss_bytes / _MIB)


def _redis(state: State, e: ev.RedisSample) -> None:
    state.redis = e
    if e.used_memory is not None:
        state.redis_used_mib.add(e.mono, e.used_memory / _MIB)
    if e.extra.slowlog:
        slowlog = state.redis_slowlog
        slowlog.extend(e.extra.slowlog)
        del slowlog[:-MAX_SLOWLOG_KEPT]
    state.redis_slowlog_missed += e.extra.slowlog_missed


def _postgres(state: State, e: ev.PostgresSample) -> None:
    state.postgres = e
    if e.deadlocks:
        state.pg_deadlocks += e.deadlocks
    if e.connections is not None:
        state.pg_connections.add(e.mono, float(e.connections))


def _http(state: State, e: ev.HttpSample) -> None:
    state.http[e.target] = e


# --- alerts, markers, logs, exits ----------------------------------------------------------------


def _alert_raised(state: State, e: ev.AlertRaised) -> None:
    previous = state.alerts.get(e.figure)
    since = previous.since_mono if previous is not None else e.mono
    state.alerts[e.figure] = ActiveAlert(e.figure, e.level, e.value, e.limit, since, e.message)
    state.alerts_raised += 1
    if e.level == "breach":
        worst = state.breached.get(e.figure)
        # A min-bound figure (a success ratio) breaches below its limit: its worst value is the lowest.
        pick = min if e.value < e.limit else max
        state.breached[e.figure] = e.value if worst is None else pick(worst, e.value)


def _alert_cleared(state: State, e: ev.AlertCleared) -> None:
    state.alerts.pop(e.figure, None)


def _marker(state: State, e: ev.Marker) -> None:
    state.markers.append(MarkerEntry(e.mono, e.wall, e.text))


def _log(state: State, e: ev.LogLine) -> None:
    counts = state.log_counts
    counts[e.level] = counts.get(e.level, 0) + 1
    logs = state.logs
    logs.append(LogEntry(e.mono, e.level, e.text, e.source, e.fields))
    if e.fields:
        for conn_id in story.log_line_conns(state, e.fields):
            story.note(state, conn_id, e.wall, "log", {"level": e.level, "text": e.text, "source": e.source})
    if len(logs) > 2 * MAX_LOG_LINES:
        del logs[:-MAX_LOG_LINES]


def _server_exit(state: State, e: ev.ServerExit) -> None:
    state.exits.append(ExitEntry(e.mono, e.target, e.pid, e.code, e.signal, list(e.last_lines)))
    # A server's exit closes every connection it still held; nobody sent a close frame.
    for conn in list(state.connections.values()):
        if conn.state != _CLOSED and conn.source == e.target:
            _closed(
                state,
                ev.ConnectionClosed(wall=e.wall, mono=e.mono, conn=conn.id, code=1006, closed_by="neither"),
            )


def _test(state: State, e: ev.TestEvent) -> None:
    tests = state.tests
    record = tests.get(e.name)
    if record is None:
        if len(tests) >= MAX_TESTS_KEPT:
            return
        record = tests[e.name] = TestRecord(name=e.name)
    if e.phase == "start":
        record.start_mono, record.start_wall = e.mono, e.wall
        record.approximate = e.approximate
        return
    record.end_mono, record.end_wall = e.mono, e.wall
    record.outcome = e.outcome
    record.message = e.message
    record.approximate = record.approximate or e.approximate
    if record.start_mono is None and e.duration_s is not None:
        record.start_mono, record.start_wall = e.mono - e.duration_s, e.wall - e.duration_s
        record.approximate = True  # the start is derived from the duration


def _test_run_ended(state: State, e: ev.TestRunEnded) -> None:
    state.test_run = TestRunRecord(e.command, e.exit_code, e.ran, e.note, e.wall)


__all__ = ["Reducer", "fold"]
