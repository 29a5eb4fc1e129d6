"""A saved server log as a session on its own clock: ``wsmon report server.log``, ``replay``, ``import``.

Each log is read from its start to its end (plain or gzip-compressed, told by its first bytes), folded
and recognised exactly as a live log is (``folding``, ``parser``), but every event is stamped with the
time its line says it was written (``timestamps``), so durations, rates, latencies and "for how long"
are the original night's. A line without a timestamp (a stack frame, a crash's source line, a logger
configured without time) takes its predecessor's; the lines before a log's first timestamp take that
first timestamp. A log with no timestamp at all is stamped with the file's modification time, and
says so (``LogStream.undated``).

Several logs (two instances of a server) are merged by time. Their connection ids are prefixed with
the log's target name (``log1/c1``), since two instances number their connections alike.

Nothing is held but the current block and a bounded look-behind: a gigabyte log streams through.
"""

from __future__ import annotations

import gzip
import heapq
import io
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import msgspec

from wsmon.core import events as ev
from wsmon.sources.logs.folding import LineSplitter, StackFolder
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.rules import Rule
from wsmon.sources.logs.source import READ_CHUNK
from wsmon.sources.logs.timestamps import LineClock

GZIP_MAGIC = b"\x1f\x8b"
SQLITE_MAGIC = b"SQLite format 3\x00"
RECORDING_SUFFIX = ".wsmon"
MAX_UNDATED_HELD = 10_000  # blocks held while waiting for a log's first timestamp
_CONN_EVENTS = (ev.ConnectionOpened, ev.ConnectionClosed, ev.ConnectionClosing, ev.Traffic, ev.DeliveryFailed)


def is_log_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a log (text, or gzip) rather than a recording, told by its content; the
    name only settles text that shows no log line at all."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a FIFO or a device is not waited on: the recording reader refuses it
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError:
        return False  # the recording reader says what is wrong with it
    if head.startswith(SQLITE_MAGIC) or not head:
        return False
    if head.startswith(GZIP_MAGIC):
        return True
    if b"\x00" in head:
        return False  # a damaged recording, or some other binary file
    if Path(path).suffix != RECORDING_SUFFIX:
        return True
    # Text named like a recording: a log only if it shows a log line (a timestamp, a JSON object);
    # anything else is a recording that is damaged, and the recording reader says how.
    clock = LineClock()
    lines = head.decode("utf-8", "replace").splitlines()
    return any(line.lstrip().startswith("{") or clock.stamp(line) is not None for line in lines)


def open_log(path: str | os.PathLike[str]) -> io.BufferedIOBase:
    """The log's bytes, decompressed when it is gzip (told by its first bytes, not its name)."""
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb")
    raw.seek(0)
    return raw


class LogStream:
    """The events of one saved log, in its order, each stamped with its line's own time."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        target: str = "log",
        rules: Sequence[Rule] | None = None,
        conn_prefix: str = "",
    ) -> None:
        self.path = Path(path)
        self.target = target
        self.rules = rules
        self.conn_prefix = conn_prefix
        self.lines = 0  # blocks read (a folded stack trace is one)
        self.undated = 0  # blocks stamped with the file's time, the log having no timestamp at all
        self._now = (0.0, 0.0)
        self._stamped = False

    def _clock(self) -> tuple[float, float]:
        return self._now

    def __iter__(self) -> Iterator[ev.Event]:
        with open_log(self.path) as file:
            read = file.read
            while data := read(READ_CHUNK):
                yield from self.feed(data)
        yield from self.finish()

    # --- incremental: for a log followed as it grows (`wsmon replay server.log --follow`) ---------

    def _begin(self) -> None:
        self._reference = os.stat(self.path).st_mtime
        self._stamps = LineClock(self._reference)
        self._parser = LogParser(self.target, self._clock, self.rules)
        self._splitter, self._folder = LineSplitter(), StackFolder()
        self._held: list[str] = []  # blocks before the first timestamp

    def feed(self, data: bytes) -> Iterator[ev.Event]:
        """The events of the complete lines ``data`` ends (a partial last line waits for the rest)."""
        if not hasattr(self, "_parser"):
            self._begin()
        folder, stamps, parser, held = self._folder, self._stamps, self._parser, self._held
        for line in self._splitter.feed(data):
            yield from self._blocks(folder.feed(line), stamps, parser, held)

    def flush_if_idle(self) -> Iterator[ev.Event]:
        """A line held in case a stack trace followed, once nothing more came for a while."""
        if hasattr(self, "_parser") and self._folder.idle():
            yield from self._blocks(self._folder.flush(), self._stamps, self._parser, self._held)

    def finish(self) -> Iterator[ev.Event]:
        """The end of the log: the partial last line, a held block, and undated lines if all were."""
        if not hasattr(self, "_parser"):
            self._begin()
        folder, stamps, parser, held = self._folder, self._stamps, self._parser, self._held
        for line in self._splitter.flush():
            yield from self._blocks(folder.feed(line), stamps, parser, held)
        yield from self._blocks(folder.flush(), stamps, parser, held)
        if held:  # no timestamp anywhere: the file's own time is all there is
            self.undated = len(held)
            yield from self._start(self._reference)
            yield from self._parse(held, self._reference, parser)

    def _blocks(
        self, blocks: list[str], stamps: LineClock, parser: LogParser, held: list[str]
    ) -> Iterator[ev.Event]:
        for block in blocks:
            self.lines += 1
            stamp = stamps.stamp(block)
            if stamp is None:
                if not self._stamped:
                    held.append(block)
                    if len(held) >= MAX_UNDATED_HELD:
                        self.undated = len(held)
                        yield from self._start(stamps.reference)
                        yield from self._parse(held, stamps.reference, parser)
                    continue
                stamp = self._now[0]  # the predecessor's
            if not self._stamped:
                yield from self._start(stamp)
                if held:
                    yield from self._parse(held, stamp, parser)  # the lines before the first stamp
            yield from self._parse((block,), stamp, parser)

    def _start(self, stamp: float) -> Iterator[ev.Event]:
        self._stamped = True
        yield ev.TargetAdded(wall=stamp, mono=stamp, target=self.target, kind="log", address=str(self.path))
        yield ev.TargetUp(wall=stamp, mono=stamp, target=self.target, detail="read from a saved log")

    def _parse(self, blocks: Iterable[str], stamp: float, parser: LogParser) -> Iterator[ev.Event]:
        self._now = (stamp, stamp)
        prefix = self.conn_prefix
        for block in blocks:
            for event in parser.parse(block):
                if prefix and isinstance(event, _CONN_EVENTS) and event.conn:
                    event = msgspec.structs.replace(event, conn=prefix + event.conn)
                yield event
        if isinstance(blocks, list):
            blocks.clear()


def log_targets(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The target names of saved logs, as ``wsmon attach --log`` names them: ``log``, or ``log1`` …"""
    return ["log"] if len(paths) == 1 else [f"log{n}" for n in range(1, len(paths) + 1)]


def merged_events(
    paths: Sequence[str | os.PathLike[str]], rules: Sequence[Rule] | None = None
) -> tuple[list[LogStream], Iterator[ev.Event]]:
    """The logs' streams, and all their events merged by time (a log's own order kept among equals)."""
    streams = [
        LogStream(path, target=name, rules=rules, conn_prefix=f"{name}/" if len(paths) > 1 else "")
        for path, name in zip(paths, log_targets(paths), strict=True)
    ]
    if len(streams) == 1:
        return streams, iter(streams[0])
    return streams, heapq.merge(*streams, key=_time_of)


def _time_of(event: ev.Event) -> float:
    return event.mono


def check_readable(path: str | os.PathLike[str]) -> str | None:
    """Why a saved log cannot be read (one line), or None."""
    try:
        with open_log(path) as file:
            file.read(1)
    except (OSError, EOFError, gzip.BadGzipFile, io.UnsupportedOperation) as error:
        return f"{path}: cannot read: {getattr(error, 'strerror', None) or error}"
    return None


__all__ = ["LogStream", "check_readable", "is_log_file", "log_targets", "merged_events", "open_log"]
