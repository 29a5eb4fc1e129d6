"""A server's log as a source: a file followed like ``tail -F``, or stdin.

The file is polled (a stat every ``poll_interval``): new bytes are read as they are appended; a new
inode at the path (rotation by rename) is read from its start, after what was left in the old file;
a file that shrank (truncation, copytruncate) is read again from 0; a missing file is a ``down``
event until it appears. A partial last line is held until its newline arrives.

Stack traces are folded into the error line above them (``folding.StackFolder``), so one crash is one
log event, not forty.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from wsmon.core import events as ev
from wsmon.sources.base import CheckResult, Emit, Source, TargetStatus, now
from wsmon.sources.logs.folding import FOLD_IDLE_S, LineSplitter, StackFolder
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.rules import Rule
from wsmon.sources.pipe_reader import GatheringPipes

READ_CHUNK = 256 * 1024


class LogLines:
    """Bytes → lines → folded blocks → events, a read chunk at a time: its lines are folded and
    recognised in one call each, and its events handed on in their order.

    ``keep``, when given, receives the raw lines as well (a server's last lines for its exit event).
    """

    def __init__(self, parser: LogParser, emit: Emit, keep: deque[str] | None = None) -> None:
        self.parser = parser
        self.emit = emit
        self.keep = keep
        self.splitter = LineSplitter()
        self.folder = StackFolder()

    def feed(self, data: bytes) -> None:
        self._lines(self.splitter.feed(data))

    def holding(self) -> bool:
        """True while a possible stack trace's first line waits for the lines after it."""
        return self.folder.held_since is not None

    def flush_if_idle(self) -> None:
        if self.folder.idle():
            self._hand_on(self.folder.flush())

    def flush_held(self) -> None:
        """Hands on a held block now: no more of its trace came within ``FOLD_IDLE_S``."""
        self._hand_on(self.folder.flush())

    def flush(self) -> None:
        self._lines(self.splitter.flush())
        self._hand_on(self.folder.flush())

    def _lines(self, lines: list[str]) -> None:
        if self.keep is not None and lines:
            self.keep.extend(lines[-(self.keep.maxlen or len(lines)) :])
        self._hand_on(self.folder.feed_many(lines))

    def _hand_on(self, blocks: list[str]) -> None:
        if blocks:
            emit = self.emit
            for event in self.parser.parse_many(blocks):
                emit(event)


class LogFileSource(Source):
    """Follows one log file like ``tail -F``; never raises, never ends by itself.

    With ``follow=False`` it reads the file from its start to its end instead, and then ends.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        target: str = "log",
        parser_rules: Sequence[Rule] | None = None,
        from_start: bool = False,
        poll_interval: float = 0.25,
        follow: bool = True,
    ) -> None:
        self.path = Path(path)
        self.target = target
        self.rules = parser_rules
        self.from_start = from_start or not follow
        self.poll_interval = poll_interval
        self.follow = follow
        self.position = 0  # how far into the current file wsmon has read: for diagnostics, and tests
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the open file
        self.status = TargetStatus(target)
        self._first_open = True  # only a file that is there when wsmon starts is read from its end

    async def check(self) -> CheckResult:
        """The file is there and readable now."""
        try:
            with self.path.open("rb"):
                pass
        except OSError as exc:
            return CheckResult(ok=False, error=exc.strerror or str(exc), kind="missing")
        return CheckResult(ok=True)

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(ev.TargetAdded(wall=wall, mono=mono, target=self.target, kind="log", address=str(self.path)))
        lines = LogLines(LogParser(self.target, now, self.rules), emit)
        if not self.follow:
            await self._read_once(lines, emit)
            return
        try:
            while True:
                await self._poll(lines, emit)
                lines.flush_if_idle()
                await asyncio.sleep(self.poll_interval)
        except asyncio.CancelledError:
            if self._file is not None:
                self._file.close()
                self._file, self._identity = None, None
            raise
        except Exception as error:
            # Shown DOWN with the error, never UP while failing. The open file and its position are
            # kept: when the session restarts this source, it goes on after what it had already read.
            self._mark_down(emit, f"failed: {_describe(error)}", "error")
            raise

    async def _poll(self, lines: LogLines, emit: Emit) -> None:
        try:
            info = os.stat(self.path)
        except OSError as error:
            await self._finish_file(lines)  # renamed away and not yet replaced: read what it still had
            self._first_open = False  # whatever appears at the path later is new: read it from the top
            missing = isinstance(error, FileNotFoundError)
            self._mark_down(emit, "no such file" if missing else _os_error(error), "missing")
            return
        if self._file is None or self._identity != (info.st_dev, info.st_ino):
            await self._finish_file(lines)  # rotated: the rest of the old file, then the new one
            if not self._open(emit):
                return
        elif info.st_size < self._file.tell():  # truncated in place: start again from the top
            lines.flush()
            self._file.seek(0)
        assert self._file is not None
        await self._drain(self._file, lines)
        self.status.mark_up(emit, "following")  # again, after a failure the session restarted us from

    async def _read_once(self, lines: LogLines, emit: Emit) -> None:
        """Without --follow: the file from its start to its end, then the source ends (a file that
        cannot be read is DOWN with why, and ends too: there is nothing to wait for)."""
        if not self._open(emit):
            return
        assert self._file is not None
        try:
            await self._drain(self._file, lines)
            lines.flush()
        finally:
            self._file.close()
            self._file, self._identity = None, None

    def _open(self, emit: Emit) -> bool:
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - held open across polls, closed on rotation
        except OSError as error:
            self._mark_down(emit, _os_error(error), "denied")
            return False
        opened = os.fstat(file.fileno())
        self._file, self._identity = file, (opened.st_dev, opened.st_ino)
        if self._first_open and not self.from_start:
            file.seek(0, os.SEEK_END)
        self._first_open = False
        self.status.mark_up(emit, "following")
        return True

    async def _finish_file(self, lines: LogLines) -> None:
        if self._file is None:
            return
        await self._drain(self._file, lines)
        lines.flush()
        self._file.close()
        self._file, self._identity = None, None

    def _mark_down(self, emit: Emit, error: str, kind: str) -> None:
        # One DOWN an outage, whatever it turns into (missing, then there but unreadable): the log's
        # DOWN says the lines stopped, and they stopped once. TargetStatus alone would tell each kind.
        if self.status.up is not False:
            self.status.mark_down(emit, error, kind)

    async def _drain(self, file: BinaryIO, lines: LogLines) -> None:
        read = file.read
        while True:
            data = read(READ_CHUNK)
            self.position = file.tell()
            if not data:
                return
            lines.feed(data)
            if len(data) == READ_CHUNK:
                await asyncio.sleep(0)  # a large backlog must not starve the other sources


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _os_error(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


class StdinLogSource(Source):
    """Log lines piped into wsmon (``--log -``); the end of the input ends the source quietly, unless
    ``follow`` and the input is a file, which is then read on as it grows.

    ``fd`` defaults to standard input; tests pass the read end of a pipe. The descriptor is not closed.
    """

    def __init__(
        self,
        *,
        target: str = "stdin",
        parser_rules: Sequence[Rule] | None = None,
        fd: int | None = None,
        follow: bool = False,
        poll_interval: float = 0.25,
    ) -> None:
        self.target = target
        self.rules = parser_rules
        self.fd = sys.stdin.fileno() if fd is None else fd
        # `--log - --follow < server.log`: a file given as input is read on as it grows. A pipe's end
        # is the end whatever is asked: nothing more can come.
        self.follow = follow
        self.poll_interval = poll_interval

    async def check(self) -> CheckResult:
        """Standard input needs nothing before it is read."""
        return CheckResult(ok=True)

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(ev.TargetAdded(wall=wall, mono=mono, target=self.target, kind="log", address="stdin"))
        status = TargetStatus(self.target)
        status.mark_up(emit, "reading")
        lines = LogLines(LogParser(self.target, now, self.rules), emit)
        pipe = os.fdopen(self.fd, "rb", buffering=0, closefd=False)
        try:
            await self._read(pipe, lines)
        except Exception as error:
            status.mark_down(emit, f"failed: {_describe(error)}", "")
            raise
        finally:
            lines.flush()
            pipe.close()

    async def _read(self, pipe: BinaryIO, lines: LogLines) -> None:
        if _is_regular(self.fd):
            # `wsmon … --log - < file`: a regular file cannot be watched by the event loop.
            while True:
                data = pipe.read(READ_CHUNK)
                if data:
                    lines.feed(data)
                    await asyncio.sleep(0)
                    continue
                if not self.follow:
                    return
                lines.flush_if_idle()
                await asyncio.sleep(self.poll_interval)
        else:
            await self._read_stream(pipe, lines)

    @staticmethod
    async def _read_stream(pipe: BinaryIO, lines: LogLines) -> None:
        # Gathered reads: a busy writer costs one wake-up a chunk, not one a write (pipe_reader.py).
        # The fd is stdin's (or the caller's): not closed here.
        reader = GatheringPipes([pipe.fileno()])
        while reader.open:
            try:
                (data,) = await reader.read(FOLD_IDLE_S if lines.holding() else None)
            except TimeoutError:
                lines.flush_held()
                continue
            if data:
                lines.feed(data)
            lines.flush_if_idle()


def _is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


__all__ = ["READ_CHUNK", "LogFileSource", "StdinLogSource"]
