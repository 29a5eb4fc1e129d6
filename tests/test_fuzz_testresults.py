"""Fuzzing the test-result readers: JUnit XML, jest --json, go test -json and TAP.

Whatever the text, each reader either returns results that can be placed on a timeline (finite,
non-negative durations; a finite start or none; a one-line message) or raises its documented error
(``TestResultsError``, ``JUnitError`` for ``parse_junit``) with a one-line message. Never another
exception, never a hang (the module's timeout), never a runaway allocation (tracemalloc's peak).

Seeds are real outputs of the real tools (tests/fixtures/testresults), mutated: cut, spliced, bytes
flipped, values swapped for wrong types, huge numbers and non-finite durations.
"""

from __future__ import annotations

import json
import math
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fuzzing import examples, one_line
from helpers import T0
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wsmon.core.testresults import FORMATS, TestResult, TestResultsError, parse_test_results
from wsmon.core.testresults.junit import JUnitError, parse_junit

pytestmark = pytest.mark.timeout(300)

FIXTURES = Path(__file__).parent / "fixtures" / "testresults"
SEEDS = {
    "junit": (FIXTURES / "junit_pytest9.xml").read_text(),
    "jest": (FIXTURES / "jest_json_jest29.json").read_text(),
    "go": (FIXTURES / "go_test_json_go1.19.txt").read_text(),
    "go-build": (FIXTURES / "go_build_failed_go1.19.txt").read_text(),
    "tap": (FIXTURES / "node_tap_node20.txt").read_text(),
}
OUTCOMES = {"passed", "failed", "error", "skipped"}
MAX_PEAK_BYTES = 64 * 1024 * 1024


def check_results(results: list[TestResult]) -> None:
    for result in results:
        assert isinstance(result.name, str) and result.outcome in OUTCOMES, result
        assert math.isfinite(result.duration_s) and result.duration_s >= 0, result
        assert result.start_wall is None or math.isfinite(result.start_wall), result
        assert "\n" not in result.message and "\r" not in result.message, result


def read(text: str, fmt: str | None = None) -> list[TestResult] | None:
    """The results, or None after checking the error is the documented one, in one line."""
    try:
        _, results = parse_test_results(text, fmt, anchor_wall=T0)
    except TestResultsError as exc:
        assert one_line(str(exc)), repr(str(exc))
        return None
    check_results(results)
    return results


def read_junit(text: str) -> None:
    try:
        cases = parse_junit(text)
    except JUnitError as exc:
        assert one_line(str(exc)), repr(str(exc))
        return
    for case in cases:
        assert math.isfinite(case.duration_s) and case.duration_s >= 0, case
        assert case.start_wall is None or math.isfinite(case.start_wall), case
        assert "\n" not in case.message, case


def test_every_seed_reads_as_its_format() -> None:
    for name, text in SEEDS.items():
        results = read(text)
        assert results, name


# --- arbitrary input ----------------------------------------------------------------------------

formats = st.sampled_from([None, *FORMATS])


@given(text=st.text(), fmt=formats)
def test_arbitrary_text(text: str, fmt: str | None) -> None:
    read(text, fmt)


@given(data=st.binary(), fmt=formats)
def test_arbitrary_bytes_read_as_wsmon_reads_files(data: bytes, fmt: str | None) -> None:
    # wsmon run reads result files with errors="replace": bad UTF-8 becomes U+FFFD, never an error.
    read(data.decode("utf-8", errors="replace"), fmt)


# --- mutated real outputs -----------------------------------------------------------------------

junk = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "\x00", "\ufffd", "\x1b[31m", "NaN", "nan", "inf", "-inf", "1e400", "-1", "1" + "0" * 400,
            "9999-12-31T23:59:59", "0001-01-01T00:00:00", "<", "&", "]]>", '"', "{", "[", "\n", "    ",
            "ok 1 -", "not ok", "1..1", "---", "...", "duration_ms: nan", "duration_ms: 1e400",
            '"duration":1e400', '"Elapsed":1e308', '"Time":"0001-01-01T00:00:00Z"', 'time="inf"',
            'timestamp="0000-00-00"', "&lol;", "<![CDATA[", "<!--",
        ]
    ),
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    seed = draw(st.sampled_from(sorted(SEEDS)))
    text = SEEDS[seed]
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 200)))
        kind = draw(st.sampled_from(["cut", "delete", "insert", "replace", "duplicate", "flip"]))
        if kind == "cut":
            text = text[:start]
        elif kind == "delete":
            text = text[:start] + text[end:]
        elif kind == "insert":
            text = text[:start] + draw(junk) + text[start:]
        elif kind == "replace":
            text = text[:start] + draw(junk) + text[end:]
        elif kind == "duplicate":
            text = text[:end] + text[start:end] * draw(st.integers(1, 50)) + text[end:]
        else:
            data = bytearray(text.encode())
            if data:
                data[start % len(data)] ^= 1 << draw(st.integers(0, 7))
            text = data.decode("utf-8", errors="replace")
    return seed, text


@given(case=mutated(), detect=st.booleans())
def test_mutated_real_outputs(case: tuple[str, str], detect: bool) -> None:
    seed, text = case
    fmt = None if detect else {"go-build": "go"}.get(seed, seed)
    read(text, fmt)


@given(case=mutated())
def test_mutated_junit_through_parse_junit(case: tuple[str, str]) -> None:
    read_junit(case[1])


@given(cut=st.integers(0, len(SEEDS["junit"])))
def test_junit_cut_anywhere(cut: int) -> None:
    read_junit(SEEDS["junit"][:cut])


# --- wrong types, huge numbers, non-finite durations in the JSON formats -------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([10**400, -(10**400), 2**63, 2**64 - 1, 0, -1]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e308, -1e308, 5e-324]),
        st.text(max_size=30),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    holder = copy
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return copy


def dumps(document: Any) -> str:
    # Python's json writes integers of any size, and Infinity/NaN for the non-finite floats some
    # tools emit, so the readers meet what a sloppy producer writes.
    return json.dumps(document)


JEST = json.loads(SEEDS["jest"])
JEST_PATHS = paths(JEST)


@given(
    swaps=st.lists(st.tuples(st.sampled_from(JEST_PATHS), json_values), min_size=1, max_size=3),
    special=st.sampled_from([None, math.inf, -math.inf, math.nan]),
)
@example(swaps=[(("testResults", 0, "assertionResults"), 1)], special=None)
@example(swaps=[(("testResults", 0, "assertionResults", 1, "failureMessages"), {"a": 1})], special=None)
@example(swaps=[(("testResults", 0, "assertionResults", 0, "duration"), 10**400)], special=None)
@example(swaps=[(("testResults", 0, "endTime"), 10**400)], special=None)
@example(swaps=[(("testResults", 0, "assertionResults", 0, "duration"), 1e308)], special=None)
def test_jest_with_wrong_types_and_huge_numbers(
    swaps: list[tuple[tuple[Any, ...], Any]], special: float | None
) -> None:
    document = JEST
    for path, value in swaps:
        try:
            document = replaced(document, path, special if special is not None and path else value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier swap removed the path
    read(dumps(document), "jest")
    read(dumps(document))


go_events = st.fixed_dictionaries(
    {"Action": st.sampled_from(["run", "cont", "pass", "fail", "skip", "output", "build-output", "x"])},
    optional={
        "Time": st.one_of(
            st.sampled_from(
                [
                    "2024-01-01T00:00:00.123456789Z",
                    "0001-01-01T00:00:00Z",
                    "0001-01-01T00:00:00+14:00",
                    "9999-12-31T23:59:59-14:00",
                    "2024-01-01T00:00:00.000000000+01:00",
                ]
            ),
            json_values,
        ),
        "Package": st.one_of(st.sampled_from(["p", "p/q"]), json_values),
        "Test": st.one_of(st.sampled_from(["T", "T/a", "T/a/b", ""]), json_values),
        "Elapsed": st.one_of(st.sampled_from([math.inf, math.nan, -1.0, 1e308, 10**400]), json_values),
        "Output": json_values,
    },
)


@given(st.lists(go_events, min_size=1, max_size=12))
@example([{"Action": "pass", "Test": "T", "Elapsed": math.inf}])
@example(
    [{"Action": "pass", "Test": "T", "Elapsed": 1e308}, {"Action": "pass", "Test": "U", "Elapsed": math.nan}]
)
@example([{"Action": "run", "Test": "T", "Time": "0001-01-01T00:00:00+14:00"}])
@example([{"Action": "pass", "Test": "T", "Elapsed": 10**400}])
def test_go_events_with_wrong_types_and_non_finite_times(events: list[dict[str, Any]]) -> None:
    read("\n".join(dumps(event) for event in events), "go")


tap_lines = st.lists(
    st.tuples(
        st.integers(0, 6),
        st.one_of(
            st.sampled_from(
                [
                    "ok 1 - a", "not ok 2 - b", "ok 3 - c # SKIP why", "not ok 4 # TODO", "1..4",
                    "# Subtest: s", "---", "...", "duration_ms: 12.5", "duration_ms: nan",
                    "duration_ms: inf", "duration_ms: -inf", "duration_ms: 1e400", "duration_ms: 1e308",
                    "error: |-", "error: 'boom'", "message: \"x\"", "TAP version 14", "Bail out!",
                ]
            ),
            st.text(max_size=20),
        ),
    ),
    max_size=30,
)  # fmt: skip


@given(tap_lines)
@example([(0, "TAP version 13"), (0, "ok 1 - a"), (1, "---"), (1, "duration_ms: nan"), (1, "...")])
@example([(0, "ok 1 - a"), (1, "---"), (1, "duration_ms: 1e400"), (1, "..."), (0, "1..1")])
@example(
    [
        *[(1, "ok 1 - a"), (2, "---"), (2, "duration_ms: 1e308"), (2, "..."), (1, "ok 2 - b")],
        *[(2, "---"), (2, "duration_ms: 1e308"), (2, "..."), (0, "ok 1 - s"), (0, "1..1")],
    ]
)
def test_tap_lines_with_odd_indents_and_durations(lines: list[tuple[int, str]]) -> None:
    text = "\n".join("    " * depth + line for depth, line in lines)
    read(text, "tap")
    read(text)


# --- depth, size and entities: bounded time and memory -------------------------------------------


def bounded(read_it: Any, text: str, *, seconds: float = 20.0) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        read_it(text)
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"{elapsed:.1f} s"
    assert peak < MAX_PEAK_BYTES + 40 * len(text), f"peak {peak / 1e6:.0f} MB for {len(text)} chars"


DEPTH = 100_000


@pytest.mark.parametrize(
    "fmt, text",
    [
        ("junit", "<testsuites>" + "<testsuite>" * DEPTH + "</testsuite>" * DEPTH + "</testsuites>"),
        ("junit", "<testsuite>" + "<x>" * DEPTH + "</x>" * DEPTH + "<testcase/></testsuite>"),
        ("jest", '{"numTotalTests":1,"testResults":' + "[" * DEPTH + "]" * DEPTH + "}"),
        ("jest", '{"numTotalTests":1,"testResults":[' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "]}"),
        ("go", '{"Action":"output","Output":' + "[" * DEPTH + "]" * DEPTH + "}"),
        ("tap", "\n".join("    " * depth + f"ok {depth} - t" for depth in range(3_000, -1, -1))),
        ("tap", "TAP version 13\n" + "ok 1 - a\n" * 50_000 + "1..50000"),
        ("go", '{"Action":"output","Test":"T","Output":"x"}\n' * 50_000),
    ],
    ids=["junit-suites", "junit-elements", "jest-arrays", "jest-objects", "go", "tap", "tap-wide", "go-wide"],
)
def test_deep_nesting_and_many_lines_are_read_or_refused_in_bounded_time_and_memory(
    fmt: str, text: str
) -> None:
    bounded(lambda t: read(t, fmt), text, seconds=60.0)


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">' for i in range(1, 10))
    + ']><testsuite><testcase name="&lol9;"><failure message="&lol9;">&lol9;</failure></testcase></testsuite>'
)
QUADRATIC = (
    '<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "'
    + "x" * 50_000
    + '">]><testsuite><testcase name="t"><failure>'
    + "&a;" * 50_000
    + "</failure></testcase></testsuite>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    '<testsuite><testcase name="t"><failure>&e;</failure></testcase></testsuite>'
)
PARAMETER = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    '<testsuite><testcase name="t"/></testsuite>'
)


@pytest.mark.parametrize(
    "text", [LAUGHS, QUADRATIC, EXTERNAL, PARAMETER], ids=["laughs", "quadratic", "external", "parameter"]
)
def test_xml_entities_are_refused_not_expanded(text: str) -> None:
    def refused(t: str) -> None:
        with pytest.raises(JUnitError) as caught:
            parse_junit(t)
        message = str(caught.value)
        assert one_line(message) and "entit" in message, message
        with pytest.raises(TestResultsError):
            parse_test_results(t)

    bounded(refused, text, seconds=10.0)


def test_a_doctype_without_entities_is_still_read() -> None:
    text = '<?xml version="1.0"?><!DOCTYPE testsuite><testsuite><testcase name="t" time="1"/></testsuite>'
    assert [case.name for case in parse_junit(text)] == ["t"]


@settings(max_examples=examples(0.25))
@given(
    name=st.text(),
    message=st.text(),
    duration=st.sampled_from(["nan", "inf", "-inf", "1e400", "1e308", "-0"]),
)
@example(name="t", message="first\nsecond", duration="1")
@example(name="t", message="", duration="nan")
def test_junit_attributes_with_any_text_and_odd_durations(name: str, message: str, duration: str) -> None:
    from xml.sax.saxutils import quoteattr

    text = (
        '<testsuite timestamp="2024-01-01T00:00:00Z">'
        f"<testcase name={quoteattr(name)} time={quoteattr(duration)}>"
        f"<failure message={quoteattr(message)}/></testcase>"
        f'<testcase name="next" time="{duration}"/></testsuite>'
    )
    read_junit(text)
    read(text)


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
)
def test_junit_timestamps_at_the_ends_of_the_calendar(stamp: str) -> None:
    read_junit(
        f'<testsuite timestamp="{stamp}"><testcase name="t" time="1e308"/>'
        '<testcase name="u" time="1e308"/></testsuite>'
    )
