"""Test results from the runners people use, read from their real output.

jest is installed with npm into a temp dir once a session (npm must be reachable: without it these
tests fail, they do not skip); TAP comes from node's built-in runner; `go test -json` is run when Go is
installed, and otherwise read from an output captured from the real tool (tests/fixtures/testresults).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port

from wsmon.core.testresults import TestResult, TestResultsError, detect_format, parse_test_results

FIXTURES = Path(__file__).parent / "fixtures" / "testresults"
JEST_VERSION = "29"


def by_name(results: list[TestResult]) -> dict[str, TestResult]:
    names = [r.name for r in results]
    assert len(set(names)) == len(names), names  # names are the keys of a run's tests
    return {r.name: r for r in results}


@pytest.fixture(scope="session")
def jest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with jest installed and the fixture suite in t/."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to install jest for these tests"
    root = tmp_path_factory.mktemp("jest")
    (root / "package.json").write_text('{"name": "wsmon-jest-fixture", "version": "1.0.0", "private": true}')
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"jest@{JEST_VERSION}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, f"npm install jest failed: {installed.stderr[-2000:]}"
    shutil.copytree(FIXTURES / "jest", root / "t")
    return root


def run_jest(jest_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    jest = jest_dir / "node_modules" / ".bin" / "jest"
    return subprocess.run(
        [str(jest), "--json", f"--outputFile={out}", *extra],
        cwd=jest_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.timeout(900)
def test_jest_json_gives_per_test_durations_inside_each_files_real_window(
    jest_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "jest.json"
    before = time.time()
    result = run_jest(jest_dir, out)
    after = time.time()
    assert result.returncode == 1, result.stderr  # one test fails on purpose
    text = out.read_text()
    assert detect_format(text) == "jest"
    fmt, results = parse_test_results(text)
    tests = by_name(results)
    assert fmt == "jest" and set(tests) == {
        "math.test.js::math adds",
        "math.test.js::math fails",
        "math.test.js::math skipped",
        "other.test.js::quick",
    }
    fails = tests["math.test.js::math fails"]
    assert fails.outcome == "failed" and "expect(received).toBe(expected)" in fails.message
    assert "\x1b" not in fails.message
    assert tests["math.test.js::math skipped"].outcome == "skipped"
    assert tests["math.test.js::math adds"].outcome == "passed"
    # The tests sleep 120 and 80 ms: jest's durations, not made up.
    assert 0.1 <= tests["math.test.js::math adds"].duration_s < 5
    assert 0.07 <= fails.duration_s < 5
    for test in results:
        assert test.approximate  # jest gives no per-test start
        assert test.start_wall is not None and before - 1 <= test.start_wall <= after
        assert test.start_wall + test.duration_s <= after + 1
    # Back to back inside the file: "adds" then "fails".
    adds = tests["math.test.js::math adds"]
    assert adds.start_wall is not None and fails.start_wall is not None
    assert abs(adds.start_wall + adds.duration_s - fails.start_wall) < 1e-6


@pytest.mark.timeout(900)
def test_a_jest_file_that_does_not_run_is_one_error_over_its_real_window(
    jest_dir: Path, tmp_path: Path
) -> None:
    broken = jest_dir / "t" / "broken.test.js"
    broken.write_text('test("never", () => { expect(1).toBe(1) \n')
    try:
        run_jest(jest_dir, tmp_path / "jest.json")
    finally:
        broken.unlink()
    _, results = parse_test_results((tmp_path / "jest.json").read_text())
    tests = by_name(results)
    assert tests["broken.test.js"].outcome == "error"
    assert tests["broken.test.js"].message == "Test suite failed to run"
    assert tests["broken.test.js"].approximate is False  # the file's own start and end
    assert tests["math.test.js::math fails"].outcome == "failed"


def node_tap(tmp_path: Path) -> str:
    node = shutil.which("node")
    assert node, "node is needed for these tests"
    out = tmp_path / "out.tap"
    result = subprocess.run(
        [
            node,
            "--test",
            "--test-reporter=tap",
            f"--test-reporter-destination={out}",
            "a.test.mjs",
            "b.test.mjs",
        ],
        cwd=FIXTURES / "node",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # one test fails on purpose
    return out.read_text()


def test_node_test_runner_tap_subtests_yaml_durations_and_directives(tmp_path: Path) -> None:
    text = node_tap(tmp_path)
    assert detect_format(text) == "tap"
    anchor = 1_000_000.0
    _, results = parse_test_results(text, anchor_wall=anchor)
    tests = by_name(results)
    assert set(tests) == {"adds", "suite::inner ok", "suite::inner fails", "skipped", "todo", "b quick"}
    inner = tests["suite::inner fails"]
    assert inner.outcome == "failed" and inner.message == "Expected values to be strictly equal:"
    assert tests["skipped"].outcome == "skipped" and tests["todo"].outcome == "skipped"  # a TODO's failure
    assert tests["adds"].outcome == tests["suite::inner ok"].outcome == "passed"
    assert 0.04 <= tests["adds"].duration_s < 5  # it sleeps 50 ms; node's duration_ms
    assert all(t.approximate for t in results)  # TAP has no clock
    # Back to back from the anchor, subtests inside their suite.
    assert tests["adds"].start_wall == anchor
    ok, fails = tests["suite::inner ok"], inner
    assert ok.start_wall is not None and fails.start_wall is not None
    assert ok.start_wall == pytest.approx(anchor + tests["adds"].duration_s)
    assert fails.start_wall == pytest.approx(ok.start_wall + ok.duration_s)


def test_tap_without_an_anchor_has_no_start_and_a_suite_failing_alone_is_reported() -> None:
    text = "\n".join(
        [
            "TAP version 14",
            "# Subtest: suite",
            "    ok 1 - a \\# not a directive",
            "    ok 2 - b # SKIP slow",
            "    1..2",
            "not ok 1 - suite",
            "  ---",
            "  duration_ms: 12.5",
            "  error: 'before hook failed'",
            "  ...",
            "1..1",
        ]
    )
    _, results = parse_test_results(text)
    tests = by_name(results)
    assert set(tests) == {"suite::a # not a directive", "suite::b", "suite"}
    assert tests["suite"].outcome == "failed" and tests["suite"].message == "before hook failed"
    assert tests["suite"].duration_s == pytest.approx(0.0125)
    assert tests["suite::b"].outcome == "skipped"
    assert all(t.start_wall is None for t in results)


def go_output(tmp_path: Path) -> tuple[str, bool]:
    """Real `go test -json` output: run now when Go is installed, else the one captured from go 1.19."""
    go = shutil.which("go")
    if go is None:
        return (FIXTURES / "go_test_json_go1.19.txt").read_text(), False
    shutil.copytree(FIXTURES / "go", tmp_path / "go")
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    env.setdefault("HOME", str(tmp_path))
    result = subprocess.run(
        [go, "test", "-json", "./..."],
        cwd=tmp_path / "go",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    return result.stdout, True


@pytest.mark.timeout(400)
def test_go_test_json_gives_real_starts_and_ends(tmp_path: Path) -> None:
    text, _live = go_output(tmp_path)
    assert detect_format(text) == "go"
    _, results = parse_test_results(text)
    tests = by_name(results)
    package = "example.com/wsclient"
    assert set(tests) == {
        f"{package}::TestConnects",
        f"{package}::TestDelivery/ok",
        f"{package}::TestDelivery/timeout",
        f"{package}::TestSkipped",
        f"{package}::TestParallelA",
        f"{package}::TestParallelB",
    }  # TestDelivery is reported through its subtests; the package through its tests
    timeout = tests[f"{package}::TestDelivery/timeout"]
    assert timeout.outcome == "failed"
    assert timeout.message == "client_test.go:16: no ack for msg_3 within 50ms"
    assert tests[f"{package}::TestSkipped"].outcome == "skipped"
    assert not any(t.approximate for t in results)
    connects, ok = tests[f"{package}::TestConnects"], tests[f"{package}::TestDelivery/ok"]
    assert 0.11 <= connects.duration_s < 2  # it sleeps 120 ms
    # The subtest's own duration, not the time until its parent ended (Go writes its end then).
    assert 0.025 <= ok.duration_s < timeout.duration_s
    assert ok.start_wall is not None and timeout.start_wall is not None and ok.start_wall < timeout.start_wall
    # The parallel tests overlap: each window starts when it continued.
    a, b = tests[f"{package}::TestParallelA"], tests[f"{package}::TestParallelB"]
    assert a.start_wall is not None and b.start_wall is not None
    assert abs(a.start_wall - b.start_wall) < a.duration_s


def test_go_build_failure_from_old_go_is_a_package_error_without_a_time() -> None:
    text = (FIXTURES / "go_build_failed_go1.19.txt").read_text()
    assert detect_format(text) == "go"
    _, results = parse_test_results(text)
    assert results == [
        TestResult(
            name="example.com/broken",
            outcome="error",
            start_wall=None,
            duration_s=0.0,
            message="./x_test.go:5:28: undefined: undefinedCall",
        )
    ]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("hello world\n", "not test results wsmon can read"),
        (
            '{"numTotalTests": 1, "testResults": 3}',
            'jest --json: expected an object with a "testResults" list',
        ),
        ('{"numTotalTests": 1, "testResults": [', "jest --json: not valid JSON"),
        (
            '{"Time": "yesterday", "Action": "run", "Test": "T"}\n',
            "go test -json: line 1: bad Time 'yesterday'",
        ),
        ("<testsuites><oops></testsuites>", "JUnit XML: not valid XML"),
    ],
)
def test_bad_results_are_one_clear_line(text: str, complaint: str) -> None:
    with pytest.raises(TestResultsError) as caught:
        parse_test_results(text)
    message = str(caught.value)
    assert complaint in message and "\n" not in message


def test_junit_results_are_flagged_approximate() -> None:
    junit = (
        '<testsuites><testsuite name="s" timestamp="2026-12-02T03:00:00+00:00">'
        '<testcase classname="t" name="a" time="0.5"/><testcase classname="t" name="b" time="0.25">'
        '<failure message="boom"/></testcase></testsuite></testsuites>'
    )
    fmt, results = parse_test_results(junit)
    assert fmt == "junit" and [(r.name, r.outcome, r.approximate) for r in results] == [
        ("t::a", "passed", True),
        ("t::b", "failed", True),
    ]
    assert results[1].start_wall == pytest.approx(results[0].start_wall + 0.5)  # type: ignore[operator]


# --- through `wsmon run` ---------------------------------------------------------------------------------



def wsmon_run(
    tmp_path: Path, results: list[Path], test_cmd: list[str], *extra: str
) -> subprocess.CompletedProcess[str]:
    """`wsmon run` against the real demo server, reading the runner's results when it ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("WSMON_URL", "REDIS_URL", "DATABASE_URL", "CI")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    server = f"{sys.executable} -m wsmon.demo.server --port {port}"
    flags = [arg for path in results for arg in ("--test-results", str(path))]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "wsmon",
            "run",
            "--url",
            f"ws://127.0.0.1:{port}/",
            "--server",
            server,
            "--record",
            str(tmp_path / "run.wsmon"),
            *flags,
            *extra,
            "--",
            *test_cmd,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wsmon_run_reads_jest_and_tap_results_and_says_their_windows_are_approximate(
    jest_dir: Path, tmp_path: Path
) -> None:
    jest_out, tap_out = tmp_path / "jest.json", tmp_path / "node.tap"
    script = (
        f"cd {jest_dir} && ./node_modules/.bin/jest --json --outputFile={jest_out} 2>/dev/null; "
        f"cd {FIXTURES / 'node'} && node --test --test-reporter=tap --test-reporter-destination={tap_out} "
        "a.test.mjs b.test.mjs"
    )
    result = wsmon_run(tmp_path, [jest_out, tap_out], ["sh", "-c", script])
    assert result.returncode == 1, result.stdout + result.stderr  # the test command's own failure
    out = result.stdout
    assert "10 tests: 2 failed, 5 passed, 3 skipped" in out, out
    jest_title = "FAILED math.test.js::math fails — Error: expect(received).toBe(expected)"
    assert jest_title in out
    assert "FAILED suite::inner fails — Expected values to be strictly equal:" in out
    assert out.count("(approximate window: derived from the runner's durations); while it ran:") == 2
    assert "warning" not in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(
    shutil.which("go") is None, reason="Go is not installed (its parsing is tested on a capture)"
)
def test_wsmon_run_places_go_tests_at_their_real_times(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "go", tmp_path / "go")
    out = tmp_path / "go.json"
    script = (
        f"cd {tmp_path / 'go'} && GOCACHE={tmp_path / 'gocache'} GOFLAGS=-mod=mod go test -json ./... > {out}"
    )
    result = wsmon_run(tmp_path, [out], ["sh", "-c", script], "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(result.stdout)  # stdout is the report alone: the tests' output went to stderr
    assert data["tests"]["counts"] == {"failed": 1, "passed": 4, "skipped": 1}
    [window] = data["tests"]["failed"]
    assert window["test"] == "example.com/wsclient::TestDelivery/timeout"
    assert window["approximate"] is False and 0.05 <= window["duration_s"] < 2


def test_wsmon_run_warns_in_one_line_about_unreadable_results(tmp_path: Path) -> None:
    garbage, missing = tmp_path / "garbage.txt", tmp_path / "never-written.json"
    garbage.write_text("hello\n")
    result = wsmon_run(tmp_path, [garbage, missing], [sys.executable, "-c", "pass"])
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("wsmon: warning:")]
    assert warnings == [
        f"wsmon: warning: {garbage}: not test results wsmon can read: expected JUnit XML, "
        "jest --json output, go test -json output or TAP",
        f"wsmon: warning: {missing}: no test results were written",
    ]


def test_a_window_is_approximate_when_its_events_say_so_or_its_start_is_derived() -> None:
    """Reducer and report level: the flag travels from TestEvent to the failed test's window."""
    from wsmon.core import events as ev
    from wsmon.core.reducer import fold
    from wsmon.core.testwindows import failed_test_windows
    from wsmon.render.testwindows import span_line

    def test(name: str, start: float | None, end: float, approximate: bool) -> list[ev.Event]:
        events: list[ev.Event] = []
        if start is not None:
            events.append(
                ev.TestEvent(wall=start, mono=start, name=name, phase="start", approximate=approximate)
            )
        end_event = ev.TestEvent(
            wall=end,
            mono=end,
            name=name,
            phase="end",
            outcome="failed",
            duration_s=0.5,
            approximate=approximate,
        )
        return [*events, end_event]

    state = fold(
        [*test("go", 1.0, 1.5, False), *test("jest", 2.0, 2.5, True), *test("no-start", None, 3.5, False)]
    )
    windows = {w.test: w for w in failed_test_windows(state)}
    assert {name: w.approximate for name, w in windows.items()} == {
        "go": False,
        "jest": True,
        "no-start": True,
    }
    assert span_line(windows["go"]) == "ran 0.50 s; while it ran:"
    assert span_line(windows["jest"]) == (
        "ran 0.50 s (approximate window: derived from the runner's durations); while it ran:"
    )
