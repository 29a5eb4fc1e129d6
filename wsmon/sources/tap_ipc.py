"""What a tap worker and its TapSource say to each other: the worker's settings, and batches of items.

The worker (``tap_worker.py``) sends length-prefixed msgpack batches over a Unix socket: the events it
made (``core.events``, encoded as recordings encode them), notes about the upstream for the session's
one health watcher, and — when connections are spread over several workers, so an ack may arrive in
another worker than its message — the text messages the session's delivery matcher pairs. The session
sends nothing back: closing its end asks the worker to stop (and a worker whose session is gone stops).
"""

from __future__ import annotations

import struct
from typing import Literal

import msgspec

from wsmon.core.events import AnyEvent, Event
from wsmon.sources.delivery import DeliveryRules

_LENGTH = struct.Struct("!I")
LISTEN_BACKLOG = 1024  # connections wait here while a worker is busy, or restarting
MAX_BATCH_BYTES = 64 * 1024 * 1024  # a corrupt length is an error, not a 4 GiB allocation


class WorkerConfig(msgspec.Struct, frozen=True):
    """One worker's settings: handed over on its command line as JSON."""

    worker: int  # its number: connection ids are "TARGET:wN.M", unique across workers and restarts
    generation: int  # how many times this worker number was started before: part of the ids too
    listen_fds: list[int]  # the session's listening sockets, inherited: every worker accepts on them
    ipc_fd: int
    target: str
    upstream_url: str
    rules: DeliveryRules
    delivery_timeout_s: float
    interval: float
    pair_here: bool  # one worker sees every connection: it pairs acks itself and sends only results
    uvloop: bool
    ca_file: str = ""  # a wss:// upstream's CA bundle; the system's when empty
    batch_s: float = 0.05  # the longest an event waits in the worker before it is sent


Note = Literal["ready", "reached", "unreachable", "reset", "dropped"]


class UpstreamNote(msgspec.Struct, tag="tap.upstream", tag_field="type", array_like=True, frozen=True):
    """What a connection learned about the upstream: the session's watcher decides up and down."""

    what: Note
    kind: str = ""
    error: str = ""


class SeenMessage(msgspec.Struct, tag="tap.message", tag_field="type", array_like=True, frozen=True):
    """A text message for the session's delivery matcher (several workers: pairing crosses them)."""

    direction: str
    conn: str
    payload: bytes
    mono: float


Item = AnyEvent | UpstreamNote | SeenMessage  # what a batch decodes to
Sent = Event | UpstreamNote | SeenMessage  # what a worker puts in one

_encode = msgspec.msgpack.Encoder().encode


def frame(items: list[Sent]) -> bytes:
    """One batch, length first."""
    body = _encode(items)
    return _LENGTH.pack(len(body)) + body


class BatchReader:
    """Decodes the batches out of the bytes read from a worker, however they were split."""

    def __init__(self) -> None:
        self._decode = msgspec.msgpack.Decoder(list[Item]).decode
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[Item]]:
        """The batches ``data`` completes; raises ``ValueError`` on a stream that is not batches."""
        buffer = self._buffer
        buffer += data
        batches: list[list[Item]] = []
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            if size > MAX_BATCH_BYTES:
                raise ValueError(f"tap worker sent a batch of {size} bytes")
            end = _LENGTH.size + size
            if len(buffer) < end:
                break
            try:
                batches.append(self._decode(buffer[_LENGTH.size : end]))
            except msgspec.DecodeError as error:
                raise ValueError(f"tap worker sent an unreadable batch: {error}") from None
            del buffer[:end]
        return batches
