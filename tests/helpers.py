"""Small helpers the tests share: fixed event times, a free port, waiting for a condition, running the
wsmon command in a clean environment.

Plain functions imported by name (``from helpers import at, free_port``), like the service starters in
``services.py``: a test reads where each comes from, which a conftest fixture would hide.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from itertools import count
from pathlib import Path
from typing import TypedDict

from wsmon.core.events import Event
from wsmon.core.reducer import Reducer
from wsmon.store import RecordedTarget, RecordingWriter, new_header

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z: the wall time a scripted session starts at
# Targets a developer may have in the environment: a test of the command must not watch them.
TARGET_ENV = ("WSMON_URL", "REDIS_URL", "DATABASE_URL")


class Stamp(TypedDict):
    """The two times every event carries, to unpack into its constructor: ``ev.TargetUp(**at(1.0), …)``."""

    wall: float
    mono: float


class Clock:
    """Event times on a fixed time line, so a script of events gives the same State on every run.

    ``clock(2.5)`` is 2.5 s after the start; ``clock()`` is the next whole second of this clock's own
    ticks (1, 2, 3, …), for scripts where only the order of events matters.
    """

    def __init__(self, *, wall0: float = T0, mono0: float = 0.0) -> None:
        self.wall0 = wall0
        self.mono0 = mono0
        self._ticks = count(1)

    def __call__(self, seconds: float | None = None) -> Stamp:
        t = float(next(self._ticks)) if seconds is None else seconds
        return {"wall": self.wall0 + t, "mono": self.mono0 + t}


at = Clock()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, *, every: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


async def wait_for_events(
    events: list[Event], condition: Callable[[list[Event]], bool], timeout: float = 10.0
) -> None:
    """Let a running source append to ``events`` until ``condition`` holds of them."""
    deadline = time.monotonic() + timeout
    while not condition(events):
        assert time.monotonic() < deadline, f"condition not reached; events: {events}"
        await asyncio.sleep(0.02)


def clean_env(home: Path, *, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This environment without the targets (and ``drop``), with a config directory of the test's own."""
    env = {key: value for key, value in os.environ.items() if key not in TARGET_ENV and key not in drop}
    env["XDG_CONFIG_HOME"] = str(home / "xdg")
    env.update(extra)
    return env


def run_wsmon(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m wsmon ARGS`` run to its end, its output captured as UTF-8 text."""
    return subprocess.run(
        [sys.executable, "-m", "wsmon", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def write_recording(
    path: Path, events: list[Event], *, batch: int = 100, keyframe_every: int = 250
) -> Reducer:
    """Write ``events`` as the live session does: apply, append, flush with the State every batch."""
    reducer = Reducer()
    header = new_header("test", targets=[RecordedTarget(name="ws", kind="websocket", address="ws://h/")])
    with RecordingWriter(path, header, keyframe_every=keyframe_every) as writer:
        for start in range(0, len(events), batch):
            for event in events[start : start + batch]:
                reducer.apply(event)
                writer.append(event)
            writer.flush(reducer.state)
        writer.close(reducer.state)
    return reducer
