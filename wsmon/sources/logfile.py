"""A server's log as a source: a file followed like ``tail -F``, or stdin.

The file is polled (a stat every ``poll_interval``): new bytes are read as they are appended; a new
inode at the path (rotation by rename) is read from its start, after what was left in the old file;
a file that shrank (truncation, copytruncate) is read again from 0; a missing file is a ``down``
event until it appears. A partial last line is held until its newline arrives.

Stack traces are folded into the error line above them (``StackFolder``), so one crash is one
log event, not forty.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from wsmon.core import events as ev
from wsmon.sources.base import CheckResult, Emit, Source, now
from wsmon.sources.logparse import _NODE_LOCATION, _PY_TRACEBACK, LogParser, strip_ansi
from wsmon.sources.logrules import Rule

MAX_LINE_BYTES = 1 << 20  # a "line" longer than this is cut, so a file without newlines cannot eat memory
READ_CHUNK = 256 * 1024
MAX_FOLDED_LINES = 50
FOLD_IDLE_S = 0.5

# Words of a line that could start a trace. Substring tests on the lowered line, not one regex with
# IGNORECASE: that regex cost 17 µs a line, as much as recognising the line (bench/bench_report_log.py).
_TRACE_HEAD_WORDS = ("error", "exception", "traceback", "fatal", "panic", "econn", "etimedout")
_NODE_FRAME = re.compile(r"^\s+at\s")
# _PY_TRACEBACK and _NODE_LOCATION are the parser's: what it reads as a crash is what is folded as one.
_PY_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
# Node's own crash output: "/app/server.js:42", the source line, a caret under it, a blank line, then
# "SomeError: message", its frames, the error's own properties ("{ code: … }") and "Node.js v20.…".
_NODE_CRASH_TAIL = re.compile(r"^(?:\s|\}|\^)|^\s*$")


class LineSplitter:
    """Bytes in, complete lines out (decoded, without the newline); a partial line waits for the rest."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        buffer = self._partial + data
        *complete, self._partial = buffer.split(b"\n")
        if len(self._partial) > MAX_LINE_BYTES:
            complete.append(self._partial)
            self._partial = b""
        return [line.decode("utf-8", "replace").rstrip("\r") for line in complete]

    def flush(self) -> list[str]:
        """The held partial line, for the end of a stream or a file that was truncated or replaced."""
        rest, self._partial = self._partial, b""
        return [rest.decode("utf-8", "replace").rstrip("\r")] if rest else []


def _could_start_trace(line: str) -> bool:
    lowered = line.lower()
    for word in _TRACE_HEAD_WORDS:  # noqa: SIM110 - a loop, not any(…): no generator for every line
        if word in lowered:
            return True
    return False


class StackFolder:
    """Folds stack-trace lines into the error line they follow, as one newline-joined block.

    A line that could start a trace (it mentions an error, an exception, a traceback) is held until the
    next line shows whether a trace follows, or until ``FOLD_IDLE_S`` passes with nothing new. Node
    frames (``    at …``) and Python tracebacks (``Traceback …``, the indented ``File …`` lines, and the
    exception line that ends it) continue a block; at most ``MAX_FOLDED_LINES`` lines are folded.
    """

    def __init__(self, max_lines: int = MAX_FOLDED_LINES) -> None:
        self.max_lines = max_lines
        self._block: list[str] = []
        self._python = False  # inside a Python traceback, whose frames are indented
        self._python_ended = False  # its exception line was seen: a chained traceback may follow
        self._node = 0  # Node's crash output: 1 after its location line, 2 within, 3 ended
        self._node_error_seen = False
        self.held_since: float | None = None

    def feed(self, line: str) -> list[str]:
        """The blocks this line completes (possibly none: it may be held)."""
        if self._block and len(self._block) < self.max_lines and self._continues(line):
            self._block.append(line)
            self.held_since = time.monotonic()
            return []
        out = self.flush()
        self._python = self._python_ended = False
        plain = strip_ansi(line)
        self._node = 1 if _NODE_LOCATION.match(plain) else 0
        self._node_error_seen = False
        if self._node or _could_start_trace(line):
            self._block = [line]
            self._python = plain.startswith(_PY_TRACEBACK)
            self.held_since = time.monotonic()
        else:
            out.append(line)
        return out

    def _continues(self, line: str) -> bool:
        plain = strip_ansi(line)
        if self._node:
            return self._node_continues(plain)
        if plain.startswith(_PY_TRACEBACK):
            self._python = True
            return True
        if _NODE_FRAME.match(plain):
            return True
        if self._python and plain.strip():
            if not plain[0].isspace():
                self._python = False  # "ValueError: boom" ends the traceback, and belongs to it
                self._python_ended = True
            return True
        # "During handling of the above exception …": a chain of tracebacks is one crash.
        return self._python_ended and (not plain.strip() or plain.startswith(_PY_CHAINED))

    def _node_continues(self, plain: str) -> bool:
        """The source line (whatever it looks like), the caret, blank lines, the error line after
        them, its frames and properties, and the closing "Node.js v…" all belong to the crash."""
        if self._node == 1:  # the source line: part of the crash, never a line of its own
            self._node = 2
            return True
        if self._node == 3:  # "Node.js v…" was the crash's last line
            return False
        if plain.startswith("Node.js v"):
            self._node = 3
            return True
        if _NODE_CRASH_TAIL.match(plain):
            return True
        if not self._node_error_seen:  # "MessageDeliveryError: …", the error itself
            self._node_error_seen = True
            return True
        return False

    def flush(self) -> list[str]:
        while len(self._block) > 1 and not self._block[-1].strip():
            self._block.pop()  # blank lines held inside a crash, in case more of it followed
        block, self._block = self._block, []
        self.held_since = None
        return ["\n".join(block)] if block else []

    def idle(self) -> bool:
        """True when a held block has waited long enough for more trace lines."""
        return self.held_since is not None and time.monotonic() - self.held_since >= FOLD_IDLE_S


class _Lines:
    """Bytes → lines → folded blocks → events."""

    def __init__(self, parser: LogParser, emit: Emit) -> None:
        self.parser = parser
        self.emit = emit
        self.splitter = LineSplitter()
        self.folder = StackFolder()

    def feed(self, data: bytes) -> None:
        for line in self.splitter.feed(data):
            self._blocks(self.folder.feed(line))

    def flush_if_idle(self) -> None:
        if self.folder.idle():
            self._blocks(self.folder.flush())

    def flush(self) -> None:
        for line in self.splitter.flush():
            self._blocks(self.folder.feed(line))
        self._blocks(self.folder.flush())

    def _blocks(self, blocks: list[str]) -> None:
        for block in blocks:
            for event in self.parser.parse(block):
                self.emit(event)


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
        self._up: bool | None = None
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
        lines = _Lines(LogParser(self.target, now, self.rules), emit)
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
            self._set_up(emit, False, f"failed: {_describe(error)}", "error")
            raise

    async def _poll(self, lines: _Lines, emit: Emit) -> None:
        try:
            info = os.stat(self.path)
        except OSError as error:
            await self._finish_file(lines)  # renamed away and not yet replaced: read what it still had
            self._first_open = False  # whatever appears at the path later is new: read it from the top
            missing = isinstance(error, FileNotFoundError)
            self._set_up(emit, False, "no such file" if missing else _os_error(error), "missing")
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
        self._set_up(emit, True, "following")  # again, after a failure the session restarted us from

    async def _read_once(self, lines: _Lines, emit: Emit) -> None:
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
            self._set_up(emit, False, _os_error(error), "denied")
            return False
        opened = os.fstat(file.fileno())
        self._file, self._identity = file, (opened.st_dev, opened.st_ino)
        if self._first_open and not self.from_start:
            file.seek(0, os.SEEK_END)
        self._first_open = False
        self._set_up(emit, True, "following")
        return True

    async def _finish_file(self, lines: _Lines) -> None:
        if self._file is None:
            return
        await self._drain(self._file, lines)
        lines.flush()
        self._file.close()
        self._file, self._identity = None, None

    def _set_up(self, emit: Emit, up: bool, text: str, kind: str = "") -> None:
        if self._up is up:
            return
        self._up = up
        wall, mono = now()
        if up:
            emit(ev.TargetUp(wall=wall, mono=mono, target=self.target, detail=text))
        else:
            emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=text, kind=kind))

    async def _drain(self, file: BinaryIO, lines: _Lines) -> None:
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
        wall, mono = now()
        emit(ev.TargetUp(wall=wall, mono=mono, target=self.target, detail="reading"))
        lines = _Lines(LogParser(self.target, now, self.rules), emit)
        pipe = os.fdopen(self.fd, "rb", buffering=0, closefd=False)
        try:
            await self._read(pipe, lines)
        except Exception as error:
            wall, mono = now()
            emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=f"failed: {_describe(error)}"))
            raise
        finally:
            lines.flush()
            pipe.close()

    async def _read(self, pipe: BinaryIO, lines: _Lines) -> None:
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
    async def _read_stream(pipe: BinaryIO, lines: _Lines) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            while True:
                wait = FOLD_IDLE_S if lines.folder.held_since is not None else None
                try:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), wait)
                except TimeoutError:
                    lines.flush_if_idle()
                    continue
                if not data:
                    return
                lines.feed(data)
                lines.flush_if_idle()
        finally:
            transport.close()


def _is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


__all__ = ["LineSplitter", "LogFileSource", "StackFolder", "StdinLogSource"]
