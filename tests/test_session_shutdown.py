"""A session always ends: a source whose library swallows its cancellation cannot hold wsmon open.

redis-py can swallow a cancellation that lands mid-command; `wsmon attach --redis … --headless
--duration 1` then never exited (about one run in six), even on SIGTERM."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from services import REDIS_URL

from wsmon import session as session_module
from wsmon.session import Session
from wsmon.sources.base import CheckResult, Emit, Source, poll_forever


async def test_poll_forever_honours_a_cancellation_its_pass_swallowed() -> None:
    passes = 0

    async def swallowing_pass() -> bool:
        nonlocal passes
        passes += 1
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            pass  # what a client library may do with a cancellation that lands mid-command
        return True

    task = asyncio.create_task(poll_forever(0.05, swallowing_pass))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=2.0)
    assert passes == 1


class StubbornSource(Source):
    """A source that ignores every cancellation (the worst a third-party library can do), until the
    test releases it so that its event loop can close."""

    def __init__(self) -> None:
        super().__init__()
        self.released = False

    async def run(self, emit: Emit) -> None:
        while not self.released:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


async def test_a_source_that_never_stops_is_left_behind_and_the_session_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_module, "STOP_TIMEOUT_S", 0.5)
    stubborn = StubbornSource()
    session = Session([stubborn], title="stubborn", duration=0.3)
    started = time.monotonic()
    try:
        await asyncio.wait_for(session.run(), timeout=10.0)
        assert time.monotonic() - started < 5.0
    finally:
        stubborn.released = True
        left = [t for t in asyncio.all_tasks() if t.get_name() == "StubbornSource"]
        await asyncio.wait(left, timeout=2.0) if left else None
    warnings = [entry.text for entry in session.state.logs if entry.level == "warn"]
    assert any("did not stop within" in text for text in warnings), warnings


@pytest.mark.slow
def test_attach_to_redis_for_a_second_always_exits(tmp_path: Path) -> None:
    for run in range(8):
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "wsmon", "attach", "--redis", REDIS_URL, "--headless", "--duration", "1"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, (run, proc.stderr)
        assert time.monotonic() - started < 15, run
        assert "did not stop" not in proc.stdout + proc.stderr
