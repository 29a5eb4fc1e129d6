"""The one event stream: every fact wsmon learns is one of these typed, versioned events.

Events are msgspec Structs in a tagged union. They encode as arrays (``array_like``) with the
tag first, which keeps recordings small; ``to_dict`` gives the named form for JSON Lines and feeds.
Field order is part of the recording format: add fields only at the end, with a default, and bump
``SCHEMA_VERSION`` for anything else.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

import msgspec

SCHEMA_VERSION = 1

# "wsmon": cut by wsmon itself (its tap's worker died), not by either side of the connection.
Closer = Literal["client", "server", "neither", "unknown", "wsmon"]
FailKind = Literal["refused", "timeout", "rejected", "tls", "dns", "error"]
LatencyKind = Literal["connect", "ping", "roundtrip", "delivery", "e2e", "db", "redis", "http"]
AlertLevel = Literal["warn", "breach"]


# Each event class repeats frozen=True although msgspec inherits it: type checkers read Struct through
# dataclass_transform, where frozen is per class, and would take a subclass without it for a mutable one.
class Event(msgspec.Struct, tag_field="type", array_like=True, gc=False, frozen=True):
    """Every event carries the UTC wall time and the monotonic time it was observed at (seconds)."""

    wall: float
    mono: float


class TargetAdded(Event, tag="target", frozen=True):
    """A target wsmon watches; ``address`` is already redacted."""

    target: str
    kind: str  # "websocket" | "server" | "process" | "redis" | "postgres" | "http" | "log"
    address: str = ""
    # A tap's: the log sources (targets) of the server it fronts. Their connection events then enrich
    # the tap's rows instead of counting again (docs/design.md, "One connection, two witnesses").
    covers: list[str] = []
    # A target wsmon starts itself (or that depends on a server it starts): STARTING until its first
    # UP, and a TargetDown before that is no outage unless start-up failed or took over the timeout.
    starting: bool = False
    startup_timeout_s: float = 0.0


class TargetDown(Event, tag="down", frozen=True):
    target: str
    error: str
    kind: str = ""  # refused, timeout, auth, exited, ...


class TargetUp(Event, tag="up", frozen=True):
    target: str
    detail: str = ""


class TapSaturation(Event, tag="tap.saturation", frozen=True):
    """A tap cannot keep up (``saturated``) or keeps up again: its own delay (its event loop's lag,
    ``lag_ms`` p95 over the last second) is then a material share of the handshakes it measures, so the
    connect times it reports while saturated are its own delay as much as the server's, and not judged."""

    target: str
    saturated: bool
    lag_ms: float = 0.0
    detail: str = ""


class Hint(Event, tag="hint", frozen=True):
    """Something the user can fix, e.g. 'run as the same user to read the process'."""

    target: str
    text: str


class ConnectionConnecting(Event, tag="conn.connecting", frozen=True):
    conn: str
    peer: str = ""
    path: str = ""
    source: str = ""


class ConnectionOpened(Event, tag="conn.open", frozen=True):
    conn: str
    peer: str = ""
    path: str = ""
    handshake_ms: float | None = None
    source: str = ""
    own: bool = False  # wsmon's own probe connection, kept out of the users' figures
    local: str = ""  # our end's address for own connections: the server's log shows it as the peer
    subprotocol: str = ""  # the negotiated Sec-WebSocket-Protocol, as the tap saw it
    extensions: str = ""  # the negotiated Sec-WebSocket-Extensions, as the tap saw it


class ConnectionClosing(Event, tag="conn.closing", frozen=True):
    conn: str
    by: Closer = "unknown"


class ConnectionClosed(Event, tag="conn.close", frozen=True):
    """``code`` is 1006 when no close frame was seen, 1005 when the frame carried no status."""

    conn: str
    code: int
    reason: str = ""
    closed_by: Closer = "unknown"
    duration_s: float | None = None
    source: str = ""
    own: bool = False
    answered: bool | None = None  # whether the other side answered the first close frame; None: unknown


class ConnectFailed(Event, tag="conn.fail", frozen=True):
    target: str
    kind: FailKind
    error: str = ""
    status: int | None = None  # the HTTP status of a rejected handshake
    source: str = ""
    own: bool = False


class Traffic(Event, tag="traffic", frozen=True):
    """Messages and bytes of one connection over one interval; 'in' is client to server."""

    conn: str
    msgs_in: int = 0
    msgs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    interval_s: float = 1.0
    own: bool = False
    # Messages by type and direction, e.g. {"text_in": 3, "binary_out": 1, "ping_in": 1}, where known.
    by_type: dict[str, int] = {}


class DeliveryFailed(Event, tag="delivery.fail", frozen=True):
    message_id: str
    conn: str = ""
    reason: str = ""
    source: str = ""


class LatencySample(Event, tag="latency", frozen=True):
    """One measured latency. A ``delivery`` sample also counts as one successful delivery."""

    kind: LatencyKind
    ms: float
    target: str = ""
    ref: str = ""  # the message a delivery sample is about: two witnesses of one delivery count once
    own: bool = False  # measured on wsmon's own probe connection: reported apart from the users' figures
    # A delivery's sending connection, and the one its ack came back on when that is another ("" when
    # it is the same one, or not known): the connection's story counts the delivery (core.story).
    conn: str = ""
    ack_conn: str = ""
    # A tap's handshake timed across a stall of the tap's own event loop: its delay, not the server's.
    stalled: bool = False


class ProcessSample(Event, tag="process", frozen=True):
    """The server's process tree. CPU is percent of one core, as top shows it."""

    target: str
    pid: int
    cpu_percent: float
    rss_bytes: int
    threads: int = 0
    fds: int = 0
    tcp: dict[str, int] = {}
    cores: int = 1
    processes: int = 1


class SlowlogEntry(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """A slow command without its argument values: its name, argument count and duration."""

    id: int
    duration_us: int
    command: str
    args: int
    client: str = ""


class PubsubChannel(msgspec.Struct, frozen=True, gc=False):
    channel: str
    subscribers: int


class PubsubLimit(msgspec.Struct, frozen=True, gc=False):
    """client-output-buffer-limit for pubsub clients, bytes and seconds (0: no limit)."""

    hard: int
    soft: int
    soft_seconds: int


class PubsubClientNearLimit(msgspec.Struct, frozen=True, gc=False):
    """A subscriber whose output buffer is filling: at ``ratio`` 1.0 Redis disconnects it."""

    client: str
    addr: str
    omem: int
    limit: int
    ratio: float


class RedisExtra(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What a Redis sample knows beyond its headline figures; defaults mean "not known".

    Recordings made before this was typed hold a plain map here with these same keys, and a map
    decodes into this Struct by name: old recordings read as they are, and new ones encode to the same
    bytes (``omit_defaults``, fields in the order the source used to fill the map).
    """

    rejected_connections_total: int | None = None
    evicted_keys_total: int | None = None
    maxmemory_policy: str = ""
    redis_version: str = ""
    uptime_in_seconds: int | None = None
    used_memory_peak: int | None = None
    pubsub_channels: int | None = None
    pubsub_top: list[PubsubChannel] = []  # the busiest channels, most subscribers first
    pubsub_patterns: int | None = None
    slowlog: list[SlowlogEntry] = []  # only the entries new since the previous sample
    slowlog_missed: int = 0  # new entries that fell out of the server's slowlog before they were read
    pubsub_clients: int | None = None
    pubsub_limit: PubsubLimit | None = None
    pubsub_near_limit: list[PubsubClientNearLimit] = []


class RedisSample(Event, tag="redis", frozen=True):
    target: str
    ping_ms: float | None = None
    connected_clients: int | None = None
    blocked_clients: int | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    ops_per_sec: float | None = None
    rejected_connections: int | None = None
    evicted_keys: int | None = None
    hit_ratio: float | None = None
    extra: RedisExtra = RedisExtra()


class PostgresSample(Event, tag="postgres", frozen=True):
    target: str
    select1_ms: float | None = None
    sessions: dict[str, int] = {}
    connections: int | None = None
    max_connections: int | None = None
    longest_query_s: float | None = None
    longest_xact_s: float | None = None
    commits_per_s: float | None = None
    rollbacks_per_s: float | None = None
    deadlocks: int | None = None
    notify_queue_usage: float | None = None
    extra: dict[str, Any] = {}


class AlertRaised(Event, tag="alert", frozen=True):
    figure: str
    level: AlertLevel
    value: float
    limit: float
    message: str = ""


class AlertCleared(Event, tag="alert.clear", frozen=True):
    figure: str
    value: float


class Marker(Event, tag="marker", frozen=True):
    text: str


class LogLine(Event, tag="log", frozen=True):
    level: str
    text: str
    source: str = ""
    # The line's structured fields as text (JSON keys, nested ones dotted; key=value pairs), so an
    # export, the report and a connection's timeline can show the error text and ids. Capped in size,
    # secrets masked (wsmon.sources.logs.vocabulary.kept_fields).
    fields: dict[str, str] = {}


class ServerExit(Event, tag="exit", frozen=True):
    target: str
    pid: int | None = None
    code: int | None = None
    signal: int | None = None
    last_lines: list[str] = []


class HttpSample(Event, tag="http", frozen=True):
    """One poll of an HTTP health or Prometheus metrics URL; ``status`` is None when no response came."""

    target: str
    status: int | None = None
    ms: float | None = None
    health: str = ""  # the JSON body's "status" field, when it has one
    series: dict[str, float] = {}  # the Prometheus series named in wsmon.toml (finite values only)
    error: str = ""


class TestEvent(Event, tag="test", frozen=True):
    """A test of the suite under observation started or ended (live from the pytest plugin, or placed
    afterwards from the runner's results: JUnit XML, jest --json, go test -json, TAP)."""

    __test__ = False  # not a pytest test class, whatever its name says

    name: str
    phase: Literal["start", "end"]
    outcome: str = ""  # passed | failed | error | skipped, on "end"
    duration_s: float | None = None
    message: str = ""  # the failure's message, first line
    # The window is derived from durations (JUnit, jest's per-test times, TAP), not given by the runner.
    approximate: bool = False


class TestRunEnded(Event, tag="tests.ended", frozen=True):
    """The test command `wsmon run` watched has ended: its exit code and how many tests reported.

    Recorded so a report read later judges the tests exactly as the live run did.
    """

    __test__ = False

    command: str  # shlex.join of the test command, secrets masked
    exit_code: int | None = None  # None: the command never started
    ran: int | None = None  # tests with a result (plugin or result files); None: nothing could tell
    note: str = ""  # how "no tests ran" was known, e.g. "pytest exit 5: no tests were collected"


AnyEvent = (
    TargetAdded
    | TargetDown
    | TargetUp
    | Hint
    | ConnectionConnecting
    | ConnectionOpened
    | ConnectionClosing
    | ConnectionClosed
    | ConnectFailed
    | Traffic
    | DeliveryFailed
    | LatencySample
    | ProcessSample
    | RedisSample
    | PostgresSample
    | AlertRaised
    | AlertCleared
    | Marker
    | LogLine
    | ServerExit
    | HttpSample
    | TestEvent
    | TestRunEnded
    | TapSaturation
)

EVENT_TYPES: tuple[type[Event], ...] = get_args(AnyEvent)


def _tag(cls: type[Event]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str), f"{cls.__name__} has no string tag"  # msgspec also allows int tags
    return tag


TAGS: dict[type[Event], str] = {cls: _tag(cls) for cls in EVENT_TYPES}


def to_dict(event: Event) -> dict[str, Any]:
    """The named form of an event, tag first: what JSON Lines exports and feeds carry."""
    out: dict[str, Any] = {"type": TAGS[type(event)], "wall": event.wall, "mono": event.mono}
    for name, value in msgspec.structs.asdict(event).items():
        # A nested Struct (RedisSample.extra) goes out as the plain map JSON Lines and feeds carry.
        out[name] = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value
    return out


_BY_TAG: dict[str, type[Event]] = {tag: cls for cls, tag in TAGS.items()}
_INDEX = re.compile(r"\$\[(\d+)\]")


def from_dict(data: dict[str, Any]) -> Event:
    """Validate a named-form event (from a feed or a JSON Lines file); raises msgspec.ValidationError.

    Missing fields take their defaults and unknown keys are ignored, so either side may be newer.
    """
    tag = data.get("type") if isinstance(data, dict) else None
    cls = _BY_TAG.get(tag) if isinstance(tag, str) else None
    if cls is None:
        got = tag if isinstance(data, dict) else type(data).__name__
        raise msgspec.ValidationError(f"Expected an event object with a known `type`, got {got!r}")
    # array_like Structs convert only from arrays, so lay the named fields out in the array's order and
    # let msgspec validate them there.
    fields = msgspec.structs.fields(cls)
    row: list[Any] = [TAGS[cls]]
    for field in fields:
        if field.name in data:
            row.append(data[field.name])
        elif field.required:
            raise msgspec.ValidationError(f"Object missing required field `{field.name}`")
        else:
            row.append(field.default if field.default is not msgspec.NODEFAULT else field.default_factory())
    try:
        return msgspec.convert(row, AnyEvent)
    except msgspec.ValidationError as error:
        named = _INDEX.sub(lambda m: f"$.{fields[int(m.group(1)) - 1].name}", str(error), count=1)
        raise msgspec.ValidationError(named) from None
