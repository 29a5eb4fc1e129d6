"""JUnit XML (pytest --junitxml, jest-junit, and most other runners) into tests on the timeline.

JUnit gives each suite a start timestamp and each test case a duration, not a start time, so cases
are placed one after another from their suite's start. That is exact for a serial run and an
approximation for parallel ones; the pytest plugin's live markers, when present, are exact and win.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import msgspec


class JUnitError(ValueError):
    pass


class JUnitCase(msgspec.Struct, frozen=True):
    name: str  # "classname::name", the key the pytest plugin also uses
    outcome: str  # passed | failed | error | skipped
    start_wall: float | None
    duration_s: float
    message: str = ""


def test_key(classname: str, name: str) -> str:
    return f"{classname}::{name}" if classname else name


test_key.__test__ = False  # type: ignore[attr-defined]


def nodeid_key(nodeid: str) -> str:
    """A pytest node id in the form pytest's own JUnit XML gives it (classname::name)."""
    parts = nodeid.split("::")
    parts[0] = re.sub(r"\.py$", "", parts[0].replace("/", "."))
    return test_key(".".join(parts[:-1]), parts[-1])


def _timestamp(text: str | None, naive_tz: timezone | None) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=naive_tz) if naive_tz is not None else when.astimezone()
    return when.timestamp()


def _seconds(text: str | None) -> float:
    try:
        return max(float((text or "0").replace(",", "")), 0.0)
    except ValueError:
        return 0.0


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""


def parse_junit(text: str, *, naive_tz: timezone | None = None) -> list[JUnitCase]:
    """Every test case of every suite. ``naive_tz``: the zone of timestamps without one (default local)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise JUnitError(f"not valid XML: {exc}") from None
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    cases: list[JUnitCase] = []
    for suite in suites:
        clock = _timestamp(suite.get("timestamp"), naive_tz)
        for case in suite.findall("testcase"):
            duration = _seconds(case.get("time"))
            outcome, message = "passed", ""
            for tag, verdict in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
                found = case.find(tag)
                if found is not None:
                    outcome = verdict
                    message = found.get("message") or _first_line(found.text)
                    break
            cases.append(
                JUnitCase(
                    name=test_key(case.get("classname", ""), case.get("name", "?")),
                    outcome=outcome,
                    start_wall=clock,
                    duration_s=duration,
                    message=message,
                )
            )
            if clock is not None:
                clock += duration
    if root.tag not in ("testsuite", "testsuites"):
        raise JUnitError(f"expected <testsuites> or <testsuite>, got <{root.tag}>")
    return cases
