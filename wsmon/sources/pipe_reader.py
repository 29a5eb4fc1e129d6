"""A process's output pipes read in gathered chunks: one wake-up for many of the writer's lines.

A busy server writes its log a line or a few at a time, ~2,000 writes a second at 1,000 connections.
An asyncio read-pipe transport wakes the event loop for every one of them (epoll, read, a callback,
the reader's wake-up): at a steady 1,000 × 1 msg/s that cost wsmon's process 7.4 % of a core before a
single line was recognised (docs/performance.md, issue 13). Here, once bytes have come, the next read
waits ``gather_s`` while the kernel's pipe buffers (raised to 1 MiB where Linux allows) hold what the
writer adds meanwhile; when every pipe is empty the reader waits for one to become readable, so an idle
pipe costs nothing and a line on a quiet pipe is read at once.

The pipes (stdout, stderr) are read together, in the order given, on one clock: what a crash writes to
stderr after its last stdout lines is not read before them because stderr's reader happened to be awake.

What it costs the reader: a line can be read up to ``gather_s`` after it was written (its events are
stamped then). The writer is never slowed while a buffer has room: at ``gather_s`` = 25 ms it would
have to write 40 MB/s to fill 1 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Sequence

GATHER_S = 0.025
READ_BYTES = 1 << 20
PIPE_BUFFER_BYTES = 1 << 20


class GatheringPipes:
    """Reads the read ends of some pipes (made non-blocking here; closed by ``close``)."""

    def __init__(
        self, fds: Sequence[int], *, gather_s: float = GATHER_S, read_bytes: int = READ_BYTES
    ) -> None:
        self.fds = list(fds)
        self.gather_s = gather_s
        self.read_bytes = read_bytes
        self._ended = [False] * len(self.fds)
        self._next_read = 0.0  # monotonic: bytes were read just now, so let more gather until then
        set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        for fd in self.fds:
            os.set_blocking(fd, False)
            if set_pipe_size is not None:
                # Above /proc/sys/fs/pipe-max-size for an unprivileged user it fails: 64 KiB it stays.
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, set_pipe_size, PIPE_BUFFER_BYTES)

    @property
    def open(self) -> bool:
        """True until every pipe has reached its end."""
        return not all(self._ended)

    async def read(self, timeout: float | None = None) -> list[bytes | None]:
        """A chunk per pipe, in the order given: the bytes there were, b"" for a pipe that has just
        reached its end, None for one with nothing new. Raises TimeoutError if no pipe had anything
        within ``timeout`` seconds of waiting."""
        wait = self._next_read - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        while True:
            chunks = [self._read_one(index) for index in range(len(self.fds))]
            if any(chunk is not None for chunk in chunks):
                if any(chunks):
                    self._next_read = time.monotonic() + self.gather_s
                return chunks
            await self._readable(timeout)

    def _read_one(self, index: int) -> bytes | None:
        if self._ended[index]:
            return None
        try:
            data = os.read(self.fds[index], self.read_bytes)
        except BlockingIOError:
            return None
        if not data:
            self._ended[index] = True
        return data

    async def _readable(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        waiting = [fd for fd, ended in zip(self.fds, self._ended, strict=True) if not ended]
        for fd in waiting:
            # The loop may report an fd again before this task resumes: the result is set once.
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            for fd in waiting:
                loop.remove_reader(fd)

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


__all__ = ["GATHER_S", "GatheringPipes"]
