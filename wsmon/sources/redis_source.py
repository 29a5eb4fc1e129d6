"""Redis through redis.asyncio: PING latency, INFO figures, pub/sub channels, new slowlog entries,
and pub/sub clients whose output buffer nears the limit at which Redis cuts them off.

Read-only: every command here only reads. Each command but the connection itself is optional: one the
ACL user may not run becomes a hint naming it (once), and the others keep working.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import CheckResult, Down, Emit, PolledSource, Up, now
from wsmon.sources.scrub import scrub

# The ACL rule that allows everything this source runs, and nothing else.
ACL_RULE = "+ping +info +pubsub|channels +pubsub|numsub +pubsub|numpat +slowlog|get +client|list +config|get"
TOP_CHANNELS = 20
MAX_CHANNELS_COUNTED = 1000  # PUBSUB NUMSUB is asked about at most this many channels a sample
SLOWLOG_FETCH = 32
COMMAND_CHARS = 80
NEAR_LIMIT = 0.5  # a subscriber is "near" the limit from half of it on
DEFAULT_PUBSUB_LIMIT = (32 * 1024 * 1024, 8 * 1024 * 1024, 60)  # Redis's own default: hard, soft, seconds
# Commands whose first argument names what they do (CONFIG SET, CLIENT KILL): safe and useful to show.
_CONTAINERS = frozenset(
    {
        "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
        "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
    }
)  # fmt: skip
_MORE_ARGS = re.compile(r"^\.\.\. \((\d+) more arguments\)$")

# What the user loses when a command is denied, for the hint.
_LOSES = {
    "PING": "the PING latency",
    "INFO": "clients, memory, ops/s, evictions and hit ratio",
    "PUBSUB CHANNELS": "pub/sub channels",
    "PUBSUB NUMSUB": "subscriber counts",
    "PUBSUB NUMPAT": "pattern subscriptions",
    "SLOWLOG GET": "slow commands",
    "CLIENT LIST": "subscribers near the output-buffer limit",
    "CONFIG GET": "the configured pub/sub buffer limit (Redis's default is assumed)",
}


def classify_redis_error(exc: BaseException) -> tuple[str, str]:
    """(kind, one-line error) for a failed connection or command."""
    cause = exc.__context__ or exc.__cause__
    text = str(exc)
    if isinstance(exc, rex.AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
        if "required" in text.lower() or "HELLO must be called" in text:
            return "auth", "authentication required (no password given)"
        return "auth", f"authentication failed: {text}"
    if isinstance(exc, rex.NoPermissionError):
        return "denied", f"permission denied: {text}"
    if isinstance(exc, rex.TimeoutError | TimeoutError):
        return "timeout", "timed out"
    if isinstance(exc, ConnectionRefusedError) or isinstance(cause, ConnectionRefusedError):
        return "refused", "connection refused (ECONNREFUSED)"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "dns", "name not resolved"
    if isinstance(exc, rex.BusyLoadingError):
        return "loading", "Redis is loading its dataset"
    if isinstance(exc, rex.InvalidResponse):
        return "error", "protocol error: is this a Redis server?"
    if isinstance(exc, rex.ConnectionError | ConnectionError | OSError):
        return "dropped", text or "connection lost"
    return "error", f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_pubsub_limit(config_value: str) -> tuple[int, int, int]:
    """(hard, soft, soft seconds) of the pubsub class in ``client-output-buffer-limit``."""
    words = config_value.split()
    for i in range(0, len(words) - 3, 4):
        if words[i] == "pubsub":
            try:
                return int(words[i + 1]), int(words[i + 2]), int(words[i + 3])
            except ValueError:
                break
    return DEFAULT_PUBSUB_LIMIT


def parse_client_list(text: str) -> list[dict[str, str]]:
    """CLIENT LIST lines as dicts; names cannot hold spaces, so splitting on them is safe."""
    clients = []
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields:
            clients.append(fields)
    return clients


def clients_near_limit(clients: list[dict[str, str]], limit: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Subscribers whose output buffer is at least NEAR_LIMIT of the limit that would disconnect them."""
    hard, soft, _seconds = limit
    effective = soft if soft > 0 else hard
    if effective <= 0:
        return []
    near = []
    for client in clients:
        try:
            omem = int(client.get("omem", "0"))
        except ValueError:
            continue
        if omem >= NEAR_LIMIT * effective:
            near.append(
                {
                    "client": client.get("name") or client.get("addr", ""),
                    "addr": client.get("addr", ""),
                    "omem": omem,
                    "limit": effective,
                    "ratio": round(omem / effective, 3),
                }
            )
    near.sort(key=lambda c: c["omem"], reverse=True)
    return near


def slowlog_entry(raw: list[Any]) -> dict[str, Any]:
    """A slowlog entry without argument values: the command name, its argument count, the duration."""
    entry_id, _started, duration_us, args = raw[0], raw[1], raw[2], list(raw[3])
    words = [str(a) for a in args]
    name_words = 1
    if len(words) > 1 and words[0].upper() in _CONTAINERS:
        name_words = 2
    command = " ".join(w.upper() for w in words[:name_words])[:COMMAND_CHARS]
    arg_count = len(words) - name_words
    # Redis keeps at most 32 arguments and says how many more there were in a last one.
    more = _MORE_ARGS.match(words[-1]) if words else None
    if more:
        arg_count += int(more.group(1)) - 1
    entry: dict[str, Any] = {"id": int(entry_id), "duration_us": int(duration_us), "command": command}
    entry["args"] = max(arg_count, 0)
    if len(raw) > 4:
        entry["client"] = str(raw[4])
    return entry


@dataclass
class _Baseline:
    """What the previous sample saw, for figures that are deltas."""

    mono: float
    run_id: str
    stats: dict[str, int]
    own_commands: int


@dataclass
class _Poll:
    """The result of one pass: sample fields, extra, and the denials seen on the way."""

    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    denied: list[str] = field(default_factory=list)
    version: str = ""


class RedisSource(PolledSource):
    """Samples one Redis every ``interval`` on one dedicated connection; never raises."""

    kind = "redis"

    def __init__(
        self, url: str, *, target: str = "redis", interval: float = 1.0, timeout: float = 2.0
    ) -> None:
        super().__init__(target, interval)
        self.url = url
        # redis-py 8 waits 5 s on a socket by default; a sample must fail faster than that.
        self.timeout = timeout
        self._client: aioredis.Redis | None = None
        self._denied: set[str] = set()
        self._hinted: set[str] = set()
        self._baseline: _Baseline | None = None
        self._own_commands = 0  # successful commands sent, so ops/s can leave wsmon's own out
        self._slowlog_run_id: str | None = None
        self._slowlog_last = -1
        self._pubsub_limit: tuple[int, int, int] | None = None

    @property
    def address(self) -> str:
        return redact_url(self.url)

    async def check(self) -> CheckResult:
        """Connect, PING, and try every command once: which ones the user may not run is the hint."""
        try:
            await self._connect()
            poll = await self._poll()
        except Exception as exc:
            kind, error = classify_redis_error(exc)
            return CheckResult(ok=False, error=scrub(error, self.url), kind=kind, hint=_failure_hint(kind))
        finally:
            await self.close()
        hint = "; ".join(_denied_hint(name) for name in poll.denied)
        return CheckResult(ok=True, latency_ms=poll.fields.get("ping_ms"), hint=hint)

    async def poll_once(self, emit: Emit) -> Up | Down:
        try:
            await self._connect()
            poll = await self._poll()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            kind, error = classify_redis_error(exc)
            if kind == "error":
                wall, mono = now()
                text = scrub(f"redis sample failed: {error}", self.url)
                emit(ev.LogLine(wall=wall, mono=mono, level="error", text=text, source=self.target))
            await self.close()
            return Down(scrub(error, self.url), kind)
        wall, mono = now()
        read: list[ev.Event] = []
        for name in poll.denied:
            if name not in self._hinted:
                self._hinted.add(name)
                read.append(ev.Hint(wall=wall, mono=mono, target=self.target, text=_denied_hint(name)))
        extra = msgspec.convert(poll.extra, ev.RedisExtra)  # the map's keys are RedisExtra's fields
        read.append(ev.RedisSample(wall=wall, mono=mono, target=self.target, extra=extra, **poll.fields))
        ping_ms = poll.fields.get("ping_ms")
        if ping_ms is not None:
            read.append(ev.LatencySample(wall=wall, mono=mono, kind="redis", ms=ping_ms, target=self.target))
        return Up(f"Redis {poll.version}" if poll.version else "", then=read)

    async def _connect(self) -> None:
        if self._client is not None:
            return
        client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            # A failed sample is retried by our own backoff; redis-py's retries would hide the outage.
            retry=Retry(NoBackoff(), 0),
            single_connection_client=True,
            decode_responses=True,
            # RESP2 works with every Redis still in use; RESP3's HELLO does not exist before 6.
            protocol=2,
        )
        try:
            await client.initialize()
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._baseline = None
        self._pubsub_limit = None
        self._denied.clear()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:
                pass

    async def _command(self, poll: _Poll, name: str, *args: Any) -> Any:
        """Run an optional command; None when the user may not run it or the server does not know it."""
        if name in self._denied:
            return None
        assert self._client is not None
        try:
            result = await self._client.execute_command(*args)
        except rex.ResponseError as exc:
            if isinstance(exc, rex.NoPermissionError) or "unknown" in str(exc).lower():
                self._denied.add(name)
                poll.denied.append(name)
                return None
            raise
        self._own_commands += 1
        return result

    async def _poll(self) -> _Poll:
        poll = _Poll()
        started = time.perf_counter()
        pong = await self._command(poll, "PING", "PING")
        if pong is not None:
            poll.fields["ping_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        own_before_info = self._own_commands
        info = await self._command(poll, "INFO", "INFO")
        if isinstance(info, dict):
            self._read_info(poll, info, own_before_info)
        await self._read_pubsub(poll)
        await self._read_slowlog(poll, str(info.get("run_id", "")) if isinstance(info, dict) else "")
        await self._read_buffers(poll)
        return poll

    def _read_info(self, poll: _Poll, info: dict[str, Any], own_before_info: int) -> None:
        poll.version = str(info.get("redis_version", ""))
        fields = poll.fields
        for name in ("connected_clients", "blocked_clients", "used_memory", "maxmemory"):
            if name in info:
                fields[name] = int(info[name])
        counters = {
            name: int(info.get(name, 0))
            for name in (
                "total_commands_processed",
                "rejected_connections",
                "evicted_keys",
                "keyspace_hits",
                "keyspace_misses",
            )
        }
        run_id = str(info.get("run_id", ""))
        mono = time.monotonic()
        base = self._baseline
        if base is None or base.run_id != run_id or mono <= base.mono:
            fields["ops_per_sec"] = float(info.get("instantaneous_ops_per_sec", 0))
        else:
            delta = {name: counters[name] - base.stats[name] for name in counters}
            if min(delta.values()) >= 0:
                others = max(delta["total_commands_processed"] - (own_before_info - base.own_commands), 0)
                fields["ops_per_sec"] = round(others / (mono - base.mono), 2)
                fields["rejected_connections"] = delta["rejected_connections"]
                fields["evicted_keys"] = delta["evicted_keys"]
                lookups = delta["keyspace_hits"] + delta["keyspace_misses"]
                if lookups:
                    fields["hit_ratio"] = round(delta["keyspace_hits"] / lookups, 4)
        self._baseline = _Baseline(mono, run_id, counters, own_before_info)
        poll.extra["rejected_connections_total"] = counters["rejected_connections"]
        poll.extra["evicted_keys_total"] = counters["evicted_keys"]
        for name in ("maxmemory_policy", "redis_version", "uptime_in_seconds", "used_memory_peak"):
            if name in info:
                poll.extra[name] = info[name]

    async def _read_pubsub(self, poll: _Poll) -> None:
        channels = await self._command(poll, "PUBSUB CHANNELS", "PUBSUB", "CHANNELS")
        if channels is not None:
            poll.extra["pubsub_channels"] = len(channels)
            counted = sorted(str(c) for c in channels)[:MAX_CHANNELS_COUNTED]
            if counted:
                flat = await self._command(poll, "PUBSUB NUMSUB", "PUBSUB", "NUMSUB", *counted)
                if flat is not None:
                    pairs = [(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]
                    pairs.sort(key=lambda p: (-p[1], p[0]))
                    poll.extra["pubsub_top"] = [
                        {"channel": name, "subscribers": count} for name, count in pairs[:TOP_CHANNELS]
                    ]
        patterns = await self._command(poll, "PUBSUB NUMPAT", "PUBSUB", "NUMPAT")
        if patterns is not None:
            poll.extra["pubsub_patterns"] = int(patterns)

    async def _read_slowlog(self, poll: _Poll, run_id: str) -> None:
        # SLOWLOG GET is sent as two words so redis-py hands back the raw entries: its own parser
        # joins the arguments, values included, into one string.
        raw = await self._command(poll, "SLOWLOG GET", "SLOWLOG", "GET", SLOWLOG_FETCH)
        if raw is None:
            return
        entries = [slowlog_entry(item) for item in raw]
        newest = max((e["id"] for e in entries), default=-1)
        if self._slowlog_run_id is None:
            # The first look sets the baseline: only what happens while wsmon watches is new.
            self._slowlog_run_id = run_id
            self._slowlog_last = newest
            return
        if run_id != self._slowlog_run_id:
            self._slowlog_run_id = run_id  # a restarted Redis numbers its slowlog from 0 again
            self._slowlog_last = -1
        fresh = sorted((e for e in entries if e["id"] > self._slowlog_last), key=lambda e: e["id"])
        if fresh:
            missed = newest - self._slowlog_last - len(fresh) if self._slowlog_last >= 0 else 0
            poll.extra["slowlog"] = fresh
            if missed > 0:
                poll.extra["slowlog_missed"] = missed
            self._slowlog_last = newest

    async def _read_buffers(self, poll: _Poll) -> None:
        if self._pubsub_limit is None:
            config = await self._command(poll, "CONFIG GET", "CONFIG", "GET", "client-output-buffer-limit")
            if isinstance(config, list):  # RESP2 answers with a flat name, value list
                config = dict(zip(config[::2], config[1::2], strict=False))
            value = config.get("client-output-buffer-limit", "") if isinstance(config, dict) else ""
            self._pubsub_limit = parse_pubsub_limit(value)
        listing = await self._command(poll, "CLIENT LIST", "CLIENT", "LIST", "TYPE", "pubsub")
        if listing is None:
            return
        clients = parse_client_list(str(listing))
        poll.extra["pubsub_clients"] = len(clients)
        hard, soft, seconds = self._pubsub_limit
        poll.extra["pubsub_limit"] = {"hard": hard, "soft": soft, "soft_seconds": seconds}
        near = clients_near_limit(clients, self._pubsub_limit)
        if near:
            poll.extra["pubsub_near_limit"] = near


def _denied_hint(name: str) -> str:
    acl = name.lower().replace(" ", "|")
    return f"Redis would not run {name} for this user: {_LOSES.get(name, 'a figure')} not shown (ACL: +{acl})"


def _failure_hint(kind: str) -> str:
    return {
        "refused": "is redis-server running, and on this host and port?",
        "auth": "check the user and password in the Redis URL",
        "timeout": "the server did not answer in time: overloaded, paused, or a firewall dropping packets",
        "dns": "check the host name in the Redis URL",
    }.get(kind, "")
