"""The tap's worker processes, seen from the session: start one, read its batches, learn how it ended.

A worker gets the session's listening sockets and one end of a Unix socket pair as inherited file
descriptors; it is a child that dies with wsmon (``children.die_with_parent``, and it stops on EOF of
that socket pair anyway). Its stderr is kept (the last lines) to say why it died.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import os
import signal
import socket
import sys
from collections.abc import Callable

import msgspec

from wsmon.children import die_with_parent
from wsmon.sources.tap_ipc import BatchReader, Item, WorkerConfig

# A worker asked to stop has this long to send its last closes and exit: within the 2 s the session
# gives a source whose stop() ends its run.
STOP_WAIT_S = 1.5
READ_SIZE = 256 * 1024


def uvloop_wanted(asked: bool | None) -> bool:
    """Whether workers run on uvloop: when installed (``wsmon[fast]``), unless ``WSMON_UVLOOP=0``."""
    if asked is None:
        asked = os.environ.get("WSMON_UVLOOP", "1").strip().lower() not in ("0", "false", "no", "off")
    return asked and importlib.util.find_spec("uvloop") is not None


class TapWorker:
    """One worker process: ``start()``, then ``run(on_batch)`` until it ends; ``stop()`` asks it to."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=5)

    async def start(self, listen_fds: list[int]) -> None:
        ours, theirs = socket.socketpair()
        try:
            config = msgspec.structs.replace(self.config, listen_fds=listen_fds, ipc_fd=theirs.fileno())
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wsmon.sources.tap_worker",
                msgspec.json.encode(config).decode(),
                pass_fds=(*listen_fds, theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C is the session's to handle, not the worker's
                preexec_fn=die_with_parent(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_connection(sock=ours)

    async def run(self, on_batch: Callable[[list[Item]], None]) -> str:
        """Hands each batch to ``on_batch`` until the worker ends; returns how it ended, in words."""
        assert self.process is not None and self._reader is not None
        stderr = asyncio.get_running_loop().create_task(self._keep_stderr())
        batches = BatchReader()
        try:
            while data := await self._reader.read(READ_SIZE):
                for batch in batches.feed(data):
                    on_batch(batch)
        except (ConnectionError, ValueError) as error:
            self._stderr.append(str(error))
            self.kill()
        finally:
            if self._writer is not None:
                self._writer.close()
        code = await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await stderr
        return self._ending(code)

    def _ending(self, code: int) -> str:
        if code < 0:
            with contextlib.suppress(ValueError):
                how = f"was killed by {signal.Signals(-code).name}"
                return how if not self._stderr else f"{how} ({self._stderr[-1]})"
            return f"was killed by signal {-code}"
        last = f": {self._stderr[-1]}" if self._stderr else ""
        return f"exited with status {code}{last}"

    async def _keep_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").strip()
            if text:
                self._stderr.append(text[:300])

    def stop(self) -> None:
        """Ask the worker to cut its connections, send their closes and exit: ``run()`` then returns."""
        writer = self._writer
        if writer is not None and not writer.is_closing() and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
