"""The main job end to end: the demo recorded headless, judged, replayed; and the live dashboard.

These run the real demo server and load generator as child processes, over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers import run_wsmon
from ui_support import widget_text

from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import fold
from wsmon.demo.runner import build_demo_session
from wsmon.store.reader import RecordingReader
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import CloseCodesPanel, FailuresPanel

pytestmark = pytest.mark.slow


def wsmon(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_wsmon(*args, timeout=timeout)


DEMO_EXIT: dict[Path, int] = {}  # the headless demo's exit code, by recording


@pytest.fixture(scope="module")
def demo_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.wsmon"
    result = wsmon("demo", "--headless", "--duration", "20", "--record", str(path))
    # One exit-code rule for every command that prints a verdict: 0 pass, 1 breach.
    assert result.returncode in (0, 1), result.stderr
    assert (result.returncode == 1) == result.stdout.startswith("wsmon report: BREACH"), result.stdout
    assert path.exists()
    DEMO_EXIT[path] = result.returncode
    path.with_suffix(".out").write_text(result.stdout)
    return path


TALLY = re.compile(r"load generator's tally: (\d+) connections opened, (\d+) closed \((.*)\), (\d+) refused")


def test_the_reports_counts_equal_the_load_generators_own_tally(demo_recording: Path) -> None:
    """Every client connection passed the tap and appears in the server's log too; probes connect
    directly. One connection is one count: the report's figures are exactly what the clients saw."""
    match = TALLY.search(demo_recording.with_suffix(".out").read_text())
    assert match, "the demo did not print the load generator's tally"
    opened, closed, by_code, refused = int(match[1]), int(match[2]), match[3], int(match[4])
    tally = {
        int(code): int(n) for code, n in (item.split("×") for item in by_code.split(", ") if "×" in item)
    }
    assert opened > 50 and sum(tally.values()) == closed

    report = json.loads(wsmon("report", str(demo_recording), "--format", "json").stdout)
    connections = report["connections"]
    assert connections["opened_total"] == opened
    assert connections["connect_failed"] == refused
    assert {row["code"]: row["count"] for row in report["close_codes"]["codes"]} == tally
    # Start-up is not an outage: the tap checked its upstream before the demo server listened.
    assert {t["name"]: (t["state"], t["down_count"]) for t in report["targets"]} == {
        name: ("up", 0) for name in ("process", "server", "tap", "websocket")
    }


def test_report_counts_the_injected_closes_and_failures(demo_recording: Path) -> None:
    result = wsmon("report", str(demo_recording), "--format", "json")
    report = json.loads(result.stdout)
    counts = {row["code"]: row["count"] for row in report["close_codes"]["codes"]}
    for code in (1001, 1005, 1006):
        assert counts.get(code, 0) > 0, f"no {code} closes in {counts}"
    assert report["delivery"]["failed"] > 0
    assert any("Connection not open" in row["name"] for row in report["delivery"]["reasons"])
    breached = any(figure["verdict"] == "breach" for figure in report["figures"])
    assert result.returncode == (1 if breached else 0)
    assert DEMO_EXIT[demo_recording] == result.returncode  # the live verdict and the later one agree
    assert report["verdict"] == ("breach" if breached else report["verdict"])


def test_report_formats_and_exit_code_agree(demo_recording: Path) -> None:
    text = wsmon("report", str(demo_recording))
    markdown = wsmon("report", str(demo_recording), "--format", "markdown")
    assert text.returncode == markdown.returncode
    assert re.search(r"1006\s+Abnormal Closure", text.stdout)
    assert re.search(r"\|\s*1006\s*\|\s*Abnormal Closure", markdown.stdout)


def test_replay_headless_prints_the_same_summary_as_report(demo_recording: Path) -> None:
    replayed = wsmon("replay", str(demo_recording), "--headless")
    reported = wsmon("report", str(demo_recording))
    assert replayed.returncode == reported.returncode, replayed.stderr
    assert replayed.stdout == reported.stdout


def test_export_writes_json_lines(demo_recording: Path) -> None:
    result = wsmon("export", str(demo_recording), "--jsonl")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["type"] == "header"
    types = {line["type"] for line in lines[1:]}
    assert {"conn.open", "conn.close", "delivery.fail", "process"} <= types


def test_recording_is_private(demo_recording: Path) -> None:
    assert demo_recording.stat().st_mode & 0o777 == 0o600


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    missing = wsmon("report", str(tmp_path / "nope.wsmon"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "nope.wsmon" in missing.stderr
    junk = tmp_path / "junk.wsmon"
    junk.write_bytes(b"this is not a recording")
    result = wsmon("report", str(junk))
    assert result.returncode == 2 and "junk.wsmon" in result.stderr and "Traceback" not in result.stderr
    bad_limit = wsmon("demo", "--headless", "--duration", "1", "--limit", "rss_mib=lots")
    assert bad_limit.returncode == 2 and "rss_mib" in bad_limit.stderr


def test_live_state_equals_the_state_replayed_from_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "live.wsmon"
    session = build_demo_session(clients=20, limits=DEFAULT_LIMITS, record=path, duration=8.0)
    asyncio.run(session.run())
    live = session.state
    assert live.seq > 100
    reader = RecordingReader(path)
    assert reader.event_count == live.seq
    assert reader.state_at_seq(reader.event_count) == live
    assert fold(reader.iter_events()) == live


async def test_demo_dashboard_shows_an_abnormal_close_and_a_delivery_failure_within_15_s() -> None:
    session = build_demo_session(clients=50, limits=DEFAULT_LIMITS, record=None, duration=None)
    app = WsmonApp(session)
    async with app.run_test(size=(160, 50)) as pilot:
        deadline = time.monotonic() + 15.0
        closes = failures = ""
        while time.monotonic() < deadline:
            await pilot.pause(0.25)
            closes = widget_text(app.query_one(CloseCodesPanel))
            failures = widget_text(app.query_one(FailuresPanel))
            if "1006" in closes and "Connection not open" in failures:
                break
        assert "1006" in closes and "Abnormal Closure" in closes, closes
        assert "Connection not open" in failures, failures
        await pilot.press("q")
        for _ in range(100):
            if not app.is_running:
                break
            await pilot.pause(0.1)
