"""One exit-code rule for every command that prints a verdict: 0 pass, 1 breach (or failed tests or
check), 2 bad usage or unreadable input. Real demo server, real attach, real recordings."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import clean_env, run_wsmon
from services import demo_server_process

from wsmon.store.reader import RecordingReader

pytestmark = pytest.mark.slow


def wsmon(tmp_path: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_wsmon(*args, cwd=tmp_path, env=clean_env(tmp_path), timeout=timeout)


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    with demo_server_process() as port:
        yield f"ws://127.0.0.1:{port}/"


# A server's RSS is always above 1 MiB: a limit every session breaches.
BREACH = ("--limit", "rss_mib=1", "--interval", "0.2")


def test_attach_headless_exits_1_on_a_breach_like_report_and_replay(tmp_path: Path, demo_server: str) -> None:
    recording = tmp_path / "attach.wsmon"
    live = wsmon(
        tmp_path,
        "attach",
        demo_server + "?token=hunter2",
        "--headless",
        "--duration",
        "2",
        *BREACH,
        "--record",
        str(recording),
    )
    assert live.returncode == 1, live.stdout + live.stderr
    assert live.stdout.startswith("wsmon report: BREACH — breached: rss_mib")
    report = wsmon(tmp_path, "report", str(recording))
    replay = wsmon(tmp_path, "replay", str(recording), "--headless")
    assert report.returncode == replay.returncode == 1, report.stdout + replay.stdout
    # The recorded command is the real command line, its token masked.
    header = RecordingReader(recording).header
    assert header.command.startswith("wsmon attach 'ws://127.0.0.1:") and "token=***" in header.command
    assert "--duration 2 --limit rss_mib=1" in header.command
    assert "hunter2" not in recording.read_bytes().decode("latin-1")


def test_attach_headless_exits_0_without_a_breach(tmp_path: Path) -> None:
    # This test's own process, judged with limits it cannot reach: a session without a breach.
    loose = ("--limit", "rss_mib=1000000", "--limit", "cpu_percent=100000")
    live = wsmon(tmp_path, "attach", "--pid", str(os.getpid()), *loose, "--headless", "--duration", "1")
    assert live.returncode == 0, live.stdout + live.stderr
    assert not live.stdout.startswith("wsmon report: BREACH"), live.stdout


def test_demo_headless_exits_1_on_a_breach(tmp_path: Path) -> None:
    recording = tmp_path / "demo.wsmon"
    live = wsmon(
        tmp_path,
        "demo",
        "--headless",
        "--duration",
        "2",
        "--clients",
        "3",
        *BREACH[:2],
        "--record",
        str(recording),
    )
    assert live.returncode == 1, live.stdout + live.stderr
    assert live.stdout.startswith("wsmon report: BREACH")
    assert wsmon(tmp_path, "report", str(recording)).returncode == 1
    assert RecordingReader(recording).header.command.startswith("wsmon demo --headless --duration 2")


def test_unreadable_input_is_2_everywhere(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wsmon"
    junk.write_bytes(b"not a recording")
    for command in (
        ("report", str(junk)),
        ("replay", str(junk), "--headless"),
        ("export", str(junk), "--jsonl"),
    ):
        result = wsmon(tmp_path, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "junk.wsmon" in result.stderr
