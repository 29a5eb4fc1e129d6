"""`wsmon run -- CMD` around a real test suite against the real demo server.

The suite (tests/fixtures/suite) has one test that fails while its devices vanish without a close
frame: the report must put those 1006 closes in that test's window, from JUnit XML and from the
pytest plugin's live markers alike.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import free_port

from wsmon.store.reader import RecordingReader

pytestmark = pytest.mark.slow

# Not named test_*.py, so wsmon's own suite does not collect it; pytest runs a file it is given.
SUITE = Path(__file__).parent / "fixtures" / "suite" / "against_demo.py"



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
    # The suite's own summary line is on stderr: stdout is the report's alone.
    assert re.search(r"1 failed, 2 passed in \d", result.stderr)
    assert not re.search(r"1 failed, 2 passed in \d", result.stdout)
    headline = result.stdout.splitlines()[0]
    assert headline.startswith("wsmon report: FAIL — tests failed"), headline
    section = result.stdout[result.stdout.index("\nTests\n") :]
    assert "FAILED tests.fixtures.suite.against_demo::test_devices_stay_connected" in section
    failed_block = section.split("FAILED", 1)[1]
    assert "1006 Abnormal Closure" in failed_block, section
    assert "Traceback" not in result.stderr
    # The markdown summary went to $GITHUB_STEP_SUMMARY, tests included.
    markdown = summary.read_text()
    assert "### Tests" in markdown and "1006 Abnormal Closure" in markdown
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
    assert missing.stdout.startswith("wsmon report: FAIL — the tests did not start (redis did not answer)")


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
    data = json.loads(result.stdout)  # stdout is exactly one document: the tests' output went to stderr
    assert "1 failed, 2 passed" in result.stderr
    assert data["verdict"] == "fail"
    assert data["tests"]["counts"] == {"failed": 1, "passed": 2}
    assert data["tests"]["exit_code"] == 1
    [window] = data["tests"]["failed"]
    assert window["close_codes"].get("1006", 0) >= 1


# --- issue 8: no false PASS, the CI contract ------------------------------------------------------

EMPTY_SUITE = "x = 1  # a module with no test in it\n"
EMPTY_JUNIT = '<testsuites name="jest tests" tests="0" failures="0" errors="0" time="0.5"></testsuites>'


def demo_args(port: int) -> list[str]:
    return ["--url", f"ws://127.0.0.1:{port}/", "--server", demo_server(port)]


@pytest.mark.parametrize("plugin", [False, True], ids=["junit", "plugin"])
def test_a_suite_that_ran_no_test_fails_and_says_so_first(tmp_path: Path, plugin: bool) -> None:
    """pytest collects nothing (exit 5): the headline is FAIL, no tests ran; never PASS."""
    suite = tmp_path / "empty_suite.py"
    suite.write_text(EMPTY_SUITE)
    port = free_port()
    junit = tmp_path / "junit.xml"
    extra = ["--wsmon"] if plugin else []
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(suite),
        "--junitxml",
        str(junit),
    ]
    result = wsmon_run(
        tmp_path,
        *demo_args(port),
        "--junit",
        str(junit),
        "--record",
        "run.wsmon",
        test_cmd=[*cmd, *extra],
        port=port,
    )
    assert result.returncode == 5, result.stdout + result.stderr  # pytest's own code
    headline = result.stdout.splitlines()[0]
    assert headline.startswith("wsmon report: FAIL — no tests ran"), headline
    assert "PASS" not in result.stdout
    # The clients were never seen (no tap, the demo logs nothing of them): the report says so plainly.
    assert "wsmon saw no client traffic" in result.stdout and "--tap" in result.stdout


def test_a_result_file_without_tests_fails_even_when_the_command_says_0(tmp_path: Path) -> None:
    """jest whose global setup failed writes a JUnit file with tests="0"; the command may still exit 0."""
    port = free_port()
    junit = tmp_path / "junit.xml"
    writes_empty_junit = [
        sys.executable,
        "-c",
        f"open({str(junit)!r}, 'w').write({EMPTY_JUNIT!r})",
    ]
    result = wsmon_run(
        tmp_path,
        *demo_args(port),
        "--junit",
        str(junit),
        "--record",
        "run.wsmon",
        test_cmd=writes_empty_junit,
        port=port,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("wsmon report: FAIL — no tests ran (the result files hold no test case)")
    # Read later, the recording says the same: the verdict and the exit code travel with it.
    later = subprocess.run(
        [sys.executable, "-m", "wsmon", "report", str(tmp_path / "run.wsmon")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert later.returncode == 1, later.stdout + later.stderr
    assert later.stdout.startswith("wsmon report: FAIL — no tests ran")


def test_the_recording_keeps_the_tests_for_report_replay_and_export(tmp_path: Path) -> None:
    port = free_port()
    junit = tmp_path / "junit.xml"
    result = wsmon_run(
        tmp_path,
        *demo_args(port),
        "--junit",
        str(junit),
        "--record",
        "run.wsmon",
        test_cmd=pytest_cmd("--junitxml", str(junit)),
        port=port,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    recording = str(tmp_path / "run.wsmon")

    def wsmon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wsmon", *args], capture_output=True, text=True, timeout=60, check=False
        )

    failing = "test_devices_stay_connected"
    data = json.loads(wsmon("report", recording, "--format", "json").stdout)
    tests = {row["name"].rsplit("::", 1)[1]: row for row in data["tests"]["tests"]}
    assert set(tests) == {"test_register_and_heartbeat", failing, "test_bad_registration_is_refused"}
    row = tests[failing]
    assert row["outcome"] == "failed" and row["message"] and row["start"] and row["end"]
    assert row["start"] <= row["end"]
    assert data["tests"]["exit_code"] == 1 and data["verdict"] == "fail"
    [window] = data["tests"]["failed"]
    assert window["close_codes"].get("1006", 0) >= 1  # the window is filled from the recorded events

    text = wsmon("report", recording)
    assert text.returncode == 1
    assert (
        "\nTests\n" in text.stdout and f"FAILED tests.fixtures.suite.against_demo::{failing}" in text.stdout
    )
    assert "### Tests" in wsmon("report", recording, "--format", "markdown").stdout
    junit_xml = wsmon("report", recording, "--format", "junit").stdout
    assert '<testsuite name="tests"' in junit_xml and f'name="{failing}"' in junit_xml

    replay = wsmon("replay", recording, "--headless")
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert replay.stdout.startswith("wsmon report: FAIL — tests failed")
    assert f"FAILED tests.fixtures.suite.against_demo::{failing}" in replay.stdout

    exported = [json.loads(line) for line in wsmon("export", recording, "--jsonl").stdout.splitlines()]
    ends = [e for e in exported if e.get("type") == "test" and e["phase"] == "end"]
    assert {e["name"].rsplit("::", 1)[1]: e["outcome"] for e in ends}[failing] == "failed"
    [ended] = [e for e in exported if e.get("type") == "tests.ended"]
    assert ended["exit_code"] == 1 and ended["ran"] == 3


def test_breach_exit_code_tells_a_breach_from_a_test_failure(tmp_path: Path) -> None:
    port = free_port()
    breach = [*demo_args(port), "--limit", "rss_mib=1", "--interval", "0.2"]
    slow_ok = [sys.executable, "-c", "import time; time.sleep(2.5)"]
    result = wsmon_run(tmp_path, *breach, "--breach-exit-code", "99", test_cmd=slow_ok, port=port)
    assert result.returncode == 99, result.stdout + result.stderr
    assert result.stdout.startswith("wsmon report: BREACH — breached: rss_mib")
    slow_fail = [sys.executable, "-c", "import time; time.sleep(2.5); raise SystemExit(3)"]
    failed = wsmon_run(tmp_path, *breach, "--breach-exit-code", "99", test_cmd=slow_fail, port=port)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    # Both went wrong: the tests' failure is named first, the breach after it.
    assert failed.stdout.startswith("wsmon report: FAIL — the test command exited 3; breached: rss_mib")


def test_json_stdout_is_one_document_and_outputs_go_where_asked(tmp_path: Path) -> None:
    port = free_port()
    noisy = [sys.executable, "-c", "print('{\"not\": \"the report\"}'); print('tests say hello')"]
    result = wsmon_run(tmp_path, *demo_args(port), "--format", "json", test_cmd=noisy, port=port)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)  # exactly one document, or this raises
    assert data["tests"]["exit_code"] == 0
    assert "tests say hello" in result.stderr

    report_file, test_output = tmp_path / "report.json", tmp_path / "tests.log"
    to_files = wsmon_run(
        tmp_path,
        *demo_args(port),
        "--format",
        "json",
        "-o",
        str(report_file),
        "--test-output",
        str(test_output),
        test_cmd=noisy,
        port=port,
    )
    assert to_files.returncode == 0, to_files.stdout + to_files.stderr
    written = json.loads(report_file.read_text())
    assert written["verdict"] in ("pass", "no data")
    # No client was watched (no tap, and the demo server logs none of them): said plainly.
    assert any("wsmon saw no client traffic" in note for note in written["notes"])
    assert to_files.stdout.rstrip().endswith("; wsmon saw no client traffic)")
    assert to_files.stdout.startswith("wsmon report: ") and len(to_files.stdout.splitlines()) == 1
    assert "tests say hello" in test_output.read_text()
    assert "tests say hello" not in to_files.stderr + to_files.stdout


def test_the_recorded_command_is_the_real_command_line_with_secrets_masked(tmp_path: Path) -> None:
    port = free_port()
    test_cmd = [sys.executable, "-c", "import sys", "--token", "hunter2", "two words"]
    result = wsmon_run(tmp_path, *demo_args(port), "--record", "run.wsmon", test_cmd=test_cmd, port=port)
    assert result.returncode == 0, result.stdout + result.stderr
    header = RecordingReader(tmp_path / "run.wsmon").header
    assert header.command.startswith("wsmon run --url ")
    assert header.command.endswith("-- " + shlex.join([*test_cmd[:4], "***", "two words"]))
    assert "hunter2" not in (tmp_path / "run.wsmon").read_bytes().decode("latin-1")
    assert "hunter2" not in result.stdout + result.stderr


def test_the_plugin_witnesses_that_no_test_ran_behind_a_wrapper_that_exits_0(tmp_path: Path) -> None:
    """A wrapper script hides pytest's exit 5; the plugin connected and reported no test: FAIL."""
    suite = tmp_path / "empty_suite.py"
    suite.write_text(EMPTY_SUITE)
    port = free_port()
    pytest_line = shlex.join(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite), "--wsmon"]
    )
    wrapper = ["sh", "-c", f"{pytest_line}; exit 0"]
    result = wsmon_run(tmp_path, *demo_args(port), "--format", "json", test_cmd=wrapper, port=port)
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "fail"
    assert data["tests"]["reason"] == "no tests ran (the pytest plugin reported no test)"
    assert data["tests"]["exit_code"] == 0


UNTIMED_JUNIT = (
    '<testsuites><testsuite name="devices" tests="2" failures="1">'
    '<testcase classname="devices" name="registers" time="0.2"/>'
    '<testcase classname="devices" name="stays connected" time="0.4">'
    '<failure message="expected 4 devices, got 0">at devices.test.ts:12</failure></testcase>'
    "</testsuite></testsuites>"
)


def test_result_file_cases_without_a_timestamp_are_recorded_and_judged(tmp_path: Path) -> None:
    """Runners that write no suite timestamp used to lose every case; and a failed case fails the
    run even when the command exits 0."""
    port = free_port()
    junit = tmp_path / "junit.xml"
    writes = [sys.executable, "-c", f"open({str(junit)!r}, 'w').write({UNTIMED_JUNIT!r})"]
    result = wsmon_run(
        tmp_path, *demo_args(port), "--junit", str(junit), "--record", "run.wsmon", test_cmd=writes, port=port
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(
        "wsmon report: FAIL — tests failed (1 failed, 1 passed): devices::stays connected"
    )
    state = RecordingReader(tmp_path / "run.wsmon").state_at_seq(10**9)
    assert {name: t.outcome for name, t in state.tests.items()} == {
        "devices::registers": "passed",
        "devices::stays connected": "failed",
    }
    assert state.tests["devices::stays connected"].message == "expected 4 devices, got 0"


@pytest.mark.parametrize("flag", ["--test-output", "-o"])
def test_an_output_file_in_a_missing_directory_is_bad_usage(tmp_path: Path, flag: str) -> None:
    marker = tmp_path / "ran"
    touch = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    result = wsmon_run(tmp_path, "--url", "ws://127.0.0.1:1/", flag, "/nonexistent/x", test_cmd=touch, port=1)
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.splitlines() == [
        f"wsmon: error: {flag} /nonexistent/x: directory /nonexistent does not exist"
    ]
