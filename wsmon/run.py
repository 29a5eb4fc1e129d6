"""`wsmon run -- CMD`: watch a test run, record it, judge it.

Start monitoring (and the server, if given), wait until the required targets answer, run the test
command with its output on stderr (or in a file), mark its start and end, place the tests from its
result files (JUnit XML, …) on the timeline, record how the tests ended (``TestRunEnded``: exit code,
how many tests reported, whether none ran), stop, and leave the recording for the report.

Result readers: ``RESULT_READERS`` maps a result-file kind to a parser of its text into
``JUnitCase``s; a new runner's format plugs in there and is given as ``ResultFile(kind, path)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsmon.core import events as ev
from wsmon.core.junit import JUnitCase, parse_junit
from wsmon.core.redact import redact_argv
from wsmon.session import Session
from wsmon.sources.base import now
from wsmon.sources.markers import TestMarkerSource

READY_POLL_S = 0.1
PYTEST_NO_TESTS = 5  # pytest's exit code when it collected no tests

ResultReader = Callable[[str], list[JUnitCase]]
RESULT_READERS: dict[str, ResultReader] = {"junit": parse_junit}


@dataclass(frozen=True)
class ResultFile:
    kind: str  # a key of RESULT_READERS
    path: Path


@dataclass
class RunOutcome:
    test_exit: int | None = None  # None: the tests never started
    missing: list[str] = field(default_factory=list)  # required targets that did not answer
    junit_error: str = ""  # the first result file that could not be read, and why
    junit_cases: int = 0  # tests placed from result files
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


def is_pytest(argv: Sequence[str]) -> bool:
    """Whether the test command is pytest (``pytest …``, ``python -m pytest …``, ``py.test``)."""
    words = [Path(word).name for word in argv[:4]]
    return any(word in ("pytest", "py.test") or word.startswith("pytest-") for word in words) or (
        "-m" in words and words.index("-m") + 1 < len(words) and words[words.index("-m") + 1] == "pytest"
    )


def place_junit(session: Session, path: Path, live: set[str]) -> int:
    """Emit start/end events for the JUnit cases the live markers did not already report."""
    return place_cases(session, read_results(ResultFile("junit", path)), live)


def read_results(result: ResultFile) -> list[JUnitCase]:
    return RESULT_READERS[result.kind](result.path.read_text(encoding="utf-8", errors="replace"))


def place_cases(session: Session, cases: Sequence[JUnitCase], live: set[str]) -> int:
    """Emit start/end events for the cases the live markers did not already report."""
    wall_now, mono_now = now()
    placed = 0
    for case in cases:
        if case.name in live:
            continue
        if case.start_wall is None:  # no timestamp: known to have ended by now, not when it ran
            session.emit(
                ev.TestEvent(
                    wall=wall_now,
                    mono=mono_now,
                    name=case.name,
                    phase="end",
                    outcome=case.outcome,
                    duration_s=case.duration_s,
                    message=case.message,
                )
            )
            placed += 1
            continue
        start_mono = mono_now - (wall_now - case.start_wall)
        end_wall, end_mono = case.start_wall + case.duration_s, start_mono + case.duration_s
        session.emit(ev.TestEvent(wall=case.start_wall, mono=start_mono, name=case.name, phase="start"))
        session.emit(
            ev.TestEvent(
                wall=end_wall,
                mono=end_mono,
                name=case.name,
                phase="end",
                outcome=case.outcome,
                duration_s=case.duration_s,
                message=case.message,
            )
        )
        placed += 1
    return placed


class TestRun:
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
        results: Sequence[ResultFile] = (),
    ) -> None:
        self.session = session
        self.markers = markers
        self.test_argv = test_argv
        self.required = required
        self.ready_timeout = ready_timeout
        self.results = [*([ResultFile("junit", junit)] if junit is not None else []), *results]
        self.output = output  # the test output's file (--test-output, or --tui's); None: wsmon's stderr
        self.command = shlex.join(redact_argv(test_argv))
        self.outcome = RunOutcome()
        self._process: asyncio.subprocess.Process | None = None
        self._interrupted = False

    # The Feed protocol, delegated to the session, so --tui can show the run.
    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.session.state

    @property
    def limits(self):  # type: ignore[no-untyped-def]
        return self.session.limits

    @property
    def title(self) -> str:
        return f"run · {self.command}"

    mode = "live"

    @property
    def paused(self) -> bool:
        return self.session.paused

    def toggle_pause(self) -> None:
        self.session.toggle_pause()

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
        out = self.output.open("ab") if self.output is not None else None
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
        for result in self.results:
            self._read_results(result)
        ran, note = self._tests_ran(code)
        self._ended(code, ran, note)

    def _read_results(self, result: ResultFile) -> None:
        live = set(self.session.state.tests)
        try:
            self.outcome.junit_cases += place_cases(self.session, read_results(result), live)
            self.outcome.results_read = True
        except FileNotFoundError:
            self._result_error(f"{result.path}: no {result.kind} file was written")
        except (OSError, ValueError) as exc:  # JUnitError and the other readers' errors are ValueErrors
            self._result_error(f"{result.path}: {exc}")

    def _result_error(self, error: str) -> None:
        self.outcome.junit_error = self.outcome.junit_error or error

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
