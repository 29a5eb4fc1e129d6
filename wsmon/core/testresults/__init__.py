"""Test results from the runners people use, as tests on wsmon's timeline.

Each format is read by a module of its own, pure (handed the text, no I/O): JUnit XML
(``junit``), jest's ``--json --outputFile`` (``jest``), ``go test -json`` (``gotest``) and TAP
(``tap``, e.g. ``node --test --test-reporter=tap``). Each gives ``TestResult``s with the real start and
end when the format has them, else a window derived from durations and flagged ``approximate``:

| format | start and end |
| --- | --- |
| go test -json | real: the test's ``run`` and ``pass``/``fail``/``skip`` event times |
| jest --json | per file real; per test derived: the file's tests end at the file's end, back to back |
| JUnit XML | derived: a suite's cases back to back from its timestamp |
| TAP | derived: back to back from the test command's start (TAP has no clock) |
"""

from __future__ import annotations

import msgspec

from wsmon.core.testresults.junit import JUnitCase, JUnitError, parse_junit


class TestResultsError(ValueError):
    """The text is not test results in any format wsmon reads, or is broken; says what and where."""

    __test__ = False


class TestResult(msgspec.Struct, frozen=True):
    __test__ = False

    name: str  # unique within a run: "file::full name", "package::Test/sub", "suite::test"
    outcome: str  # passed | failed | error | skipped
    start_wall: float | None  # None: not placeable on the timeline
    duration_s: float
    message: str = ""  # the failure's first line
    approximate: bool = False  # the window is derived from durations, not given by the runner


FORMATS = ("junit", "jest", "go", "tap")
MAX_MESSAGE_CHARS = 300


def detect_format(text: str) -> str:
    """Which format ``text`` is, from its content; raises TestResultsError when it is none of them."""
    from wsmon.core.testresults import gotest, jest, tap

    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("<"):
        return "junit"
    if jest.looks_like(body):
        return "jest"
    if gotest.looks_like(body):
        return "go"
    if tap.looks_like(body):
        return "tap"
    raise TestResultsError(
        "not test results wsmon can read: expected JUnit XML, jest --json output, go test -json output or TAP"
    )


def parse_test_results(
    text: str, fmt: str | None = None, *, anchor_wall: float | None = None
) -> tuple[str, list[TestResult]]:
    """The format (detected when ``fmt`` is None) and the results in ``text``.

    ``anchor_wall``: when the test command started, for formats without a clock (TAP); without it
    their results have no start.
    """
    from wsmon.core.testresults import gotest, jest, tap

    fmt = fmt or detect_format(text)
    if fmt == "junit":
        try:
            return fmt, [_from_junit(case) for case in parse_junit(text)]
        except JUnitError as exc:
            raise TestResultsError(f"JUnit XML: {exc}") from None
    parsers = {"jest": jest.parse, "go": gotest.parse}
    if fmt in parsers:
        return fmt, parsers[fmt](text)
    if fmt == "tap":
        return fmt, tap.parse(text, anchor_wall=anchor_wall)
    raise TestResultsError(f"unknown test results format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _from_junit(case: JUnitCase) -> TestResult:
    return TestResult(
        name=case.name,
        outcome=case.outcome,
        start_wall=case.start_wall,
        duration_s=case.duration_s,
        message=case.message,
        approximate=True,
    )


def first_line(text: str) -> str:
    """The first non-blank line, trimmed: what a report shows of a failure."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:MAX_MESSAGE_CHARS]
    return ""


__all__ = ["FORMATS", "TestResult", "TestResultsError", "detect_format", "first_line", "parse_test_results"]
