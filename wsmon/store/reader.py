"""Reads a recording: while it is still being written, after a crash, and around damage.

The batch index (a few numbers per batch, from a covering index) is held in memory, so finding the
batch of a sequence number or a time is a bisect; only the batches actually needed are read and
decompressed. A batch or keyframe that cannot be decoded is skipped with a line in ``warnings``:
one damaged batch must not cost the rest of the recording.
"""

from __future__ import annotations

import bisect
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from wsmon.core.events import SCHEMA_VERSION, Event
from wsmon.core.reducer import Reducer
from wsmon.core.state import State
from wsmon.store.format import (
    APPLICATION_ID,
    CLOSED_KEY,
    FORMAT_VERSION,
    OLDEST_FORMAT_VERSION,
    SCHEMA_SQL,
    BatchDecoder,
    RecordingError,
    RecordingHeader,
    decode_header,
    decompress_keyframe,
)
from wsmon.store.keyframe import decode_keyframe
from wsmon.store.writer import MAX_BATCH_EVENTS

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MAX_KEYFRAME_CHAIN = 64  # a writer makes chains of 16 (8 before); anything longer is a damaged file
IndexRow = tuple[int, int, int, float, float, float, float]


class Keyframe(NamedTuple):
    seq: int
    mono: float
    wall: float
    state: State


class Batch(NamedTuple):
    first_seq: int
    events: list[Event]


class RecordingReader:
    """A recording opened for reading. Call ``refresh()`` to see batches a live writer added since."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.warnings: list[str] = []
        self._decoder = BatchDecoder()
        self._ids: list[int] = []
        self._first_seqs: list[int] = []
        self._counts: list[int] = []
        self._min_monos: list[float] = []
        self._max_so_far: list[float] = []  # running max of max_mono: nondecreasing, so bisectable
        self._first_walls: list[float] = []
        self._last_walls: list[float] = []
        self._cached: tuple[int, list[Event]] | None = None
        self._application_id = 0
        self.format_version = FORMAT_VERSION  # the file's, once its header is read: how keyframes decode
        # Whether a writer had it open (a -wal beside it) when it was opened: one that nothing was
        # writing then never grows (``refresh`` finds nothing new).
        self.opened_while_written = False
        self._check_file()
        self._db = self._connect()
        try:
            self.header = self._read_header()
            self._check_schema()
            self.refresh()
        except BaseException:
            self._db.close()
            raise

    # --- opening ---------------------------------------------------------------------------------

    def _check_file(self) -> None:
        try:
            mode = os.stat(self.path).st_mode
            if stat.S_ISDIR(mode):
                raise RecordingError(self.path, "is a directory, not a recording")
            if not stat.S_ISREG(mode):
                # Opening a FIFO waits for a writer for ever; a device never ends.
                raise RecordingError(
                    self.path, "not a regular file (a pipe, device or socket), not a recording"
                )
            with open(self.path, "rb") as file:
                magic = file.read(100)
        except FileNotFoundError:
            raise RecordingError(self.path, "no such file") from None
        except OSError as exc:
            raise RecordingError(self.path, f"cannot open ({exc.strerror})") from exc
        if not magic:
            raise RecordingError(self.path, "not a wsmon recording (empty file)")
        if len(magic) < 100 and _SQLITE_MAGIC.startswith(magic[:16]):
            raise RecordingError(self.path, f"damaged or truncated recording (only {len(magic)} bytes)")
        if not magic.startswith(_SQLITE_MAGIC):
            raise RecordingError(self.path, "not a wsmon recording (not an SQLite database)")
        self._application_id = int.from_bytes(magic[68:72], "big") if len(magic) == 100 else 0
        if self._application_id not in (APPLICATION_ID, 0):
            # 0: the header page of a recording whose first commit is still only in the -wal file.
            raise RecordingError(self.path, "not a wsmon recording (an SQLite database of another program)")

    def _connect(self) -> sqlite3.Connection:
        # Reading never changes a recording. While a writer has it open (or was killed) there is a
        # -wal file: open read-only, which still needs the -shm file writable (it is, for the same
        # user). Without one the recording is finished and immutable: no locks, no -wal/-shm left
        # beside it, and it can be read from a read-only directory.
        live = os.path.exists(self.path + "-wal")
        self.opened_while_written = live
        uri = Path(os.path.abspath(self.path)).as_uri() + ("?mode=ro" if live else "?mode=ro&immutable=1")
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA query_only=1")
            # SQLite calls a file shorter than its header says "malformed" before reading anything;
            # with this it reads the pages that are there, which is what a truncated file needs.
            # Harmless on a read-only, query-only connection.
            db.execute("PRAGMA writable_schema=1")
        except sqlite3.Error as exc:
            raise RecordingError(self.path, f"cannot open the recording ({exc})") from exc
        return db

    def _read_header(self) -> RecordingHeader:
        try:
            rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                raise RecordingError(self.path, self._no_tables_problem()) from exc
            raise RecordingError(self.path, _damage("cannot read its header", exc)) from exc
        if "header" not in rows or "format_version" not in rows:
            raise RecordingError(self.path, "not a wsmon recording (no header)")
        try:
            version = int(rows["format_version"])
        except (ValueError, TypeError):
            raise RecordingError(self.path, "damaged header (format version is not a number)") from None
        if version > FORMAT_VERSION:
            raise RecordingError(
                self.path, f"recording format {version} is newer than this wsmon reads ({FORMAT_VERSION})"
            )
        if version < OLDEST_FORMAT_VERSION:
            raise RecordingError(self.path, f"recording format {version} is no longer supported")
        self.format_version = version
        try:
            header = decode_header(rows["header"])
        except Exception as exc:
            raise RecordingError(self.path, f"damaged header ({exc})") from exc
        if header.schema_version > SCHEMA_VERSION:
            raise RecordingError(
                self.path,
                f"event schema {header.schema_version} is newer than this wsmon reads ({SCHEMA_VERSION})",
            )
        return header

    def _check_schema(self) -> None:
        """A flipped bit in a table's definition changes how SQLite reads every row of it (a damaged
        "INTEGER PRIMARY KEY" turns the ids into nulls and the table into nothing), silently."""
        try:
            found = dict(self._db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        except sqlite3.Error as exc:
            raise RecordingError(self.path, _damage("cannot read its table definitions", exc)) from exc
        for name, sql in _EXPECTED_TABLES.items():
            if name == "meta":
                continue  # already read: the header came from it
            if " ".join(str(found.get(name, "")).split()) != sql:
                raise RecordingError(self.path, f"damaged: the definition of its {name} table has changed")

    def _no_tables_problem(self) -> str:
        if self._application_id == 0 and not os.path.exists(self.path + "-wal") and self._has_no_tables():
            # What a recording whose writer never closed it looks like without its -wal: SQLite's
            # header page and nothing else, since every commit is still in the -wal file.
            wal = os.path.basename(self.path) + "-wal"
            return (
                f"{wal} is missing: this recording was not closed and its events are in that file"
                " (copy FILE-wal and FILE-shm along with FILE)"
            )
        return "not a wsmon recording (an SQLite database without wsmon tables)"

    def _has_no_tables(self) -> bool:
        try:
            return self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        except sqlite3.Error:
            return False

    def refresh(self) -> int:
        """Load the index of batches committed since the last look; returns the new event count."""
        after = self._ids[-1] if self._ids else 0
        query = (
            "SELECT id, first_seq, count, min_mono, max_mono, first_wall, last_wall FROM batches"
            " {} WHERE id > ? ORDER BY id"
        )
        try:
            cursor = self._db.execute(query.format("INDEXED BY batches_by_seq"), (after,))
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            # The index is damaged: walk the table itself and keep every row it still yields.
            self._warn(_damage("the batch index is unreadable; reading batches one by one", exc))
            rows = self._rows_one_by_one(after)
        for row in rows:
            self._add_index_row(row)
        return self.event_count

    def closed_wall(self) -> float | None:
        """When its writer closed the recording (the meta row ``close()`` adds), as UTC epoch seconds;
        None while it is being written, and for one whose writer was killed or predates the row."""
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (CLOSED_KEY,)).fetchone()
            return float(row[0]) if row is not None else None
        except (sqlite3.Error, ValueError, TypeError):
            return None

    def _rows_one_by_one(self, after: int) -> list[IndexRow]:
        rows: list[IndexRow] = []
        try:
            # Inside the try: the first row is read by execute() itself, and it can be the damaged one.
            cursor = self._db.execute(
                "SELECT id, first_seq, count, min_mono, max_mono, first_wall, last_wall FROM batches"
                " NOT INDEXED WHERE id > ? ORDER BY id",
                (after,),
            )
            for row in cursor:
                rows.append(row)
        except sqlite3.Error as exc:
            self._warn(_damage(f"batches after the first {len(rows) + len(self._ids)} are lost", exc))
        return rows

    def _add_index_row(self, row: IndexRow) -> None:
        batch_id, first_seq, count, min_mono, max_mono, first_wall, last_wall = row
        if not _index_row_is_sane(row):
            self._warn(f"batch {batch_id}: its index entry is damaged ({count!r} events); skipped")
            return
        if first_seq != self.event_count:
            self._warn(f"batch {batch_id}: starts at event {first_seq}, expected {self.event_count}; skipped")
            return
        self._ids.append(batch_id)
        self._first_seqs.append(first_seq)
        self._counts.append(count)
        self._min_monos.append(min_mono)
        self._max_so_far.append(max(max_mono, self._max_so_far[-1]) if self._max_so_far else max_mono)
        self._first_walls.append(first_wall)
        self._last_walls.append(last_wall)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what is in it ---------------------------------------------------------------------------

    @property
    def event_count(self) -> int:
        return self._first_seqs[-1] + self._counts[-1] if self._first_seqs else 0

    @property
    def batch_count(self) -> int:
        return len(self._ids)

    @property
    def first_mono(self) -> float | None:
        return self._min_monos[0] if self._min_monos else None

    @property
    def last_mono(self) -> float | None:
        return self._max_so_far[-1] if self._max_so_far else None

    @property
    def first_wall(self) -> float | None:
        return self._first_walls[0] if self._first_walls else None

    @property
    def last_wall(self) -> float | None:
        return self._last_walls[-1] if self._last_walls else None

    @property
    def duration_s(self) -> float:
        first, last = self.first_mono, self.last_mono
        return 0.0 if first is None or last is None else last - first

    # --- events ----------------------------------------------------------------------------------

    def batch_index_of(self, seq: int) -> int:
        """The index of the batch holding event ``seq`` (0-based); ``batch_count`` past the end."""
        if seq >= self.event_count:
            return len(self._ids)
        return bisect.bisect_right(self._first_seqs, max(seq, 0)) - 1

    def batch_size(self, index: int) -> int:
        return self._counts[index]

    def read_batch(self, index: int) -> Batch:
        """The events of batch ``index``; an empty list (and a warning) if it cannot be decoded."""
        batch_id = self._ids[index]
        cached = self._cached
        if cached is not None and cached[0] == batch_id:
            return Batch(self._first_seqs[index], cached[1])
        events: list[Event] = []
        try:
            row = self._db.execute("SELECT data FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None or not isinstance(row[0], bytes):
                raise ValueError("its data is missing")
            events = self._decoder.decode(row[0], self._counts[index])  # checks the count too
        except Exception as exc:
            first = self._first_seqs[index]
            self._warn(
                f"events {first}-{first + self._counts[index] - 1} (batch {batch_id}) are unreadable"
                f" and were skipped ({_one_line(exc)})"
            )
            events = []
        self._cached = (batch_id, events)
        return Batch(self._first_seqs[index], events)

    def check_batches(self) -> int:
        """Decode every batch; returns how many are unreadable (each also gets a line in ``warnings``).

        ``wsmon report`` needs this: its State comes from the final keyframe, which alone would never
        notice a damaged batch.
        """
        return sum(1 for index in range(len(self._ids)) if not self.read_batch(index).events)

    def iter_batches(self, start_seq: int = 0) -> Iterator[Batch]:
        """Batches from the one holding ``start_seq``, whole (the first may start before it)."""
        for index in range(self.batch_index_of(start_seq), len(self._ids)):
            yield self.read_batch(index)

    def iter_events(self, start_seq: int = 0, stop_seq: int | None = None) -> Iterator[Event]:
        """Events ``start_seq`` (0-based) up to ``stop_seq``, decoding one batch at a time."""
        stop = self.event_count if stop_seq is None else min(stop_seq, self.event_count)
        for first_seq, events in self.iter_batches(start_seq):
            if first_seq >= stop:
                return
            lo = max(start_seq - first_seq, 0)
            hi = min(stop - first_seq, len(events))
            yield from events[lo:hi] if lo or hi < len(events) else events

    def seq_at_time(self, mono: float) -> int:
        """How many events a replay applies by time ``mono``: up to the first event later than it."""
        index = bisect.bisect_right(self._max_so_far, mono)
        if index >= len(self._ids):
            return self.event_count
        first_seq, events = self.read_batch(index)
        for offset, event in enumerate(events):
            if event.mono > mono:
                return first_seq + offset
        return first_seq + len(events)

    # --- states ----------------------------------------------------------------------------------

    def keyframe_seq_at_or_before(self, seq: int) -> int | None:
        """Where the latest keyframe at or before ``seq`` stands, without reading it; None if none is
        (or the table cannot be read: a seek then folds, and says so)."""
        try:
            row = self._db.execute(
                "SELECT seq FROM keyframes WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (seq,)
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row is not None and type(row[0]) is int else None

    def keyframe_at_or_before(self, seq: int) -> Keyframe | None:
        """The latest readable keyframe at or before ``seq``; None if there is none."""
        limit = seq
        while True:
            try:
                row = self._db.execute(
                    "SELECT seq, mono, wall FROM keyframes WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (limit,)
                ).fetchone()
            except sqlite3.Error as exc:
                self._warn(_damage("keyframes are unreadable; states are folded from the start", exc))
                return None
            if row is None:
                return None
            if type(row[0]) is not int or not 0 <= row[0] <= limit:
                self._warn("keyframes are damaged; states are folded from the start")
                return None
            try:
                state = decode_keyframe(self._keyframe_bytes(row[0]), self.format_version)
                if state.seq != row[0]:
                    raise ValueError(f"holds the State after event {state.seq}")
                return Keyframe(row[0], float(row[1]), float(row[2]), state)
            except Exception as exc:
                self._warn(f"keyframe at event {row[0]} is unreadable and was skipped ({_one_line(exc)})")
                limit = row[0] - 1

    def _keyframe_bytes(self, seq: int) -> bytes:
        chain: list[tuple[bytes, int | None]] = []
        next_seq: int | None = seq
        while next_seq is not None:
            if len(chain) > _MAX_KEYFRAME_CHAIN:
                raise ValueError("keyframe chain too long")
            row = self._db.execute(
                "SELECT data, base_seq FROM keyframes WHERE seq = ?", (next_seq,)
            ).fetchone()
            if row is None:
                raise ValueError(f"its base keyframe at event {next_seq} is missing")
            chain.append(row)
            next_seq = row[1]
        raw: bytes | None = None
        for blob, _base in reversed(chain):
            raw = decompress_keyframe(blob, raw)
        assert raw is not None
        return raw

    def state_at_seq(self, seq: int) -> State:
        """The State after the first ``seq`` events: the nearest keyframe plus a fold of the rest."""
        seq = max(0, min(seq, self.event_count))
        keyframe = self.keyframe_at_or_before(seq)
        reducer = Reducer(keyframe.state if keyframe is not None else None)
        start = keyframe.seq if keyframe is not None else 0
        for first_seq, events in self.iter_batches(start):
            if first_seq >= seq:
                break
            lo = max(start - first_seq, 0)
            hi = min(seq - first_seq, len(events))
            reducer.apply_many(events[lo:hi] if lo or hi < len(events) else events)
        return reducer.state


def _expected_tables() -> dict[str, str]:
    tables = {}
    for statement in SCHEMA_SQL.split(";"):
        words = " ".join(statement.split())
        if words.startswith("CREATE TABLE "):
            tables[words.split()[2]] = words
    return tables


_EXPECTED_TABLES = _expected_tables()


def _index_row_is_sane(row: IndexRow) -> bool:
    """Types and ranges a writer always produces: damage in the index must not reach the arithmetic."""
    batch_id, first_seq, count, *times = row
    if any(type(value) is not int for value in (batch_id, first_seq, count)):
        return False
    if not 0 < count <= MAX_BATCH_EVENTS:  # the writer's ceiling
        return False
    return all(type(value) in (int, float) and value == value for value in times)  # no text, no NaN


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _damage(what: str, exc: BaseException) -> str:
    return f"damaged or truncated recording: {what} ({_one_line(exc)})"
