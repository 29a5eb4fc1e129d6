"""`wsmon attach --publish redis://…`: the session's events, appended to this node's Redis Stream for
`wsmon fleet` (docs/design.md, "The node dimension"; docs/scale.md for what it costs).

Every event is msgpack-encoded as it is emitted (the recording's event encoding: arrays, tag first)
and kept in a bounded buffer; a task sends the buffer in batches — every ``BATCH_S`` or
``BATCH_EVENTS`` events — with XADD MAXLEN ~ to the stream ``wsmon:fleet:NODE``, and adds NODE to the
registry set ``wsmon:fleet:nodes``. Each entry is a heartbeat (its ``hb`` field is the interval); when no
batch went out for a heartbeat interval an entry without events is sent, so a silent node is told from a
dead one. While Redis is unreachable the buffer holds up to ``MAX_BUFFERED_EVENTS`` events or
``MAX_BUFFERED_BYTES`` bytes; beyond that new events are dropped and counted, and the next entry carries
the count (``gap``) so the fleet says how many were lost: never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT, FieldT

from wsmon.core.events import Event
from wsmon.core.fleet import FORMAT, REGISTRY, check_node_name, stream_key
from wsmon.core.redact import MASK, redact_url
from wsmon.core.sink import Sink

BATCH_S = 0.1
BATCH_EVENTS = 500
HEARTBEAT_S = 1.0
MAX_BUFFERED_EVENTS = 200_000
MAX_BUFFERED_BYTES = 64 << 20
# Entries (batches) a node's stream keeps, trimmed approximately: ~9 min at the demo's rate (~3.5 MiB),
# ~20 s at 50,000 events/s (full 500-event batches, ~100 MB). The fleet reads as entries arrive; the
# cap bounds Redis when no one reads, and a viewer that falls behind it is told what it lost.
STREAM_MAXLEN = 2_000
MAX_ENTRIES_PER_ROUND = 50  # batches sent in one pipeline when a backlog drains
CONNECT_TIMEOUT_S = 5.0
RETRY_S = 0.5


def _array_header(count: int) -> bytes:
    """The msgpack array header for ``count`` items, so encoded events join into one list."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


class Publisher(Sink):
    """Sends every event of the session to the node's stream; buffers through a Redis outage."""

    def __init__(
        self,
        url: str,
        node: str,
        *,
        on_error: Callable[[str], None] = lambda _text: None,
        batch_s: float = BATCH_S,
        batch_events: int = BATCH_EVENTS,
        heartbeat_s: float = HEARTBEAT_S,
        max_events: int = MAX_BUFFERED_EVENTS,
        max_bytes: int = MAX_BUFFERED_BYTES,
        maxlen: int = STREAM_MAXLEN,
    ) -> None:
        self.url = url
        self.node = check_node_name(node)
        self.key = stream_key(node)
        self.on_error = on_error
        self.batch_s = batch_s
        self.batch_events = batch_events
        self.heartbeat_s = heartbeat_s
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.maxlen = maxlen
        self._encode = msgspec.msgpack.Encoder().encode
        self._buffer: deque[bytes] = deque()
        self.buffered_bytes = 0
        self.dropped = 0  # events lost to a full buffer, not yet reported in an entry
        self.dropped_total = 0
        self.published = 0  # events acknowledged by Redis
        self._seq = 0  # the entry's number in this agent's run: the fleet sees trimmed entries as a gap
        self._run = os.urandom(4).hex()  # an agent restart starts its numbering again
        self._full = asyncio.Event()
        self._stopping = False
        # One round at a time: stop()'s final rounds must not send (and then drop) what run()'s is sending.
        self._sending = asyncio.Lock()
        self.connected = asyncio.Event()  # set while Redis takes our entries (tests wait for it)

    # --- the Sink ---------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if len(self._buffer) >= self.max_events or self.buffered_bytes >= self.max_bytes:
            self.dropped += 1
            self.dropped_total += 1
            return
        data = self._encode(event)
        self._buffer.append(data)
        self.buffered_bytes += len(data)
        if len(self._buffer) == self.batch_events:
            self._full.set()

    async def run(self) -> None:
        client = self._client()
        was_down = False
        last_sent = 0.0
        try:
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.batch_s)
                self._full.clear()
                # A batch early rather than late: the fleet calls a node down after two intervals'
                # silence, and a heartbeat sent a little late under load must not come near that.
                heartbeat_due = time.monotonic() - last_sent >= self.heartbeat_s - self.batch_s
                if not self._buffer and not self.dropped and not heartbeat_due:
                    continue
                try:
                    async with self._sending:
                        await self._send(client, registered=not was_down and self.connected.is_set())
                except (aioredis.RedisError, OSError) as error:
                    self.connected.clear()
                    if not was_down:
                        self.on_error(
                            f"publish to {redact_url(self.url)}: {self._masked(error)}; buffering events"
                        )
                    was_down = True
                    await asyncio.sleep(RETRY_S)
                    continue
                last_sent = time.monotonic()
                if was_down:
                    self.on_error(f"publish to {redact_url(self.url)}: reconnected, buffer sent")
                    was_down = False
                self.connected.set()
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def stop(self) -> None:
        """Send what is buffered (bounded by the session's stop timeout), then end ``run``."""
        client = self._client()
        try:
            async with self._sending:
                while self._buffer or self.dropped:
                    await self._send(client, registered=False)
                # The goodbye: the fleet shows the node down at once, as stopped rather than silent.
                goodbye = {**self._entry(self._seq + 1, [], 0), "end": b"1"}
                await client.xadd(self.key, goodbye, maxlen=self.maxlen)
                self._seq += 1
        except (aioredis.RedisError, OSError) as error:
            unsent = len(self._buffer)
            self.on_error(f"publish to {redact_url(self.url)}: {unsent} events unsent: {self._masked(error)}")
        finally:
            self._stopping = True
            with contextlib.suppress(Exception):
                await client.aclose()

    def _masked(self, error: BaseException) -> str:
        """The error's text without the URL's password, should the client library echo it."""
        text = str(error) or type(error).__name__
        password = urlsplit(self.url).password
        return text.replace(password, MASK) if password else text

    # --- sending ----------------------------------------------------------------------------------

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # the buffer is the retry: a failed round is sent again whole
            protocol=2,
        )

    async def _send(self, client: aioredis.Redis, *, registered: bool) -> None:
        """One round: the buffered events in batches (or one heartbeat), in one pipeline. Events leave
        the buffer only once Redis has taken them, so an outage mid-round loses nothing."""
        total = min(len(self._buffer), self.batch_events * MAX_ENTRIES_PER_ROUND)
        taken = list(itertools.islice(self._buffer, total))
        batches = [taken[i : i + self.batch_events] for i in range(0, total, self.batch_events)] or [[]]
        gap = self.dropped
        pipe = client.pipeline(transaction=False)
        if not registered:
            pipe.sadd(REGISTRY, self.node)
        for number, batch in enumerate(batches, 1):
            fields = self._entry(self._seq + number, batch, gap if number == 1 else 0)
            pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        await pipe.execute()
        # Numbered, counted and removed only now: a round Redis refused is sent again whole.
        self._seq += len(batches)
        for _ in range(total):
            self.buffered_bytes -= len(self._buffer.popleft())
        self.published += total
        self.dropped -= gap

    def _entry(self, seq: int, events: list[bytes], gap: int) -> dict[FieldT, EncodableT]:
        fields: dict[FieldT, EncodableT] = {
            "v": FORMAT,
            "run": self._run.encode(),
            "seq": b"%d" % seq,
            "hb": repr(self.heartbeat_s).encode(),
            "wall": repr(time.time()).encode(),
            "mono": repr(time.monotonic()).encode(),
        }
        if events:
            fields["n"] = b"%d" % len(events)
            fields["ev"] = _array_header(len(events)) + b"".join(events)
        if gap:
            fields["gap"] = b"%d" % gap
        return fields
