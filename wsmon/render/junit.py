"""JUnit XML, so a CI dashboard lists a breached limit or a regressed figure as a failed test.

The report: each limit a test case in the suite "wsmon limits" (breach → <failure>; no data and too
few to judge → <skipped>; ok, warn and capacity targets pass and say why in <system-out>), and the
watched tests, when recorded, as a suite of their own. The baseline comparison: each compared
figure a test case in "wsmon baseline" (regression → <failure>, no data → <skipped>).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from wsmon.core.baseline import NO_DATA as NOT_COMPARED
from wsmon.core.baseline import REGRESSION, BaselineComparison
from wsmon.core.figures import NO_DATA, Figure
from wsmon.core.limits import BREACH, TAP_SATURATED, TOO_FEW
from wsmon.core.report import Report
from wsmon.core.testrun import FAILED_OUTCOMES, Tests
from wsmon.render.cells import CHANGE_HEADINGS, FIGURE_HEADINGS, change_cells, figure_cells

JUNIT_SUITE = "wsmon limits"
JUNIT_CLASS = "wsmon.limits"
BASELINE_SUITE = "wsmon baseline"
BASELINE_CLASS = "wsmon.baseline"


def render_junit(report: Report) -> str:
    """Capacity targets never fail, as they never fail the exit code."""
    failures = sum(1 for f in report.figures if f.verdict == BREACH)
    skipped = sum(1 for f in report.figures if f.verdict in (NO_DATA, TOO_FEW, TAP_SATURATED))
    counts = {"tests": str(len(report.figures)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "wsmon", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": JUNIT_SUITE,
            **counts,
            "skipped": str(skipped),
            "time": f"{report.session.duration_s:.3f}",
            **({"timestamp": report.session.started} if report.session.started else {}),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("source", report.session.source),
        ("command", report.session.command or ""),
        ("wsmon_version", report.session.wsmon_version or ""),
        ("verdict", report.verdict),
    ):
        if value:
            ET.SubElement(properties, "property", {"name": name, "value": value})
    for figure in report.figures:
        case = ET.SubElement(suite, "testcase", {"classname": JUNIT_CLASS, "name": figure.label, "time": "0"})
        summary = _figure_summary(figure)
        if figure.verdict == BREACH:
            failure = ET.SubElement(case, "failure", {"message": summary, "type": "breach"})
            failure.text = _figure_detail(figure)
        elif figure.verdict == NO_DATA:
            ET.SubElement(case, "skipped", {"message": f"{figure.label}: no data"})
        elif figure.verdict in (TOO_FEW, TAP_SATURATED):
            ET.SubElement(case, "skipped", {"message": summary})
        else:
            ET.SubElement(case, "system-out").text = f"{figure.verdict}: {summary}"
    if report.tests is not None:
        _tests_suite(root, report.tests)
    return xml_document(root)


def _tests_suite(root: ET.Element, tests: Tests) -> None:
    """The watched tests as their own suite, so a JUnit reader of the report sees them too."""
    failures = sum(1 for t in tests.tests if t.outcome == "failed")
    errors = sum(1 for t in tests.tests if t.outcome == "error")
    skipped = sum(1 for t in tests.tests if t.outcome == "skipped")
    counts = {"tests": str(len(tests.tests)), "failures": str(failures), "errors": str(errors)}
    suite = ET.SubElement(root, "testsuite", {"name": "tests", **counts, "skipped": str(skipped)})
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("command", tests.command or ""),
        ("exit_code", "" if tests.exit_code is None else str(tests.exit_code)),
        ("verdict", tests.verdict),
        ("reason", tests.reason),
    ):
        if value:
            ET.SubElement(properties, "property", {"name": name, "value": value})
    for test in tests.tests:
        classname, _, name = test.name.rpartition("::")
        attrs = {"classname": classname, "name": name, "time": f"{test.duration_s or 0:.3f}"}
        case = ET.SubElement(suite, "testcase", attrs | ({"timestamp": test.start} if test.start else {}))
        if test.outcome in FAILED_OUTCOMES:
            ET.SubElement(case, "failure" if test.outcome == "failed" else "error", {"message": test.message})
        elif test.outcome == "skipped":
            ET.SubElement(case, "skipped", {"message": test.message})
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(int(root.get(attr, "0")) + int(counts[attr])))


def _figure_summary(f: Figure) -> str:
    observed = figure_cells(f)[2]
    text = f"{f.label} {observed} (limit {f.limit_text})"
    if f.kind == "capacity":
        text = f"capacity target {f.verdict}: {text}"
    return f"{text}; {f.note}" if f.note else text


def _figure_detail(f: Figure) -> str:
    cells = dict(zip(FIGURE_HEADINGS, figure_cells(f), strict=True))
    return "\n".join(f"{key}: {value}" for key, value in cells.items() if value)


def baseline_suite(comparison: BaselineComparison) -> ET.Element:
    regressions = len(comparison.regressions)
    skipped = sum(1 for r in comparison.figures if r.verdict == NOT_COMPARED)
    suite = ET.Element(
        "testsuite",
        {
            "name": BASELINE_SUITE,
            "tests": str(len(comparison.figures)),
            "failures": str(regressions),
            "errors": "0",
            "skipped": str(skipped),
        },
    )
    for r in comparison.figures:
        case = ET.SubElement(suite, "testcase", {"classname": BASELINE_CLASS, "name": r.label, "time": "0"})
        cells = dict(zip(CHANGE_HEADINGS, change_cells(r), strict=True))
        summary = f"{r.label} {cells['Baseline']} → {cells['New']} ({cells['Relative'] or cells['Change']})"
        if r.verdict == REGRESSION:
            failure = ET.SubElement(
                case, "failure", {"message": f"{summary}, beyond {cells['Tolerance']}", "type": "regression"}
            )
            failure.text = "\n".join(f"{k}: {v}" for k, v in cells.items() if v)
        elif r.verdict == NOT_COMPARED:
            ET.SubElement(case, "skipped", {"message": f"{r.label}: {r.note or 'no data'}"})
        else:
            ET.SubElement(case, "system-out").text = f"{r.verdict}: {summary}"
    return suite


def render_baseline_junit(comparison: BaselineComparison) -> str:
    root = ET.Element("testsuites", {"name": "wsmon"})
    root.append(baseline_suite(comparison))
    return xml_document(root)


def xml_document(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
