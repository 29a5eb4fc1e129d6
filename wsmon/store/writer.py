"""Writes a session's events to a recording, crash-safely and cheaply enough for every event.

``append`` only buffers; ``flush`` writes the buffer as batches (and maybe a keyframe) in one
transaction. WAL mode with synchronous=NORMAL makes a committed transaction survive a kill -9 of
wsmon (only a power loss can take the last ones), so a crash loses only what was not flushed yet:
the session flushes every half second.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from types import TracebackType

from wsmon.core.events import Event
from wsmon.core.state import State
from wsmon.store.format import (
    APPLICATION_ID,
    CLOSED_KEY,
    FORMAT_VERSION,
    SCHEMA_SQL,
    ZSTD_LEVEL,
    BatchEncoder,
    RecordingError,
    RecordingHeader,
    RecordingWriteError,
    compress_keyframe,
    encode_header,
)
from wsmon.store.keyframe import encode_keyframe

MAX_BATCH_EVENTS = 16_384  # bigger batches compress no better and make a seek decode more
# Keyframes in a chain of deltas: a seek decompresses at most this many. A delta of a 1,000-connection
# State (~2 MiB) decompresses in 0.8 ms, so 16 cost a seek ~13 ms more than 8 did, and a full keyframe
# (~700 KB against a delta's ~290 KB) half as often is 0.25 B/event less (bench/bench_pipeline.py).
FULL_KEYFRAME_EVERY = 16
# Measured (bench/bench_seek.py, 10 M events in an hour): 50,000 gives 16.5 B/event and 77 ms worst
# seek, 80,000 gives 14.9 B/event and 119-210 ms (the machine busy), 100,000 gives 14.3 B/event and
# 146 ms. A seek folds up to this many events at about a million a second: 64,000 keeps a margin.
KEYFRAME_EVERY = 64_000


class RecordingWriter:
    """Appends events to a new recording at ``path`` (mode 0600). Not for concurrent use by threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: RecordingHeader,
        *,
        flush_interval_s: float = 0.5,
        keyframe_every: int = KEYFRAME_EVERY,
        overwrite: bool = False,
        level: int = ZSTD_LEVEL,
    ) -> None:
        self.path = os.fspath(path)
        self.header = header
        self.flush_interval_s = flush_interval_s
        self.keyframe_every = keyframe_every
        self._buffer: list[Event] = []
        self._count = 0
        self._encoder = BatchEncoder(level)
        self._level = level
        self._last_flush_mono = time.monotonic()
        self._last_keyframe_seq = 0
        self._previous_keyframe: tuple[int, bytes] | None = None
        self._chain_length = 0
        self._create_file(overwrite)
        self._db: sqlite3.Connection | None = None
        try:
            self._db = db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Small pages: a half-second batch is a few KiB, and its last overflow page is on average half
            # empty; at 4 KiB pages that slack alone was 2 B/event, at 1 KiB 0.3 B/event. 512 is SQLite's
            # smallest: 0.1 B/event less again (1,000 connections), at no measurable cost.
            db.execute("PRAGMA page_size=512")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            db.execute("BEGIN")
            self._create_schema(db)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('format_version', ?), ('header', ?)",
                (str(FORMAT_VERSION), encode_header(header)),
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            # Nothing was recorded: leave no empty file behind to make the next try say "already exists".
            self._remove_files()
            raise RecordingWriteError(self.path, _reason(exc)) from exc

    def _remove_files(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(self.path + suffix)

    def _create_file(self, overwrite: bool) -> None:
        if overwrite:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
        # Created here, not by SQLite, so that it is 0600 from its first byte; SQLite gives the -wal
        # and -shm files the database file's mode.
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise RecordingError(self.path, "already exists (choose another name or overwrite it)") from None
        except OSError as exc:
            raise RecordingWriteError(self.path, _reason(exc)) from exc
        try:
            os.fchmod(fd, 0o600)  # os.open's mode is masked by the umask; never widened, but be exact
        finally:
            os.close(fd)

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        for statement in SCHEMA_SQL.split(";"):
            if statement.strip():
                db.execute(statement)

    @property
    def events_written(self) -> int:
        """Events committed to the file so far (not counting the buffer)."""
        return self._count

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def append(self, event: Event) -> None:
        self._buffer.append(event)

    def extend(self, events: list[Event]) -> None:
        self._buffer.extend(events)

    def due(self, now_mono: float) -> bool:
        """Whether the session should flush now: the buffer is old enough or large."""
        if not self._buffer:
            return False
        old_enough = now_mono - self._last_flush_mono >= self.flush_interval_s
        return old_enough or len(self._buffer) >= MAX_BATCH_EVENTS

    def flush(self, state: State | None = None, *, force_keyframe: bool = False) -> None:
        """Commit the buffer as batches, and a keyframe of ``state`` when one is due, in one transaction.

        ``state`` must be the State of exactly the events written so far (``state.seq`` equal to the
        event count); any other State is not used for a keyframe.
        """
        self._last_flush_mono = time.monotonic()
        buffer = self._buffer
        rows = []
        first_seq = self._count
        for start in range(0, len(buffer), MAX_BATCH_EVENTS):
            for chunk, blob in self._encoder.encode_within_limit(buffer[start : start + MAX_BATCH_EVENTS]):
                monos = [event.mono for event in chunk]
                rows.append(
                    (first_seq, len(chunk), min(monos), max(monos), chunk[0].wall, chunk[-1].wall, blob)
                )
                first_seq += len(chunk)
        keyframe = self._keyframe_row(state, first_seq, force_keyframe)
        if not rows and keyframe is None:
            return
        db = self._db
        assert db is not None, "flush after close"
        try:
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO batches (first_seq, count, min_mono, max_mono, first_wall, last_wall, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if keyframe is not None:
                db.execute(
                    "INSERT INTO keyframes (seq, mono, wall, base_seq, data) VALUES (?, ?, ?, ?, ?)",
                    keyframe[0],
                )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            # A full disk fails the transaction as a whole: what was committed before stays readable.
            with contextlib.suppress(sqlite3.Error):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            raise RecordingWriteError(self.path, _reason(exc)) from exc
        self._count = first_seq
        buffer.clear()
        if keyframe is not None:
            self._last_keyframe_seq = first_seq
            self._previous_keyframe = (first_seq, keyframe[1])

    def _keyframe_row(
        self, state: State | None, seq: int, force: bool
    ) -> tuple[tuple[int, float, float, int | None, bytes], bytes] | None:
        if state is None or state.seq != seq or seq == self._last_keyframe_seq:
            return None
        if not force and seq - self._last_keyframe_seq < self.keyframe_every:
            return None
        raw = encode_keyframe(state)
        base = self._previous_keyframe
        if base is None or self._chain_length >= FULL_KEYFRAME_EVERY - 1:
            base = None
            self._chain_length = 0
        else:
            self._chain_length += 1
        blob = compress_keyframe(raw, base[1] if base else None, self._level)
        row = (seq, state.last_mono, state.last_wall, base[0] if base else None, blob)
        return row, raw

    def close(self, state: State | None = None) -> None:
        """Flush, keep a final keyframe of ``state``, mark the recording closed, and fold the WAL back
        into the file."""
        if getattr(self, "_db", None) is None:
            return
        try:
            self.flush(state, force_keyframe=True)
            assert self._db is not None
            try:
                # What tells a follower (`wsmon replay --follow`) that no more events will come.
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (CLOSED_KEY, repr(time.time()))
                )
            except sqlite3.Error as exc:
                raise RecordingWriteError(self.path, _reason(exc)) from exc
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Stop writing, dropping the buffer: after a write failed, keep what was committed as it is.

        The -wal file stays beside the recording when it could not be folded back; readers use it.
        """
        db, self._db = getattr(self, "_db", None), None
        self._buffer.clear()
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_SQLITE_REASONS = {
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_PERM: "permission denied",
    sqlite3.SQLITE_CANTOPEN: "cannot open the file",
    sqlite3.SQLITE_IOERR: "I/O error",
}
_OS_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def _reason(exc: BaseException) -> str:
    """Why a write failed, in a few words: 'disk full' rather than SQLite's or the OS's wording."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE_REASONS:
            return _SQLITE_REASONS[code & 0xFF]
        return str(exc)
    if isinstance(exc, OSError):
        return _OS_REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return str(exc)
