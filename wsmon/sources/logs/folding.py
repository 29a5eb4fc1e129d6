"""Bytes into lines, and lines into blocks: a stack trace folded into the error line above it.

Shared by the live sources (``source``), a saved log's replay (``replay``), ``wsmon logs explain`` and
the output of a server wsmon starts itself, so one crash is one log event, not forty, wherever its
lines come from. Pure apart from the clock a held block waits on.
"""

from __future__ import annotations

import re
import time

from wsmon.sources.logs.text import _NODE_LOCATION, _PY_TRACEBACK
from wsmon.sources.logs.vocabulary import strip_ansi

MAX_LINE_BYTES = 1 << 20  # a "line" longer than this is cut, so a file without newlines cannot eat memory
MAX_FOLDED_LINES = 50
FOLD_IDLE_S = 0.5


# Words of a line that could start a trace. Substring tests on the lowered line, not one regex with
# IGNORECASE: that regex cost 17 µs a line, as much as recognising the line (bench/bench_report_log.py).
_TRACE_HEAD_WORDS = ("error", "exception", "traceback", "fatal", "panic", "econn", "etimedout")
_NODE_FRAME = re.compile(r"^\s+at\s")
# A line can be a _NODE_LOCATION ("/app/x.js:42", "./x.js:4", "file:///x.js:4", "C:\\x.js:4") only when it
# starts with one of these, or with a letter; an escape code first may hide any of them.
_NODE_FIRST = frozenset("/.\x1b")
# _PY_TRACEBACK and _NODE_LOCATION are the parser's too (``text``): what it reads as a crash is folded as one.
_PY_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
# Node's own crash output: "/app/server.js:42", the source line, a caret under it, a blank line, then
# "SomeError: message", its frames, the error's own properties ("{ code: … }") and "Node.js v20.…".
_NODE_CRASH_TAIL = re.compile(r"^(?:\s|\}|\^)|^\s*$")


class LineSplitter:
    """Bytes in, complete lines out (decoded, without the newline); a partial line waits for the rest."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        buffer = self._partial + data if self._partial else data
        end = buffer.rfind(b"\n")
        self._partial = buffer[end + 1 :]
        # The complete lines decoded at once, then split: the same text as decoding each line, since
        # a newline byte is never part of a UTF-8 sequence (tests/test_logfile.py compares the two).
        lines = buffer[:end].decode("utf-8", "replace").split("\n") if end >= 0 else []
        if len(self._partial) > MAX_LINE_BYTES:
            lines.append(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        for line in lines:
            if line.endswith("\r"):
                return [line.rstrip("\r") for line in lines]
        return lines

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

    def feed_many(self, lines: list[str]) -> list[str]:
        """``feed`` for each line, the blocks they complete in order: lines that cannot start a trace
        while nothing is held (most lines) pass at once, without ``feed``'s per-line work."""
        out: list[str] = []
        append = out.append
        for line in lines:
            first = line[:1]
            if (
                not self._block
                and first not in _NODE_FIRST
                and (
                    not first.isalpha()  # colour codes further in cannot make it a location then
                    or ("\x1b" not in line and line[1:3] != ":\\" and not line.startswith("file://"))
                )
            ):
                lowered = line.lower()
                for word in _TRACE_HEAD_WORDS:
                    if word in lowered:
                        break
                else:
                    append(line)  # what feed does with it: nothing held, no trace can start here
                    continue
            out += self.feed(line)
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


__all__ = ["FOLD_IDLE_S", "LineSplitter", "StackFolder"]
