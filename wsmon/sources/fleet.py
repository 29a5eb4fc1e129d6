"""`wsmon fleet redis://…`: every node's stream (written by `wsmon attach --publish`), merged into one
session with a node dimension (core/fleet.py).

Nodes are found in the registry set (``wsmon:fleet:nodes``), re-read every ``DISCOVER_S``. Each
viewer reads with a consumer group of its own (XREADGROUP … NOACK), created on demand at the start of
each stream, so two people watching one fleet each see every entry, and a viewer sees what the
streams retain from before it started. A node is a target: UP on its first entry, DOWN when no entry
(each is a heartbeat) came for ``MISSED_HEARTBEATS`` heartbeat intervals, UP again when one does. Lost
events are said, never silent: the events an agent dropped while Redis was unreachable (its entry's
``gap``), and entries trimmed from a stream before this viewer read them (a jump in ``seq``).

A node's events keep their wall time; their monotonic time is moved onto this machine's clock (the
offset is the smallest seen between the entry's send and its receipt), never ahead of the receipt and
never behind an event already emitted, so the State's clock only moves forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import cast

import msgspec
import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import KeyT, StreamIdT

from wsmon.core import events as ev
from wsmon.core.fleet import (
    FORMAT,
    LOST_ENTRIES,
    LOST_EVENTS,
    NODE_KIND,
    REGISTRY,
    check_node_name,
    stream_key,
    to_fleet,
)
from wsmon.core.redact import redact_url
from wsmon.sources.base import (
    Backoff,
    CheckResult,
    Emit,
    Retell,
    Source,
    TargetStatus,
    now,
    raise_if_cancelled,
)
from wsmon.sources.redis_source import RedisSource, classify_redis_error
from wsmon.sources.scrub import scrub

DISCOVER_S = 1.0
BLOCK_MS = 100  # how long one read waits: also how often heartbeats are judged
READ_COUNT = 100  # entries per stream per read
MISSED_HEARTBEATS = 2
CONNECT_TIMEOUT_S = 5.0
CONSUMER = "viewer"
ENDED = "ended"  # the TargetDown kind of a node whose agent said goodbye (its last entry)
# XREADGROUP's reply as the client gets it over RESP2 without decoding: [stream, [(id, fields)]] pairs.
_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_ReadReply = list[tuple[bytes, _Entries]]


def default_group() -> str:
    """A group of this viewer alone (user, host, process, and a random part for two in one process):
    two viewers never split one fleet's entries."""
    return f"wsmon-{getpass.getuser()}@{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass
class Node:
    name: str
    status: TargetStatus
    heartbeat_s: float = 1.0
    seen_mono: float = 0.0  # this machine's clock when its last entry arrived
    run: bytes = b""
    seq: int = 0
    offset: float | None = None  # our monotonic clock minus the node's
    sent_mono: float = 0.0
    lost_events: int = 0
    lost_entries: int = 0
    warned: set[str] = field(default_factory=set)


class FleetSource(Source):
    """Reads every node's stream into the session; a Redis outage is a DOWN of the fleet target, and
    the nodes' buffered events arrive when it returns."""

    retell = Retell.ERROR

    def __init__(
        self, url: str, *, group: str | None = None, keep_group: bool = False, target: str = "fleet"
    ) -> None:
        super().__init__(target)
        self.url = url
        self.group = group or default_group()
        # A group named by the user is theirs to resume later; one made up for this viewer is removed.
        self.keep_group = keep_group or group is not None
        self.nodes: dict[str, Node] = {}
        self._grouped: set[str] = set()  # nodes whose stream has our group (since the last connect)
        self._last_mono = 0.0
        self._decoder = msgspec.msgpack.Decoder(list[ev.AnyEvent])
        self.reading = asyncio.Event()  # set while connected and reading (tests wait for it)

    async def check(self) -> CheckResult:
        return await RedisSource(self.url).check()

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(
            ev.TargetAdded(
                wall=wall, mono=mono, target=self.target, kind="fleet", address=redact_url(self.url)
            )
        )
        backoff = Backoff(0.5, 5.0)
        try:
            while True:
                try:
                    await self._read(emit, backoff)
                except (rex.RedisError, OSError) as error:
                    raise_if_cancelled()
                    self.reading.clear()
                    kind, text = classify_redis_error(error)
                    self.status.mark_down(emit, scrub(text, self.url), kind)
                await asyncio.sleep(backoff.next())
        finally:
            if not self.keep_group:
                await self._remove_group()

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S + BLOCK_MS / 1000,
            retry=Retry(NoBackoff(), 0),
            client_name="wsmon-fleet",
            protocol=2,
        )

    async def _read(self, emit: Emit, backoff: Backoff) -> None:
        client = self._client()
        try:
            await client.ping()
            self._grouped.clear()  # a restarted Redis may have lost our groups
            self.status.mark_up(emit, f"group {self.group}")
            backoff.reset()
            _, mono = now()
            for node in self.nodes.values():
                node.seen_mono = mono  # our own outage is not the nodes': judge them from now
            discovered = -DISCOVER_S
            while True:
                _, mono = now()
                if mono - discovered >= DISCOVER_S:
                    await self._discover(client, emit)
                    discovered = mono
                    self.reading.set()
                streams: dict[KeyT, StreamIdT] = {stream_key(name): ">" for name in self.nodes}
                if not streams:
                    await asyncio.sleep(BLOCK_MS / 1000)
                    continue
                try:
                    reply = await client.xreadgroup(
                        self.group, CONSUMER, streams, count=READ_COUNT, block=BLOCK_MS, noack=True
                    )
                except rex.ResponseError as error:
                    if "NOGROUP" not in str(error):
                        raise
                    # A stream (or Redis) was recreated under us: its entries are all new to this viewer.
                    self._grouped.clear()
                    await self._discover(client, emit)
                    continue
                raise_if_cancelled()
                for key, entries in cast("_ReadReply", reply or []):
                    node = self.nodes[key.decode().removeprefix(stream_key(""))]
                    for _entry_id, fields in entries:
                        self._entry(node, fields, emit)
                self._judge(emit)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _discover(self, client: aioredis.Redis, emit: Emit) -> None:
        members = cast("set[bytes]", await client.smembers(REGISTRY))
        for raw in sorted(members):
            name = raw.decode("utf-8", "replace")
            if name not in self.nodes:
                try:
                    check_node_name(name)
                except ValueError as error:
                    self._warn_once(emit, name, f"fleet: skipped a node: {error}")
                    continue
                wall, mono = now()
                emit(
                    ev.TargetAdded(
                        wall=wall, mono=mono, target=name, kind=NODE_KIND, address=stream_key(name)
                    )
                )
                self.nodes[name] = Node(name, TargetStatus(name, Retell.ERROR), seen_mono=mono)
            if name in self.nodes and name not in self._grouped:
                with contextlib.suppress(rex.ResponseError):  # BUSYGROUP: it is there already
                    await client.xgroup_create(stream_key(name), self.group, id="0", mkstream=True)
                self._grouped.add(name)

    def _entry(self, node: Node, fields: dict[bytes, bytes], emit: Emit) -> None:
        _, mono = now()
        try:
            if fields.get(b"v") != FORMAT:
                raise ValueError(f"entry format {fields.get(b'v')!r}, this wsmon reads {FORMAT!r}")
            node.heartbeat_s = float(fields[b"hb"])
            sent_mono = float(fields[b"mono"])
            run, seq = fields[b"run"], int(fields[b"seq"])
            gap = int(fields.get(b"gap", b"0"))
            events = self._decoder.decode(fields[b"ev"]) if b"ev" in fields else []
        except (KeyError, ValueError, msgspec.DecodeError) as error:
            self._warn_once(emit, node.name, f"fleet: unreadable entry from node {node.name}: {error}")
            return
        node.seen_mono = mono
        node.status.mark_up(emit, "heartbeat")
        if run == node.run and seq <= node.seq:
            return  # read before: a Redis restored from disk can deliver its last entries again
        if run == node.run and seq > node.seq + 1:
            missed = seq - node.seq - 1
            node.lost_entries += missed
            text = f"node {node.name} lost {missed} entries: trimmed from its stream before they were read"
            self._lost(emit, node, text, {LOST_ENTRIES: str(missed)})
        node.run, node.seq = run, seq
        if gap:
            node.lost_events += gap
            text = f"node {node.name} lost {gap} events: its buffer was full while Redis was unreachable"
            self._lost(emit, node, text, {LOST_EVENTS: str(gap)})
        if node.offset is None or sent_mono < node.sent_mono or mono - sent_mono < node.offset:
            node.offset = mono - sent_mono  # the quickest delivery seen; a node's clock that restarted, anew
        node.sent_mono = sent_mono
        for event in events:
            at = min(event.mono + node.offset, mono)
            at = self._last_mono = max(at, self._last_mono)
            emit(to_fleet(event, node.name, at))
        if b"end" in fields:
            node.status.mark_down(emit, "the agent stopped", ENDED)

    def _judge(self, emit: Emit) -> None:
        """A node is DOWN once MISSED_HEARTBEATS of its heartbeats have not come."""
        _, mono = now()
        for node in self.nodes.values():
            silent = mono - node.seen_mono
            if node.status.up and silent > MISSED_HEARTBEATS * node.heartbeat_s:
                node.status.mark_down(emit, f"no heartbeat for {silent:.1f} s", "heartbeat")

    def _lost(self, emit: Emit, node: Node, text: str, fields: dict[str, str]) -> None:
        """Said in the log (and counted by the report from ``fields``): a loss is never silent."""
        wall, mono = now()
        at = max(mono, self._last_mono)
        emit(ev.LogLine(wall=wall, mono=at, level="error", text=text, source=node.name, fields=fields))

    def _warn_once(self, emit: Emit, name: str, text: str) -> None:
        node = self.nodes.get(name)
        if node is not None:
            if text in node.warned:
                return
            node.warned.add(text)
        wall, mono = now()
        emit(ev.LogLine(wall=wall, mono=mono, level="warn", text=text, source="wsmon"))

    async def _remove_group(self) -> None:
        """This viewer's group goes with it, so viewers that come and go leave nothing in Redis."""
        client = self._client()
        try:
            for name in self.nodes:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.xgroup_destroy(stream_key(name), self.group), 2.0)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()


__all__ = ["FleetSource", "default_group"]
