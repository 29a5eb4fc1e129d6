"""`wsmon run -- CMD`: watch a test run, record it, judge it.

Start monitoring (and the server, if given), wait until the required targets answer, run the test
command with its output on stderr (or in a file), mark its start and end, place the tests from its
result files (JUnit XML, --test-results) on the timeline, record how the tests ended
(``TestRunEnded``: exit code, how many tests reported, whether none ran), stop, and leave the
recording for the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from wsmon.core import events as ev
from wsmon.core.limits import Limit
from wsmon.core.redact import redact_argv
from wsmon.core.state import State
from wsmon.core.testresults import TestResult, TestResultsError, parse_test_results
from wsmon.core.testresults.junit import JUnitError, parse_junit
from wsmon.session import Session
from wsmon.sources.base import now
from wsmon.sources.markers import TestMarkerSource
from wsmon.ui.feed import LiveMarkers

READY_POLL_S = 0.1
PYTEST_NO_TESTS = 5  # pytest's exit code when it collected no tests


@dataclass
class RunOutcome:
    test_exit: int | None = None  # None: the tests never started
    missing: list[str] = field(default_factory=list)  # required targets that did not answer
    junit_error: str = ""
    junit_cases: int = 0
    results_errors: list[str] = field(default_factory=list)  # --test-results files that could not be read
    results_cases: int = 0
    results_read: bool = False  # some result file was read (so its test count means something)
    interrupted: bool = False


def default_record_path(directory: Path | None = None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = (directory or Path.cwd() / "wsmon-runs") / f"{stamp}.wsmon"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.stem}-{n}.wsmon")
    return path


async def wait_until_ready(session: Session, required: list[str], timeout: float) -> list[str]:
    """The required targets that are still not up after ``timeout`` seconds (empty: all are up)."""
    deadline = time.monotonic() + timeout
    while True:
        targets = session.state.targets
        missing = [name for name in required if not (name in targets and targets[name].up)]
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(READY_POLL_S)


def is_pytest(argv: list[str]) -> bool:
    """Whether the test command is pytest (``pytest …``, ``python -m pytest …``, ``py.test``)."""
    words = [Path(word).name for word in argv[:4]]
    return any(word in ("pytest", "py.test") or word.startswith("pytest-") for word in words) or (
        "-m" in words and words.index("-m") + 1 < len(words) and words[words.index("-m") + 1] == "pytest"
    )


def place_junit(session: Session, path: Path, live: set[str]) -> int:
    """Emit start/end events for the JUnit cases the live markers did not already report.

    A suite without a timestamp places its cases from the test command's start (approximate): they
    ran, and their outcomes count, even if the file does not say when.
    """
    cases = parse_junit(path.read_text(encoding="utf-8", errors="replace"))
    wall_now, mono_now = now()
    fallback = _tests_started_wall(session)
    placed = 0
    for case in cases:
        start_wall = case.start_wall if case.start_wall is not None else fallback
        if case.name in live or start_wall is None:
            continue
        start_mono = mono_now - (wall_now - start_wall)
        end_wall, end_mono = start_wall + case.duration_s, start_mono + case.duration_s
        session.emit(
            ev.TestEvent(wall=start_wall, mono=start_mono, name=case.name, phase="start", approximate=True)
        )
        session.emit(
            ev.TestEvent(
                wall=end_wall,
                mono=end_mono,
                name=case.name,
                phase="end",
                outcome=case.outcome,
                duration_s=case.duration_s,
                message=case.message,
                approximate=True,  # JUnit gives durations; the starts are derived
            )
        )
        placed += 1
    return placed


def read_test_results(session: Session, paths: list[Path], live: set[str]) -> tuple[int, list[str]]:
    """``--test-results``: place each file's tests (format from its content); the count and errors."""
    placed, errors = 0, []
    started = _tests_started_wall(session)
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            _, results = parse_test_results(text, anchor_wall=started)
        except FileNotFoundError:
            errors.append(f"{path}: no test results were written")
            continue
        except (OSError, TestResultsError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        placed += place_results(session, results, live, fallback_wall=started)
    return placed, errors


def _tests_started_wall(session: Session) -> float | None:
    """When the test command started (its marker): where results without a clock are placed."""
    for marker in reversed(session.state.markers):
        if marker.text.startswith("tests started"):
            return marker.wall
    return None


def place_results(
    session: Session, results: list[TestResult], live: set[str], *, fallback_wall: float | None
) -> int:
    """Emit start/end events for the results the live markers did not already report.

    A result without a start (a Go package that did not build) is placed at ``fallback_wall``, flagged
    approximate; without that it is left off the timeline.
    """
    wall_now, mono_now = now()
    placed = 0
    for result in results:
        start_wall, approximate = result.start_wall, result.approximate
        if start_wall is None:
            start_wall, approximate = fallback_wall, True
        if result.name in live or start_wall is None:
            continue
        start_mono = mono_now - (wall_now - start_wall)
        common = {"name": result.name, "approximate": approximate}
        session.emit(ev.TestEvent(wall=start_wall, mono=start_mono, phase="start", **common))
        session.emit(
            ev.TestEvent(
                wall=start_wall + result.duration_s,
                mono=start_mono + result.duration_s,
                phase="end",
                outcome=result.outcome,
                duration_s=result.duration_s,
                message=result.message,
                **common,
            )
        )
        placed += 1
    return placed


class TestRun(LiveMarkers):
    """Runs the test command inside a session; also usable as the dashboard's feed (``--tui``)."""

    __test__ = False

    def __init__(
        self,
        session: Session,
        markers: TestMarkerSource,
        test_argv: list[str],
        *,
        required: list[str],
        ready_timeout: float,
        junit: Path | None,
        output: Path | None = None,
        test_results: tuple[Path, ...] = (),
    ) -> None:
        self.session = session
        self.markers = markers
        self.test_argv = test_argv
        self.required = required
        self.ready_timeout = ready_timeout
        self.junit = junit
        self.test_results = test_results  # --test-results: jest --json, go test -json, TAP, JUnit
        self.output = output  # the test output's file (--test-output, or --tui's); None: wsmon's stderr
        self.command = shlex.join(redact_argv(test_argv))  # as recorded and shown: secrets masked
        self.outcome = RunOutcome()
        self._process: asyncio.subprocess.Process | None = None
        self._interrupted = False

    # The Feed protocol, delegated to the session, so --tui can show the run.
    @property
    def state(self) -> State:
        return self.session.state

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self.session.limits

    @property
    def title(self) -> str:
        return f"run · {self.command}"

    mode = "live"

    @property
    def paused(self) -> bool:
        return self.session.paused

    @property
    def notice(self) -> str:
        return self.session.notice

    def toggle_pause(self) -> None:
        self.session.toggle_pause()

    def marker(self, text: str) -> None:
        self.session.marker(text)

    def stop(self) -> None:
        """Interrupt the run: the test command gets SIGTERM; the recording and report still happen."""
        self._interrupted = True
        proc = self._process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        else:
            self.session.stop()

    async def run(self) -> None:
        session_task = asyncio.create_task(self.session.run())
        try:
            await self._run_tests()
        finally:
            self.session.stop()
            await session_task
        self.outcome.interrupted = self._interrupted

    async def _run_tests(self) -> None:
        missing = await wait_until_ready(self.session, self.required, self.ready_timeout)
        if missing:
            self.outcome.missing = missing
            self.session.marker(f"tests not started: {', '.join(missing)} not answering")
            self._ended(None, None, f"{', '.join(missing)} did not answer")
            return
        if self._interrupted:
            return
        await asyncio.wait_for(self.markers.listening.wait(), timeout=5.0)
        env = {**os.environ, "WSMON_MARKERS": self.markers.address}
        self.session.marker(f"tests started: {self.command}")
        out = _private_append(self.output) if self.output is not None else None
        # stdout belongs to the report (one document, machine-readable); the tests write to stderr.
        sink = out if out is not None else sys.stderr.fileno()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.test_argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL if out is not None else None,
                stdout=sink,
                stderr=sink,
            )
        except OSError as exc:
            self.session.marker(f"tests could not start: {exc}")
            self.outcome.test_exit = 127
            self._ended(127, 0, f"could not start: {exc.strerror or exc}")
            if out is not None:
                out.close()
            return
        try:
            code = await self._process.wait()
        finally:
            if out is not None:
                out.close()
        self.outcome.test_exit = code
        self.session.marker(f"tests ended: exit {code}")
        await self.markers.drained()
        if self.junit is not None:
            self._read_junit(self.junit)
        if self.test_results:
            live = set(self.session.state.tests)
            placed, errors = read_test_results(self.session, list(self.test_results), live)
            self.outcome.results_cases, self.outcome.results_errors = placed, errors
            self.outcome.results_read |= len(errors) < len(self.test_results)
        ran, note = self._tests_ran(code)
        self._ended(code, ran, note)

    def _tests_ran(self, code: int) -> tuple[int | None, str]:
        """How many tests reported a result, and how "none" was known; (None, "") when nothing could tell.

        Three witnesses: pytest's exit code 5, the pytest plugin (it connected, then reported no test),
        and result files that were read and hold no test case.
        """
        seen = len(self.session.state.tests)
        if seen:
            return seen, ""
        if code == PYTEST_NO_TESTS and is_pytest(self.test_argv):
            return 0, "pytest exit 5: no tests were collected"
        if self.markers.clients:
            return 0, "the pytest plugin reported no test"
        if self.outcome.results_read:
            return 0, "the result files hold no test case"
        return None, ""

    def _ended(self, code: int | None, ran: int | None, note: str) -> None:
        wall, mono = now()
        self.session.emit(
            ev.TestRunEnded(wall=wall, mono=mono, command=self.command, exit_code=code, ran=ran, note=note)
        )

    def _read_junit(self, path: Path) -> None:
        live = set(self.session.state.tests)
        try:
            self.outcome.junit_cases = place_junit(self.session, path, live)
            self.outcome.results_read = True
        except FileNotFoundError:
            self.outcome.junit_error = f"{path}: no JUnit XML was written"
        except (OSError, JUnitError) as exc:
            self.outcome.junit_error = f"{path}: {exc}"


def _private_append(path: Path) -> BinaryIO:
    """The tests' output file, 0600 like the recording beside it: test output can carry secrets."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
