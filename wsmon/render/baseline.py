"""The baseline comparison (``wsmon.core.baseline.BaselineComparison``) as ``wsmon report --baseline``
prints it: alone (``render``) or after the report as one document (``render_with_report``)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import msgspec

from wsmon.core.baseline import BaselineComparison
from wsmon.core.report import Report
from wsmon.render import report as report_formats
from wsmon.render.cells import CHANGE_HEADINGS, change_cells
from wsmon.render.document import Document, Table, to_markdown, to_text
from wsmon.render.junit import baseline_suite, render_baseline_junit, xml_document


def headline(comparison: BaselineComparison) -> str:
    regressed = [r.figure for r in comparison.regressions]
    named = f" — regressed: {', '.join(regressed)}" if regressed else ""
    return (
        f"wsmon baseline: {comparison.verdict.upper()}{named} (against {comparison.old_source or 'baseline'})"
    )


def comparison_document(comparison: BaselineComparison) -> Document:
    table = Table(CHANGE_HEADINGS, [change_cells(r) for r in comparison.figures])
    return Document(title=headline(comparison), preface=[table])


def render_text(comparison: BaselineComparison) -> str:
    return to_text(comparison_document(comparison))


def render_markdown(comparison: BaselineComparison) -> str:
    return to_markdown(comparison_document(comparison))


def render_json(comparison: BaselineComparison) -> str:
    return msgspec.json.format(
        msgspec.json.encode(report_formats.finite(msgspec.to_builtins(comparison))), indent=2
    ).decode()


def render(comparison: BaselineComparison, fmt: str) -> str:
    """The comparison alone: text, markdown, json or junit."""
    renderers = {"json": render_json, "markdown": render_markdown, "junit": render_baseline_junit}
    return renderers.get(fmt, render_text)(comparison)


def render_with_report(report: Report, comparison: BaselineComparison, fmt: str) -> str:
    """What ``wsmon report NEW --baseline OLD`` prints: the report, then the comparison, as one document.

    json: the report's object with a ``baseline`` key added (the report shape allows new keys);
    junit: one <testsuites> holding the limits' suite and the baseline's suite.
    """
    rendered = report_formats.render(report, fmt)
    if fmt == "json":
        data = json.loads(rendered)
        data["baseline"] = json.loads(render_json(comparison))
        return msgspec.json.format(msgspec.json.encode(data), indent=2).decode()
    if fmt == "junit":
        root = ET.fromstring(rendered)
        root.append(baseline_suite(comparison))
        tests = sum(int(suite.get("tests", "0")) for suite in root)
        failures = sum(int(suite.get("failures", "0")) for suite in root)
        root.set("tests", str(tests))
        root.set("failures", str(failures))
        return xml_document(root)
    return rendered + "\n" + render(comparison, fmt)


__all__ = ["headline", "render", "render_json", "render_markdown", "render_text", "render_with_report"]
