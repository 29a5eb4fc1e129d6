"""JUnit XML (pytest --junitxml, jest-junit, and most other runners) into tests on the timeline.

JUnit gives each suite a start timestamp and each test case a duration, not a start time, so cases
are placed one after another from their suite's start. That is exact for a serial run and an
approximation for parallel ones; the pytest plugin's live markers, when present, are exact and win.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import NoReturn
from xml.parsers import expat

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


test_key.__test__ = False  # the tests import it, and pytest would collect a test_* function


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
        if when.tzinfo is None:
            when = when.replace(tzinfo=naive_tz) if naive_tz is not None else when.astimezone()
        return when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None  # not a time, or at the calendar's ends (year 1 in a zone east of UTC)


def _seconds(text: str | None) -> float:
    try:
        seconds = float((text or "0").replace(",", ""))
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0  # "nan", "inf", "1e400": unknown


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""


def _refuse_entities(name: str, *_rest: object) -> NoReturn:
    # No runner declares entities; a file that does is an attack (billion laughs, quadratic blow-up,
    # external files): refused at the declaration, before anything is expanded or fetched.
    raise JUnitError(f"XML entity declarations are not allowed (found <!ENTITY {name}>)")


def _parse_xml(text: str) -> ET.Element:
    """ElementTree's tree from expat driven directly, so entity declarations can be refused (the C
    XMLParser gives no hold on them; expat's own amplification limit depends on its version)."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True  # one data call a text run, not one a line or entity
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse_entities
    parser.ExternalEntityRefHandler = lambda *_args: _refuse_entities("(external)")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text, True)
        return builder.close()
    except expat.ExpatError as exc:
        raise JUnitError(f"not valid XML: {exc}") from None


def parse_junit(text: str, *, naive_tz: timezone | None = None) -> list[JUnitCase]:
    """Every test case of every suite. ``naive_tz``: the zone of timestamps without one (default local)."""
    root = _parse_xml(text)
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
                    message = _first_line(found.get("message")) or _first_line(found.text)
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
                clock = clock + duration if math.isfinite(clock + duration) else None
    if root.tag not in ("testsuite", "testsuites"):
        raise JUnitError(f"expected <testsuites> or <testsuite>, got <{root.tag}>")
    return cases
