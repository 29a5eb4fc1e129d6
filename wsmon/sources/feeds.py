"""Event feeds: events a fleet of servers publishes for wsmon, in the named event form (docs/events.md).

``--feed redis://host:port/db#channel``        Redis pub/sub (SUBSCRIBE)
``--feed redis://host:port/db#stream:KEY``     a Redis Stream (XREAD BLOCK; never XADD, XDEL or groups)
``--feed postgresql://user@host/db#channel``   PostgreSQL LISTEN

Each message is one JSON object such as ``{"type": "conn.close", "conn": "c17", "code": 1006}``. ``wall``
is optional (default: when wsmon received it); ``mono`` is always replaced by wsmon's own monotonic
clock at receipt, since another machine's monotonic clock means nothing here. An optional ``instance``
prefixes connection ids (``i1/c17``) so the connections of several servers do not collide. A message
that is not a valid event becomes a warning log line naming what was wrong; it never stops the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import Backoff, CheckResult, Emit, Retell, Source, now, raise_if_cancelled
from wsmon.sources.logs.rules import lenient_event
from wsmon.sources.postgres import PostgresSource, classify_postgres_error, connect_postgres
from wsmon.sources.redis_source import RedisSource, classify_redis_error
from wsmon.sources.scrub import scrub

FeedKind = Literal["redis-pubsub", "redis-stream", "postgres"]
Clock = Callable[[], tuple[float, float]]
MAX_MESSAGE_BYTES = 1 << 20
PREVIEW_CHARS = 120
MAX_WHY_CHARS = 300  # of a rejection's reason: msgspec quotes what it got, which can be a megabyte
INT_RANGE = (-(2**63), 2**64 - 1)  # what a recording (msgpack) can hold
CONNECT_TIMEOUT = 5.0
STREAM_BLOCK_MS = 1000
# XREVRANGE's and XREAD's replies as _redis's client gets them: RESP2 (protocol=2), bytes (no
# decode_responses). redis-py's own types also cover RESP3's dict replies and the nil entries XCLAIM can
# give, which these commands never do over RESP2; XREAD's [stream, entries] pairs are lists, unpacked alike.
_StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
_XReadReply = list[tuple[bytes, _StreamEntries]]
PG_KEEPALIVE_S = 15.0  # a LISTEN connection is otherwise silent: this is how a dead one is noticed
_JSON_FIELDS = (b"event", b"data", b"json")  # a stream entry carrying the event as one JSON value


class FeedSpecError(ValueError):
    """A ``--feed`` that cannot be understood; the message is one line with an example."""


@dataclass(frozen=True)
class FeedSpec:
    kind: FeedKind
    url: str  # without the fragment, password included: never shown
    name: str  # the channel, or the stream key

    @property
    def shown(self) -> str:
        """The spec as it may be shown or recorded: password masked."""
        fragment = f"stream:{self.name}" if self.kind == "redis-stream" else self.name
        return f"{redact_url(self.url)}#{fragment}"


def parse_feed_spec(spec: str) -> FeedSpec:
    try:
        parts = urlsplit(spec)
    except ValueError as error:
        raise FeedSpecError(f"--feed {redact_url(spec)}: not a URL: {error}") from None
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    shown = redact_url(spec)
    fragment = parts.fragment
    if parts.scheme in ("redis", "rediss"):
        if not fragment:
            raise FeedSpecError(
                f"--feed {shown}: name the channel after '#', e.g. redis://localhost:6379/0#wsmon-events "
                "or redis://localhost:6379/0#stream:wsmon-events"
            )
        if fragment.startswith("stream:"):
            key = fragment.removeprefix("stream:")
            if not key:
                raise FeedSpecError(f"--feed {shown}: name the stream key after '#stream:'")
            return FeedSpec("redis-stream", url, key)
        return FeedSpec("redis-pubsub", url, fragment)
    if parts.scheme in ("postgresql", "postgres"):
        if not fragment:
            raise FeedSpecError(
                f"--feed {shown}: name the NOTIFY channel after '#', e.g. postgresql://localhost/app#wsmon_events"
            )
        return FeedSpec("postgres", url, fragment)
    raise FeedSpecError(
        f"--feed {shown}: expected redis://…#channel, redis://…#stream:KEY or postgresql://…#channel"
    )


def decode_feed_message(raw: bytes | str | Mapping[Any, Any], *, target: str, clock: Clock) -> ev.Event:
    """One feed message as an event; anything wrong with it gives a warning LogLine instead.

    ``raw`` is JSON text, or a Redis stream entry's field map (values as text, converted to each field's
    type). ``mono`` is replaced by wsmon's clock, and ``wall`` defaults to it.
    """
    wall, mono = clock()

    def rejected(why: str) -> ev.LogLine:
        if len(why) > MAX_WHY_CHARS:
            why = why[:MAX_WHY_CHARS] + "…"
        return ev.LogLine(
            wall=wall, mono=mono, level="warn", text=f"feed message rejected: {why}", source=target
        )

    lenient = False
    if isinstance(raw, Mapping):
        fields = {_text(k): v for k, v in raw.items()}
        inner = next((fields[k.decode()] for k in _JSON_FIELDS if k.decode() in fields), None)
        if inner is None:
            data: Any = {k: _text(v) for k, v in fields.items()}
            lenient = True
        else:
            raw = inner
    if not lenient:
        assert isinstance(raw, bytes | str)
        if len(raw) > MAX_MESSAGE_BYTES:
            return rejected(f"larger than {MAX_MESSAGE_BYTES} bytes")
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as error:
            return rejected(f"not JSON ({error}): {_preview(raw)}")
        except RecursionError:
            return rejected(f"nested too deeply: {_preview(raw)}")
    if not isinstance(data, dict):
        return rejected(f"expected a JSON object, got {type(data).__name__}: {_preview(raw)}")
    data = dict(data)
    instance = data.pop("instance", None)
    if instance is not None and not isinstance(instance, str | int):
        return rejected(f"`instance` must be a string, got {type(instance).__name__}")
    sent_wall = data.get("wall")
    if lenient and isinstance(sent_wall, str):
        try:
            sent_wall = float(sent_wall)
        except ValueError:
            return rejected(f"`wall` must be a number of seconds, got {_preview(sent_wall)}")
    if sent_wall is None:
        sent_wall = wall
    elif isinstance(sent_wall, bool) or not isinstance(sent_wall, int | float):
        return rejected(f"`wall` must be a number of seconds, got {_preview(repr(sent_wall))}")
    if not _finite(sent_wall):
        return rejected(f"`wall` must be a finite number of seconds, got {_preview(repr(sent_wall))}")
    data["wall"] = float(sent_wall)
    data["mono"] = mono
    try:
        event = lenient_event(data) if lenient else ev.from_dict(data)
    except msgspec.ValidationError as error:
        return rejected(f"{error}: {_preview(raw)}")
    huge = next((name for name in event.__struct_fields__ if _out_of_range(getattr(event, name))), None)
    if huge is not None:
        return rejected(f"`{huge}` holds an integer beyond 64 bits: {_preview(raw)}")
    changes: dict[str, Any] = {}
    conn = getattr(event, "conn", "")
    if instance not in (None, "") and conn:
        changes["conn"] = f"{instance}/{conn}"
    if not getattr(event, "source", True):  # True: an event without a `source` field is left as it is
        changes["source"] = str(instance) if instance not in (None, "") else target
    return msgspec.structs.replace(event, **changes) if changes else event


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer of hundreds of digits
        return False


def _out_of_range(value: Any) -> bool:
    if isinstance(value, list):
        return any(_out_of_range(item) for item in value[:1000])
    return isinstance(value, int) and not INT_RANGE[0] <= value <= INT_RANGE[1]


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _preview(raw: Any) -> str:
    text = _text(raw) if isinstance(raw, bytes | str) else repr(raw)
    return repr(text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else ""))


class FeedSource(Source):
    """Receives events from one feed and emits them; reconnects with backoff; never raises."""

    retell = Retell.ERROR  # a feed down for another reason says so

    def __init__(self, spec: FeedSpec | str, *, target: str = "feed") -> None:
        super().__init__(target)
        self.spec = parse_feed_spec(spec) if isinstance(spec, str) else spec
        self.subscribed = asyncio.Event()  # set while subscribed/listening: tests publish after it
        self._last_id: bytes | str | None = None  # the stream entry read last, kept across reconnects

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(ev.TargetAdded(wall=wall, mono=mono, target=self.target, kind="feed", address=self.spec.shown))
        receive = {
            "redis-pubsub": self._redis_pubsub,
            "redis-stream": self._redis_stream,
            "postgres": self._postgres,
        }[self.spec.kind]
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                await receive(emit, backoff)
            except Exception as error:
                raise_if_cancelled()
                self.subscribed.clear()
                classify = classify_postgres_error if self.spec.kind == "postgres" else classify_redis_error
                kind, text = classify(error)
                self.status.mark_down(emit, scrub(text, self.spec.url), kind)
            await asyncio.sleep(backoff.next())

    async def check(self) -> CheckResult:
        """The feed's server answers, for `wsmon check`: a connection, as its own source would make."""
        if self.spec.kind == "postgres":
            return await PostgresSource(self.spec.url).check()
        return await RedisSource(self.spec.url).check()

    def _mark_up(self, emit: Emit, backoff: Backoff, detail: str) -> None:
        self.subscribed.set()
        backoff.reset()
        self.status.mark_up(emit, detail)

    def _redis(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.spec.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=CONNECT_TIMEOUT + STREAM_BLOCK_MS / 1000,
            retry=Retry(NoBackoff(), 0),  # our backoff, and TargetDown, instead of hidden retries
            health_check_interval=15,
            protocol=2,
        )

    async def _redis_pubsub(self, emit: Emit, backoff: Backoff) -> None:
        client = self._redis()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.spec.name)
            self._mark_up(emit, backoff, f"subscribed to {self.spec.name}")
            while True:
                message = await pubsub.get_message(timeout=1.0)
                raise_if_cancelled()
                if message is not None and message.get("type") == "message":
                    emit(decode_feed_message(message["data"], target=self.target, clock=now))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _redis_stream(self, emit: Emit, backoff: Backoff) -> None:
        client = self._redis()
        key = self.spec.name
        try:
            if self._last_id is None:
                # The newest entry now, so nothing added between this and the first XREAD is missed.
                newest = cast("_StreamEntries | None", await client.xrevrange(key, "+", "-", count=1))
                self._last_id = newest[0][0] if newest else b"0-0"
            self._mark_up(emit, backoff, f"reading stream {key}")
            while True:
                # After a reconnect this goes on from the last entry seen: nothing sent meanwhile is lost.
                reply = await client.xread({key: self._last_id}, count=100, block=STREAM_BLOCK_MS)
                raise_if_cancelled()
                for _stream, entries in cast("_XReadReply", reply or []):
                    for entry_id, fields in entries:
                        self._last_id = entry_id
                        emit(decode_feed_message(fields, target=self.target, clock=now))
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _postgres(self, emit: Emit, backoff: Backoff) -> None:
        conn = await connect_postgres(self.spec.url, timeout=CONNECT_TIMEOUT)
        lost = asyncio.Event()
        try:
            await conn.execute("SET application_name = 'wsmon-feed'")
            await conn.execute("SET default_transaction_read_only = on")

            def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
                emit(decode_feed_message(payload, target=self.target, clock=now))

            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self.spec.name, on_notify)
            self._mark_up(emit, backoff, f"listening on {self.spec.name}")
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PG_KEEPALIVE_S)
                if lost.is_set() or conn.is_closed():
                    raise ConnectionError("connection lost")
                await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()


__all__ = ["FeedSource", "FeedSpec", "FeedSpecError", "decode_feed_message", "parse_feed_spec"]
