"""``go test -json``: test2json's event stream, one JSON object a line.

Every event has a ``Time``; a test's ``run`` event (``cont`` for a parallel one) is its real start and
its ``pass``/``fail``/``skip`` its real end, unless that came later than ``Elapsed`` says: Go writes a
subtest's end only when its parent ends, so then the end is the start plus ``Elapsed``. A test's output
lines are kept only to give a failure its reason.

A test with subtests is reported through them; itself only when it failed and none of them did. A
package that failed without a failing test (it did not build, TestMain or a timeout panicked) is a
result of its own: from its ``fail`` event, from Go 1.24's ``build-output``/``build-fail`` events, or,
from older Go that writes build failures as plain text (when stderr went to the same file), from
``FAIL pkg [build failed]`` with the compiler's first message as its reason and no time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from wsmon.core.testresults import TestResult, TestResultsError, first_line

_ENDS = {"pass": "passed", "fail": "failed", "skip": "skipped"}
_NOISE = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP", "PASS", "FAIL")
MAX_OUTPUT_LINES = 20  # per test, for its failure's reason
ELAPSED_RESOLUTION_S = 0.01  # Go writes Elapsed in hundredths of a second


_BUILD_FAILED = re.compile(r"^FAIL\s+(\S+)\s+\[(?:build failed|setup failed)\]")


def looks_like(body: str) -> bool:
    lines = body.splitlines()[:200]
    return any(_event(line) is not None or _BUILD_FAILED.match(line) for line in lines)


@dataclass
class _Test:
    start: float | None = None
    end: float | None = None
    outcome: str = ""
    elapsed: float | None = None
    output: list[str] = field(default_factory=list)


def parse(text: str) -> list[TestResult]:
    tests: dict[tuple[str, str], _Test] = {}  # (package, test); test "" is the package itself
    plain: list[str] = []  # lines that are not events: an old Go's build messages
    read = 0
    for number, line in enumerate(text.splitlines(), 1):
        event = _event(line)
        if event is None:
            read += _plain_line(line, plain, tests)
            continue
        read += 1
        action, when = event.get("Action"), _time(event.get("Time"), number)
        package = str(event.get("Package") or str(event.get("ImportPath", "")).split(" ")[0])
        test = tests.setdefault((package, str(event.get("Test") or "")), _Test())
        if action in ("run", "start", "cont"):
            test.start = when  # a parallel test runs from its "cont"; Go's Elapsed counts from there
        elif action in _ENDS:
            test.end, test.outcome = when, _ENDS[str(action)]
            test.elapsed = _elapsed(event.get("Elapsed"))
        elif action in ("output", "build-output") and len(test.output) < MAX_OUTPUT_LINES:
            test.output.append(str(event.get("Output", "")))
    if not read:
        raise TestResultsError("go test -json: no test2json events found")
    return _results(tests)


def _plain_line(line: str, plain: list[str], tests: dict[tuple[str, str], _Test]) -> int:
    """Keep an old Go's plain build messages; a ``FAIL pkg [build failed]`` line makes them a result."""
    failed = _BUILD_FAILED.match(line)
    if failed is None:
        if len(plain) < MAX_OUTPUT_LINES:
            plain.append(line)
        return 0
    test = tests.setdefault((failed.group(1), ""), _Test())
    test.outcome, test.output = "failed", [*plain, *test.output]
    plain.clear()
    return 1


def _results(tests: dict[tuple[str, str], _Test]) -> list[TestResult]:
    failed = {key for key, test in tests.items() if test.outcome == "failed"}
    results = []
    for (package, name), test in tests.items():
        if not test.outcome:
            continue  # never ended: the stream was cut short
        inner = [key for key in tests if key[0] == package and _inside(key[1], name)]
        if inner and (test.outcome != "failed" or any(key in failed for key in inner)):
            continue  # reported through its tests or subtests, which explain its verdict
        start, approximate = test.start, False
        if start is None and test.end is not None and test.elapsed is not None:
            start, approximate = test.end - test.elapsed, True
        duration = test.elapsed or 0.0
        if start is not None and test.end is not None:
            duration = max(test.end - start, 0.0)
            if test.elapsed is not None and test.elapsed + ELAPSED_RESOLUTION_S < duration:
                duration = test.elapsed  # a subtest's end is written when its parent ends
        results.append(
            TestResult(
                name=f"{package}::{name}" if name else package,
                outcome=test.outcome if name else "error",
                start_wall=start,
                duration_s=duration,
                message=_reason(test.output) if test.outcome == "failed" else "",
                approximate=approximate,
            )
        )
    return results


def _inside(test: str, parent: str) -> bool:
    """Whether ``test`` is a subtest of ``parent`` ("" being the package, whose tests are all inside)."""
    return bool(test) and test != parent and (not parent or test.startswith(parent + "/"))


def _event(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = msgspec.json.decode(line.encode())
    except (msgspec.DecodeError, RecursionError):  # nested too deeply: not test2json's either
        return None
    return event if isinstance(event, dict) and "Action" in event else None


def _elapsed(value: Any) -> float | None:
    """``Elapsed`` in seconds, when it is a finite number (not text, 1e400 or a 400-digit integer)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _time(value: Any, number: int) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        # Go writes nanoseconds and a numeric offset; Python reads up to microseconds.
        text = value.replace("Z", "+00:00")
        head, dot, rest = text.partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            rest = rest[:digits][:6] + rest[digits:]
            text = f"{head}.{rest}"
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        raise TestResultsError(f"go test -json: line {number}: bad Time {value!r}") from None


def _reason(output: list[str]) -> str:
    for line in output:
        text = line.strip()
        if text and not text.startswith((*_NOISE, "#", "ok ")):
            return first_line(text)
    return ""
