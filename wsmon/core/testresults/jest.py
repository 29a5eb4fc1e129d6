"""jest's ``--json --outputFile=FILE``: per file a real start and end, per test a status and duration.

jest runs a file's tests one after another, after loading the file (which can take most of the file's
time), so each test is placed so that the file's tests end at the file's end, back to back: derived,
hence approximate. A file that failed to run at all (a syntax error) is one result over the file's
real window.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from wsmon.core.testresults import TestResult, TestResultsError, first_line

_OUTCOMES = {"passed": "passed", "failed": "failed"}  # pending, skipped, todo, disabled: skipped
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def looks_like(body: str) -> bool:
    if not body.startswith("{"):
        return False
    head = body[:4000]
    return '"testResults"' in body and ('"numTotalTests"' in head or '"numTotalTestSuites"' in head)


def parse(text: str) -> list[TestResult]:
    try:
        report = msgspec.json.decode(text.encode())
    except msgspec.DecodeError as exc:
        raise TestResultsError(f"jest --json: not valid JSON: {exc}") from None
    except RecursionError:
        raise TestResultsError("jest --json: nested too deeply to be jest's output") from None
    files = report.get("testResults") if isinstance(report, dict) else None
    if not isinstance(files, list):
        raise TestResultsError('jest --json: expected an object with a "testResults" list')
    names = [str(f.get("name", "")) for f in files if isinstance(f, dict)]
    root = _common_dir(names)
    results: list[TestResult] = []
    for index, file in enumerate(files):
        if not isinstance(file, dict):
            raise TestResultsError(f"jest --json: testResults[{index}] is not an object")
        if not isinstance(file.get("assertionResults") or [], list):
            raise TestResultsError(f"jest --json: testResults[{index}].assertionResults is not a list")
        results.extend(_file_results(file, _relative(str(file.get("name", f"file {index}")), root)))
    return results


def _file_results(file: dict[str, Any], name: str) -> list[TestResult]:
    start, end = _ms(file.get("startTime")), _ms(file.get("endTime"))
    cases = [c for c in file.get("assertionResults") or [] if isinstance(c, dict)]
    if not cases:
        if file.get("status") != "failed":
            return []
        # The file itself failed (it did not parse, a hook threw): one result over its real window.
        message = first_line(_ANSI.sub("", str(file.get("message") or file.get("failureMessage") or "")))
        message = message.lstrip("● ").strip() or "test file failed to run"
        duration = max(end - start, 0.0) if start is not None and end is not None else 0.0
        return [TestResult(name, "error", start_wall=start, duration_s=duration, message=message)]
    durations = [max(_number(c.get("duration")) / 1000.0, 0.0) for c in cases]
    # Back to back, ending at the file's end; not before the file's start.
    clock = end if end is not None else (start + sum(durations) if start is not None else None)
    starts: list[float | None] = []
    for duration in reversed(durations):
        if clock is not None:
            clock -= duration
            if start is not None:
                clock = max(clock, start)
            if not math.isfinite(clock):
                clock = None  # absurd durations: the tests keep their verdicts, not a place in time
        starts.append(clock)
    starts.reverse()
    return [
        TestResult(
            name=f"{name}::{case.get('fullName') or case.get('title') or '?'}",
            outcome=_OUTCOMES.get(str(case.get("status")), "skipped"),
            start_wall=case_start,
            duration_s=duration,
            message=_failure(case),
            approximate=True,
        )
        for case, case_start, duration in zip(cases, starts, durations, strict=True)
    ]


def _failure(case: dict[str, Any]) -> str:
    messages = case.get("failureMessages") or []
    if not messages:
        return ""
    first = messages[0] if isinstance(messages, list) else messages
    return first_line(_ANSI.sub("", str(first)))


def _ms(value: Any) -> float | None:
    number = _number(value)
    return number / 1000.0 if number > 0 else None


def _number(value: Any) -> float:
    """A JSON number as a finite float; anything else (text, null, 1e400, a 400-digit integer) is 0."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _common_dir(paths: list[str]) -> str:
    """The directory every test file lies under, so names read "t/math.test.js::…"."""
    dirs = [p.replace("\\", "/").rsplit("/", 1)[0] + "/" for p in paths if "/" in p.replace("\\", "/")]
    if not dirs:
        return ""
    common = dirs[0]
    for other in dirs[1:]:
        while not other.startswith(common):
            common = common[: common.rstrip("/").rfind("/") + 1]
    return common


def _relative(path: str, root: str) -> str:
    path = path.replace("\\", "/")
    return path[len(root) :] if root and path.startswith(root) else path
