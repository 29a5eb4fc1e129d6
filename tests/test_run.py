"""`wsmon run -- CMD` around a real test suite against the real demo server.

The suite (tests/fixtures/suite) has one test that fails while its devices vanish without a close
frame: the report must put those 1006 closes in that test's window, from JUnit XML and from the
pytest plugin's live markers alike.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wsmon.store.reader import RecordingReader

pytestmark = pytest.mark.slow

# Not named test_*.py, so wsmon's own suite does not collect it; pytest runs a file it is given.
SUITE = Path(__file__).parent / "fixtures" / "suite" / "against_demo.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wsmon_run(
    tmp_path: Path, *args: str, test_cmd: list[str], port: int, extra_env: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k not in ("WSMON_URL", "REDIS_URL", "DATABASE_URL", "CI")}
    env.update({"DEMO_URL": f"ws://127.0.0.1:{port}/", "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "wsmon", "run", *args, "--", *test_cmd],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def demo_server(port: int) -> str:
    return f"{sys.executable} -m wsmon.demo.server --port {port}"


def pytest_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE), *extra]


@pytest.mark.parametrize("live_markers", [False, True], ids=["junit", "plugin"])
def test_failed_test_window_holds_the_abnormal_closes(tmp_path: Path, live_markers: bool) -> None:
    port = free_port()
    junit = tmp_path / "junit.xml"
    summary = tmp_path / "summary.md"
    extra = ["--wsmon"] if live_markers else []
    result = wsmon_run(
        tmp_path,
        "--url",
        f"ws://127.0.0.1:{port}/",
        "--server",
        demo_server(port),
        "--junit",
        str(junit),
        "--record",
        "run.wsmon",
        test_cmd=pytest_cmd("--junitxml", str(junit), *extra),
        port=port,
        extra_env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    # pytest's own exit code (1: a test failed) is wsmon run's exit code.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 2 passed" in result.stdout  # the suite's output passed through
    section = result.stdout[result.stdout.index("\nTests\n") :]
    assert "FAILED tests.fixtures.suite.against_demo::test_devices_stay_connected" in section
    failed_block = section.split("FAILED", 1)[1]
    assert "1006 Abnormal Closure" in failed_block, section
    assert "Traceback" not in result.stderr
    # The markdown summary went to $GITHUB_STEP_SUMMARY, tests included.
    markdown = summary.read_text()
    assert "## Tests" in markdown and "1006 Abnormal Closure" in markdown
    # The recording holds the markers and the tests.
    reader = RecordingReader(tmp_path / "run.wsmon")
    state = reader.state_at_seq(reader.event_count)
    texts = [m.text for m in state.markers]
    assert any(t.startswith("tests started:") for t in texts) and any(
        t == "tests ended: exit 1" for t in texts
    )
    outcomes = {name.rsplit("::", 1)[1]: t.outcome for name, t in state.tests.items()}
    assert outcomes == {
        "test_register_and_heartbeat": "passed",
        "test_devices_stay_connected": "failed",
        "test_bad_registration_is_refused": "passed",
    }


def test_exit_codes(tmp_path: Path) -> None:
    port = free_port()
    ok = [sys.executable, "-c", "pass"]
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    base = ["--url", f"ws://127.0.0.1:{port}/", "--server", demo_server(port)]
    # neither: tests pass, no limit breached
    assert wsmon_run(tmp_path, *base, test_cmd=ok, port=port).returncode == 0
    # tests fail: their own exit code
    assert wsmon_run(tmp_path, *base, test_cmd=failing, port=port).returncode == 3
    # limits breached: an RSS limit far below any real process, tests pass → 1, or 0 when told not to fail
    breach = [*base, "--limit", "rss_mib=1", "--interval", "0.2"]
    slow_ok = [sys.executable, "-c", "import time; time.sleep(2.5)"]
    result = wsmon_run(tmp_path, *breach, test_cmd=slow_ok, port=port)
    assert result.returncode == 1, result.stdout
    assert "BREACH" in result.stdout
    assert wsmon_run(tmp_path, *breach, "--no-fail-on-breach", test_cmd=slow_ok, port=port).returncode == 0
    # both: the tests' own code wins
    slow_fail = [sys.executable, "-c", "import time; time.sleep(2.5); raise SystemExit(4)"]
    assert wsmon_run(tmp_path, *breach, test_cmd=slow_fail, port=port).returncode == 4
    # infrastructure missing: the tests never start, the table says why, exit 1
    marker = tmp_path / "ran"
    touch = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    missing = wsmon_run(
        tmp_path,
        "--redis",
        f"redis://127.0.0.1:{free_port()}/0",
        "--ready-timeout",
        "2",
        test_cmd=touch,
        port=port,
    )
    assert missing.returncode == 1
    assert not marker.exists()
    assert "redis" in missing.stderr and "did not answer" in missing.stderr


def test_json_format_has_the_failed_tests(tmp_path: Path) -> None:
    port = free_port()
    junit = tmp_path / "junit.xml"
    result = wsmon_run(
        tmp_path,
        "--url",
        f"ws://127.0.0.1:{port}/",
        "--server",
        demo_server(port),
        "--junit",
        str(junit),
        "--format",
        "json",
        test_cmd=pytest_cmd("--junitxml", str(junit)),
        port=port,
    )
    assert result.returncode == 1
    tail = result.stdout[result.stdout.rindex('{"tests"') :]
    data = json.loads(tail)
    assert data["tests"] == {"failed": 1, "passed": 2}
    [window] = data["failed_tests"]
    assert window["close_codes"].get("1006", 0) >= 1
