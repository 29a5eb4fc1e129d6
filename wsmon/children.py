"""Child processes that end with wsmon, however wsmon ends (a clean exit, kill -9, a closed terminal).

Every child wsmon starts (a server, the demo's load generator, alert commands) runs in its own process
group, so stopping it stops what it started too. Two things make it end when wsmon dies without
stopping it:

- a parent-death signal (Linux ``PR_SET_PDEATHSIG``): SIGTERM the moment wsmon is gone;
- a watchdog, a tiny ``sh`` outside the group that waits for EOF on a pipe whose other end only
  wsmon holds, then signals the whole group (SIGTERM, then SIGKILL after three seconds). The kernel
  closes that pipe however wsmon ends, kill -9 included, and the watchdog also reaches the
  grandchildren, which the parent-death signal does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import TypedDict, Unpack

# Waits for EOF on stdin (wsmon gone), then ends the child's whole process group.
WATCHDOG_SCRIPT = (
    'cat >/dev/null; kill -s TERM -- "-$1" 2>/dev/null; sleep 3; kill -s KILL -- "-$1" 2>/dev/null'
)
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux only)."""
    parent = os.getpid()

    def arm() -> None:  # runs in the child between fork and exec
        if not sys.platform.startswith("linux"):
            return
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


class GroupWatchdog:
    """Ends a process group when wsmon dies; ``stop()`` it once wsmon has ended the group itself."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, pgid: int) -> None:
        with contextlib.suppress(OSError):
            self._process = await asyncio.create_subprocess_exec(
                "sh",
                "-c",
                WATCHDOG_SCRIPT,
                "wsmon-watchdog",
                str(pgid),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )

    async def stop(self) -> None:
        """Kill the watchdog (its group needs it no more) and reap it, closing its pipe."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        if process.stdin is not None:
            process.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=2.0)


class ChildOptions(TypedDict, total=False):
    """The keywords wsmon's callers pass on to asyncio's subprocess functions."""

    stdin: int
    stdout: int
    stderr: int
    env: Mapping[str, str]


async def start_guarded_exec(
    *argv: str, watchdog: GroupWatchdog, **kwargs: Unpack[ChildOptions]
) -> asyncio.subprocess.Process:
    """``create_subprocess_exec`` in a new process group that dies with wsmon; starts ``watchdog``."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        start_new_session=True,
        preexec_fn=die_with_parent(),
        **kwargs,
    )
    await watchdog.start(process.pid)
    return process


async def start_guarded_shell(
    command: str, *, watchdog: GroupWatchdog, **kwargs: Unpack[ChildOptions]
) -> asyncio.subprocess.Process:
    """``create_subprocess_shell`` in a new process group that dies with wsmon; starts ``watchdog``."""
    process = await asyncio.create_subprocess_shell(
        command,
        start_new_session=True,
        preexec_fn=die_with_parent(),
        **kwargs,
    )
    await watchdog.start(process.pid)
    return process
