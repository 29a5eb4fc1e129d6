"""What a recording file is: its version constants, its header, and the batch and keyframe codecs.

A recording is an SQLite database (WAL mode). Events are stored in batches: one zstd frame holding
the msgpack list of the batch's events, exactly as ``wsmon.core.events`` encodes them (arrays, tag
first). Keyframes hold the encoded State (from format 2 with its latency windows packed apart:
wsmon/store/keyframe.py); to keep them small, most are compressed against the previous keyframe (its
raw bytes are the zstd dictionary), because consecutive States share most of their bytes.
docs/recording-format.md is the reference for all of this.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import msgspec
import zstandard

import wsmon
from wsmon.core.events import SCHEMA_VERSION, AnyEvent, Event
from wsmon.core.limits import DEFAULT_LIMITS, Limit

# 2: keyframes hold their latency windows packed (wsmon/store/keyframe.py); 1 is still read.
FORMAT_VERSION = 2
OLDEST_FORMAT_VERSION = 1
SUFFIX = ".wsmon"
# The meta key a writer's close() adds (its value: the wall time, as text): the recording is complete.
CLOSED_KEY = "closed_wall"
# SQLite's application_id (bytes 68-71 of the file): tells a wsmon recording from any other database.
APPLICATION_ID = 0x77736D6E  # "wsmn"
ZSTD_LEVEL = 3  # measured: levels 1-3 cost the same size here; 6+ halves the speed for 5 % less
# zstd's window must span the dictionary (the previous keyframe) plus the new keyframe.
_KEYFRAME_WINDOW_LOG = 25
# The match finder's table for a keyframe against the previous one: level 3's own (2**17 entries) is
# sized for inputs of a few hundred KiB, and a State of 1,000 connections is ~2 MiB, its dictionary as
# much again: matches into the dictionary were lost. 2**18 made delta keyframes 17 % smaller at the
# same speed (1,000 connections; 2**19 and more gained nothing but time).
_KEYFRAME_HASH_LOG = 18
# Ceilings on what one blob may expand to, so that a damaged or crafted file cannot make a reader
# allocate gigabytes: a few hundred bytes of zstd can claim (and hold) hundreds of megabytes. The
# writer splits a batch that would exceed its ceiling; a State is a few MiB even at 5,000 connections.
MAX_BATCH_BYTES = 64 << 20
MAX_KEYFRAME_BYTES = 256 << 20


class RecordingError(Exception):
    """A recording that cannot be written or read; ``str()`` is one line naming the file and the fault."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RecordingWriteError(RecordingError):
    """The recording cannot be written (disk full, read-only, no permission); ``reason`` is the cause."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.reason = reason
        super().__init__(path, f"cannot write ({reason})")


class RecordedTarget(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    address: str = ""  # redacted by the caller: never a password or a token


class RecordingHeader(msgspec.Struct, kw_only=True):
    wsmon_version: str
    format_version: int
    schema_version: int
    created_wall: float
    command: str = ""
    targets: list[RecordedTarget] = []
    limits: list[Limit] = []
    extra: dict[str, Any] = {}


def new_header(
    command: str = "",
    targets: Iterable[RecordedTarget] = (),
    limits: Iterable[Limit] = DEFAULT_LIMITS,
    extra: dict[str, Any] | None = None,
) -> RecordingHeader:
    """A header for a recording made now by this wsmon."""
    return RecordingHeader(
        wsmon_version=wsmon.__version__,
        format_version=FORMAT_VERSION,
        schema_version=SCHEMA_VERSION,
        created_wall=time.time(),
        command=command,
        targets=list(targets),
        limits=list(limits),
        extra=dict(extra or {}),
    )


def encode_header(header: RecordingHeader) -> str:
    # JSON rather than msgpack so that `sqlite3 FILE "select value from meta"` is readable.
    return msgspec.json.encode(header).decode()


def decode_header(text: str | bytes) -> RecordingHeader:
    return msgspec.json.decode(text, type=RecordingHeader)


class BatchEncoder:
    """Events to a batch blob. One instance per writer: the encoder and compressor are reused."""

    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        self._msgpack = msgspec.msgpack.Encoder()
        # The checksum (4 bytes a batch) makes a flipped bit an unreadable batch, not a changed event.
        self._zstd = zstandard.ZstdCompressor(level=level, write_checksum=True)

    def encode(self, events: Sequence[Event]) -> bytes:
        return self._zstd.compress(self._msgpack.encode(events))

    def encode_within_limit(self, events: list[Event]) -> list[tuple[list[Event], bytes]]:
        """``events`` as one or more (events, blob) batches, each expanding to at most MAX_BATCH_BYTES."""
        raw = self._msgpack.encode(events)
        if len(raw) <= MAX_BATCH_BYTES or len(events) == 1:
            return [(events, self._zstd.compress(raw))]
        half = len(events) // 2
        return self.encode_within_limit(events[:half]) + self.encode_within_limit(events[half:])


class BatchDecoder:
    """Batch blobs back to events; raises ``ValueError`` (or a zstd/msgspec error) on a damaged blob."""

    def __init__(self) -> None:
        self._msgpack = msgspec.msgpack.Decoder(list[AnyEvent])
        self._zstd = zstandard.ZstdDecompressor()

    def decode(self, blob: bytes, expected_count: int | None = None) -> list[Event]:
        raw = _decompress_capped(self._zstd, blob, MAX_BATCH_BYTES)
        if expected_count is not None:
            count = _msgpack_array_length(raw)
            if count is None:
                raise ValueError("is not a list of events")
            if count != expected_count:
                # Checked before decoding: a crafted blob must not build millions of objects first.
                raise ValueError(f"holds {count} events, the index says {expected_count}")
        # Every member of AnyEvent is an Event; only list's invariance keeps list[AnyEvent] from being
        # the list[Event] the reader holds, so this cast claims nothing the decoder does not check.
        return cast("list[Event]", self._msgpack.decode(raw))


def _decompress_capped(decompressor: zstandard.ZstdDecompressor, blob: bytes, limit: int) -> bytes:
    """Decompress one zstd frame, refusing to expand past ``limit`` bytes.

    ``max_output_size`` only applies to frames that do not state their size; a frame that does is
    trusted by zstd, so its stated size is checked here first.
    """
    size = zstandard.frame_content_size(blob)
    if size > limit:
        raise ValueError(f"claims to expand to {size:,} bytes, more than the {limit:,} allowed")
    return decompressor.decompress(blob, max_output_size=limit)


def _msgpack_array_length(raw: bytes) -> int | None:
    """The length of the msgpack array ``raw`` starts with; None if it does not start with one."""
    if not raw:
        return None
    tag = raw[0]
    if 0x90 <= tag <= 0x9F:
        return tag & 0x0F
    if tag == 0xDC and len(raw) >= 3:
        return int.from_bytes(raw[1:3], "big")
    if tag == 0xDD and len(raw) >= 5:
        return int.from_bytes(raw[1:5], "big")
    return None


def compress_keyframe(raw: bytes, base_raw: bytes | None, level: int = ZSTD_LEVEL) -> bytes:
    """Compress an encoded State; with ``base_raw`` (the previous keyframe's bytes) as the dictionary."""
    if base_raw is None:
        return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(raw)
    params = zstandard.ZstdCompressionParameters.from_level(
        level, window_log=_KEYFRAME_WINDOW_LOG, hash_log=_KEYFRAME_HASH_LOG, write_checksum=True
    )
    dictionary = zstandard.ZstdCompressionDict(base_raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(raw)


def decompress_keyframe(blob: bytes, base_raw: bytes | None) -> bytes:
    if base_raw is None:
        return _decompress_capped(zstandard.ZstdDecompressor(), blob, MAX_KEYFRAME_BYTES)
    dictionary = zstandard.ZstdCompressionDict(base_raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return _decompress_capped(zstandard.ZstdDecompressor(dict_data=dictionary), blob, MAX_KEYFRAME_BYTES)


SCHEMA_SQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min_mono REAL NOT NULL,
    max_mono REAL NOT NULL,
    first_wall REAL NOT NULL,
    last_wall REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX batches_by_seq ON batches (first_seq, count, min_mono, max_mono, first_wall, last_wall);
CREATE TABLE keyframes (
    seq INTEGER PRIMARY KEY,
    mono REAL NOT NULL,
    wall REAL NOT NULL,
    base_seq INTEGER,
    data BLOB NOT NULL
);
"""
