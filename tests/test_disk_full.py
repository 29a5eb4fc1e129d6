"""Recording to a full or read-only disk: one line, monitoring goes on, what was written stays
readable, exit 2 at the end, and no empty file left behind. The disks are real tmpfs mounts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_wsmon
from ui_support import widget_text

from wsmon.core import events as ev
from wsmon.session import Session
from wsmon.sources.base import CheckResult, Emit, Source, now
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import HeaderBar

pytestmark = pytest.mark.timeout(120)


def _mount_tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount_tmpfs(tmp_path / "disk", "size=256k")


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount_tmpfs(tmp_path / "ro", "ro,size=64k")


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` so that about ``leave`` bytes stay free."""
    info = os.statvfs(disk)
    free = info.f_bavail * info.f_frsize
    with open(disk / "filler", "wb") as out:
        out.write(b"\0" * max(free - leave, 0))


def wsmon(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_wsmon(*args, cwd=cwd, timeout=timeout)


def test_a_disk_that_fills_mid_run_stops_the_recording_not_the_monitoring(
    small_disk: Path, tmp_path: Path
) -> None:
    fill(small_disk, leave=96 * 1024)
    record = small_disk / "run.wsmon"
    proc = wsmon(
        "demo", "--headless", "--duration", "8", "--clients", "10", "--rate", "10", "--record", str(record),
        cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [f"wsmon: error: {record}: cannot write (disk full)"]
    assert proc.returncode == 2
    # Monitoring went on to the end: the report covers the whole run, not the recorded part.
    assert proc.stdout.startswith("wsmon report: ")
    live_events = int(proc.stdout.split("events ")[1].split()[0].replace(",", ""))
    # What was written before the disk filled stays readable.
    report = wsmon("report", str(record), "--format", "json", cwd=tmp_path)
    assert report.returncode in (0, 1), report.stderr
    recorded = json.loads(report.stdout)["session"]["events"]
    print(f"live events {live_events}, recorded before the disk filled {recorded}")
    assert 0 < recorded < live_events


def test_a_full_disk_at_start_leaves_no_empty_file(small_disk: Path, tmp_path: Path) -> None:
    fill(small_disk, leave=0)
    record = small_disk / "run.wsmon"
    proc = wsmon(
        "demo", "--headless", "--duration", "3", "--clients", "2", "--record", str(record), cwd=tmp_path
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [f"wsmon: error: {record}: cannot write (disk full)"]
    assert proc.returncode == 2
    assert proc.stdout.startswith("wsmon report: ")  # it monitored all the same
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
    # With room again, the same name works: no "already exists" from a leftover.
    (small_disk / "filler").unlink()
    again = wsmon(
        "demo", "--headless", "--duration", "2", "--clients", "2", "--record", str(record), cwd=tmp_path
    )
    verdict = again.stdout.splitlines()[0]
    assert again.returncode == (1 if ("BREACH" in verdict or "FAIL" in verdict) else 0), again.stderr
    assert again.stderr.splitlines() == [f"recorded to {record}"]


def test_a_read_only_disk_is_refused_before_monitoring_starts(read_only_disk: Path, tmp_path: Path) -> None:
    record = read_only_disk / "run.wsmon"
    started = time.monotonic()
    proc = wsmon("demo", "--headless", "--duration", "30", "--record", str(record), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"wsmon: error: {record}: cannot write (read-only file system)"]
    assert proc.stdout == ""
    assert time.monotonic() - started < 20  # refused at once, not after the 30 s run


class Chatter(Source):
    """A source that emits a marker every few milliseconds, enough to fill a small disk quickly."""

    async def run(self, emit: Emit) -> None:
        for i in range(1_000_000):
            wall, mono = now()
            emit(ev.Marker(wall=wall, mono=mono, text=f"marker {i} " + "x" * 200))
            await asyncio.sleep(0.001)

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


async def test_the_dashboard_says_recording_stopped_and_keeps_running(small_disk: Path) -> None:
    fill(small_disk, leave=64 * 1024)
    record = small_disk / "live.wsmon"
    session = Session([Chatter()], title="disk full test", record=record)
    app = WsmonApp(session)
    async with app.run_test(size=(200, 50)) as pilot:
        deadline = time.monotonic() + 30
        while session.recording_error is None and time.monotonic() < deadline:
            await pilot.pause(0.2)
        assert session.recording_error == f"{record}: cannot write (disk full)"
        seq = session.state.seq
        await pilot.pause(1.0)
        app.refresh_from_state()
        await pilot.pause()
        assert "recording stopped: disk full" in widget_text(app.query_one(HeaderBar))
        assert session.state.seq > seq  # still monitoring
        await pilot.press("q")
    assert app.return_code in (None, 0)


def test_wsmon_run_on_a_full_disk_still_runs_the_tests_and_reports(small_disk: Path, tmp_path: Path) -> None:
    fill(small_disk, leave=0)
    record = small_disk / "run.wsmon"
    proc = wsmon(
        "run", "--redis", "redis://127.0.0.1:6379/0", "--record", str(record), "--",
        sys.executable, "-c", "print('tests ran')",
        cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "tests ran" in proc.stdout
    assert "wsmon report: " in proc.stdout  # from the live State: nothing could be recorded
    assert f"wsmon: error: {record}: cannot write (disk full)" in proc.stderr.splitlines()
    assert proc.returncode == 2
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
