"""The State that the reducer folds events into, and that everything shows and judges.

State is a tree of msgspec Structs so that a keyframe is one ``msgpack.encode(state)`` and a seek is
one decode. Everything in it is bounded: closed connections, log lines and series are capped, and
latency keeps a histogram rather than every sample, so a 10-million-event session fits in memory.
"""

from __future__ import annotations

import math
from enum import StrEnum

import msgspec

from wsmon.core.events import AlertLevel, HttpSample, PostgresSample, ProcessSample, RedisSample, SlowlogEntry
from wsmon.core.percentiles import Distribution
from wsmon.core.timeline import Timeline


class ConnState(StrEnum):
    """A connection's state, as RFC 6455 names it; its value is what keyframes and screens carry."""

    CONNECTING = "CONNECTING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


MAX_CLOSED_KEPT = 500
MAX_LOG_LINES = 500
MAX_FAILURES_KEPT = 500
MAX_OWN_PEERS = 1000
MAX_DELIVERY_REFS = 10_000
MAX_SLOWLOG_KEPT = 5
SERIES_LEN = 600
# The latency key of wsmon's own probes' handshakes: kept apart from "connect", the clients' handshakes
# (from the tap), which is what the connect_ms limit judges.
PROBE_CONNECT = "probe_connect"
# The latency key of the clients' handshakes a tap measured while it was saturated (its own delay a
# material share of them) or across a stall of its own loop: kept apart from "connect" too, shown,
# never judged as the server's.
TAP_SATURATED_CONNECT = "connect_tap_saturated"


class Connection(msgspec.Struct, gc=False, omit_defaults=True):
    # omit_defaults here, in LogEntry and in timeline.Bucket: most of their fields hold the default,
    # and every keyframe carries every row (a keyframe with all fields still decodes the same).
    id: str
    state: ConnState = ConnState.OPEN
    peer: str = ""
    path: str = ""
    source: str = ""
    own: bool = False
    opened_mono: float | None = None
    closed_mono: float | None = None
    handshake_ms: float | None = None
    msgs_in: int = 0
    msgs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    close_code: int | None = None
    close_reason: str = ""
    closed_by: str = ""
    updated_seq: int = 0  # the event count when this row last changed: the UI's cheap diff key
    mirror_of: str = ""  # the tap or probe row this server-log row is the other end of (not counted twice)
    # The server log's id of this connection, once its log row is matched to this (tap or probe) row.
    server_conn: str = ""
    # A server-log row of a server a tap covers, not (yet) matched to a tap row: shown, never counted.
    covered_by: str = ""
    node: str = ""  # the fleet node it is on (core.fleet): "" outside a fleet

    @property
    def node_id(self) -> str:
        """The id on its own node (``c12`` of a fleet's ``node-a/c12``); the id outside a fleet."""
        return self.id.removeprefix(self.node + "/") if self.node else self.id

    @property
    def node_peer(self) -> str:
        """The peer as its node saw it (a fleet prefixes peers by node, so nodes never share one)."""
        return self.peer.removeprefix(self.node + "/") if self.node else self.peer

    @property
    def counted(self) -> bool:
        """In the users' figures: neither wsmon's own probe nor the server's view of a tapped one."""
        return not self.own and not self.mirror_of and not self.covered_by


class TargetState(msgspec.Struct, gc=False):
    name: str
    kind: str = ""
    address: str = ""
    up: bool | None = None  # None: configured but not heard from yet
    since_mono: float | None = None
    error: str = ""
    error_kind: str = ""
    down_count: int = 0
    down_total_s: float = 0.0
    hints: list[str] = []
    # wsmon is starting it (or the server it depends on): STARTING until its first UP. Outages count
    # only after that, or once start-up failed or took longer than startup_timeout_s.
    starting: bool = False
    startup_timeout_s: float = 0.0
    # A tap that cannot keep up (events.TapSaturation): since when, its worst loop lag p95 while
    # saturated, and how often and how long in all (a spell still running counts once it ends: see
    # saturated_s).
    saturated_since: float | None = None
    saturated_lag_ms: float = 0.0
    saturated_count: int = 0
    saturated_total_s: float = 0.0

    @property
    def status(self) -> str:
        """UP, DOWN, STARTING, SATURATED (a tap up but not keeping up), or "" when not heard from yet."""
        if self.starting:
            return "STARTING"
        if self.up is None:
            return ""
        if self.up and self.saturated_since is not None:
            return "SATURATED"
        return "UP" if self.up else "DOWN"

    def saturated_s(self, now: float) -> float:
        """How long in all it was saturated, up to ``now``."""
        running = 0.0 if self.saturated_since is None else max(0.0, now - self.saturated_since)
        return self.saturated_total_s + running


class Series(msgspec.Struct, gc=False):
    """A capped time series for sparklines and peaks."""

    times: list[float] = []
    values: list[float] = []
    peak: float = 0.0

    def add(self, mono: float, value: float) -> None:
        self.times.append(mono)
        self.values.append(value)
        if value > self.peak:
            self.peak = value
        if len(self.values) > 2 * SERIES_LEN:
            del self.times[:-SERIES_LEN]
            del self.values[:-SERIES_LEN]

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def tail_mean(self, n: int) -> float | None:
        tail = self.values[-n:]
        return sum(tail) / len(tail) if tail else None


class DeliveryFailure(msgspec.Struct, gc=False):
    mono: float
    wall: float
    message_id: str
    conn: str
    reason: str
    source: str = ""


class ActiveAlert(msgspec.Struct, gc=False):
    figure: str
    level: AlertLevel
    value: float
    limit: float
    since_mono: float
    message: str = ""


class LogEntry(msgspec.Struct, gc=False, omit_defaults=True):
    mono: float
    level: str
    text: str
    source: str = ""
    fields: dict[str, str] = {}  # the line's structured fields (LogLine.fields): ids, the error text


class TrafficSums(msgspec.Struct, array_like=True, tag="t", gc=False):
    """A ``traffic`` entry's facts: a window's Traffic events summed (core.story). A Struct of ints,
    not a dict, because it is added to for every Traffic event and every keyframe carries it:
    attributes are cheaper to add to than dict items, and an array of small ints a fraction of the
    bytes of a map of floats. ``span_ms`` is from the entry's time to the last event summed."""

    msgs_in: int = 0
    msgs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    span_ms: int = 0


class DeliverySums(msgspec.Struct, array_like=True, tag="d", gc=False):
    """A ``deliveries`` entry's facts: a window's successful deliveries of messages a connection sent,
    the least and most latency in microseconds; ``acked_elsewhere`` of them were acked on another
    connection, ``ack_conn`` (or ``*``: several)."""

    count: int = 0
    min_us: int = 0
    max_us: int = 0
    span_ms: int = 0
    acked_elsewhere: int = 0
    ack_conn: str = ""


class TimelineEntry(msgspec.Struct, gc=False):
    """One event of a connection's story (core.story): what happened, and its facts. The summing
    entries hold a Struct (recordings made before hold a traffic entry's facts as a dict)."""

    wall: float
    kind: str  # connecting, open, traffic, deliveries, delivery_failed, log, closing, close
    data: dict[str, str | int | float | None] | TrafficSums | DeliverySums = {}


class MarkerEntry(msgspec.Struct, gc=False):
    mono: float
    wall: float
    text: str


class ExitEntry(msgspec.Struct, gc=False):
    mono: float
    target: str
    pid: int | None
    code: int | None
    signal: int | None
    last_lines: list[str] = []


class TestRecord(msgspec.Struct, gc=False):
    __test__ = False

    name: str
    start_mono: float | None = None
    start_wall: float | None = None
    end_mono: float | None = None
    end_wall: float | None = None
    outcome: str = ""
    message: str = ""
    approximate: bool = False  # its window was derived, not given by the runner


MAX_TESTS_KEPT = 20_000


class TestRunRecord(msgspec.Struct, gc=False):
    """The end of the test command `wsmon run` watched (events.TestRunEnded)."""

    __test__ = False

    command: str
    exit_code: int | None
    ran: int | None
    note: str
    end_wall: float


class State(msgspec.Struct, gc=False):
    seq: int = 0  # events applied so far
    first_wall: float | None = None
    first_mono: float | None = None
    last_wall: float = 0.0
    last_mono: float = 0.0

    targets: dict[str, TargetState] = {}

    connections: dict[str, Connection] = {}
    closed_order: list[str] = []
    open_count: int = 0
    peak_open: int = 0
    opened_total: int = 0
    close_codes: dict[int, int] = {}
    closed_by: dict[str, int] = {}
    connect_failed: int = 0
    # wsmon's end of a tap's upstream leg or of a probe (what the server's log shows as the peer) → that
    # connection's id.
    relayed_peers: dict[str, str] = {}
    # Peers of server-log rows not yet matched to a tap or probe row → the log row's id: either witness
    # may speak first, and matching must not scan every connection.
    log_peers: dict[str, str] = {}
    # Log sources whose server a tap covers → the tap's target: their connection events enrich the tap's
    # rows and never count on their own.
    tapped_logs: dict[str, str] = {}
    # Closes not yet matched to the other witness, by close code: (mono, connection id), oldest first.
    # A log without peer addresses is matched to the tap's rows by close code and close time.
    tap_closes: dict[int, list[tuple[float, str]]] = {}
    log_closes: dict[int, list[tuple[float, str]]] = {}
    delivery_refs: dict[str, bool] = {}  # recent message ids whose delivery or failure is counted
    connect_fail_kinds: dict[str, int] = {}
    # Each kept connection's recent events (core.story, bounded there): the drill-down's story.
    timelines: dict[str, list[TimelineEntry]] = {}

    delivered: int = 0
    delivery_failed: int = 0
    failure_reasons: dict[str, int] = {}
    failures: list[DeliveryFailure] = []

    latency: dict[str, Distribution] = {}

    msgs_in: int = 0
    msgs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    # Messages a second as keyframes written before the per-second series kept them; nothing adds to it
    # now (a second's count is its timeline bucket's msgs), so it only fills from such a keyframe.
    msgs_by_second: dict[int, int] = {}
    peak_msgs_per_s: int = 0

    cpu: Series = msgspec.field(default_factory=Series)
    rss_mib: Series = msgspec.field(default_factory=Series)
    process: ProcessSample | None = None
    redis: RedisSample | None = None
    postgres: PostgresSample | None = None
    # Totals over every sample applied, not only the last one: a sample carries just its own interval's.
    pg_deadlocks: int = 0
    redis_slowlog: list[SlowlogEntry] = []  # the last MAX_SLOWLOG_KEPT slow commands, oldest first
    redis_slowlog_missed: int = 0  # slow commands that left the server's slowlog before a sample read them

    alerts: dict[str, ActiveAlert] = {}
    alerts_raised: int = 0
    breached: dict[str, float] = {}  # figure -> worst value seen while in breach

    markers: list[MarkerEntry] = []
    logs: list[LogEntry] = []
    log_counts: dict[str, int] = {}
    exits: list[ExitEntry] = []
    http: dict[str, HttpSample] = {}  # the latest poll of each HTTP health/metrics target
    # Trends toward max_connections and maxmemory (core.trend) need history, not just the last sample.
    pg_connections: Series = msgspec.field(default_factory=Series)
    redis_used_mib: Series = msgspec.field(default_factory=Series)
    tests: dict[str, TestRecord] = {}  # the observed test suite's tests by name, in start order
    test_run: TestRunRecord | None = None  # set when the watched test command ended (wsmon run)
    # The users' figures second by second (core.timeline); a recording older than it reads as empty.
    timeline: Timeline = msgspec.field(default_factory=Timeline)

    @property
    def duration_s(self) -> float:
        return 0.0 if self.first_mono is None else self.last_mono - self.first_mono

    def messages_per_s(self, window_s: int = 5) -> float:
        """Mean over the last complete seconds; the current second is still filling."""
        now = int(self.last_mono)
        return sum(self.msgs_in_second(s) for s in range(now - window_s, now)) / window_s

    def msgs_in_second(self, second: int) -> int:
        """Messages counted in ``second`` (of the last ten minutes): its timeline bucket's, or what a
        keyframe written before the per-second series holds (the larger: a keyframe of this session's
        first builds holds both, counting the same messages)."""
        bucket = self.timeline.at(second)
        count = bucket.msgs if bucket is not None else 0
        legacy = self.msgs_by_second
        return max(count, legacy.get(second, 0)) if legacy else count

    def delivery_success(self) -> float:
        attempts = self.delivered + self.delivery_failed
        return self.delivered / attempts if attempts else math.nan

    def connect_success(self) -> float:
        attempts = self.opened_total + self.connect_failed
        return self.opened_total / attempts if attempts else math.nan


def saturated_taps(state: State) -> list[str]:
    """The taps that cannot keep up now: connect times are not judged while there is one."""
    return [t.name for t in state.targets.values() if t.saturated_since is not None]


def decode_state(data: bytes) -> State:
    return _state_decoder.decode(data)


def encode_state(state: State) -> bytes:
    return _state_encoder.encode(state)


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(State)
