"""A fleet recording's report: the combined report, then a section judging each node on its own
figures (core.fleetreport). JSON adds ``nodes``: each node's report in the same shape (docs/report.md)."""

from __future__ import annotations

import dataclasses

import msgspec

from wsmon.core.figures import Figure
from wsmon.core.fleetreport import NodeReport
from wsmon.core.report import Report
from wsmon.render.document import Section, Table, to_markdown, to_text
from wsmon.render.report import finite, render, report_document

NODE_HEADINGS = (
    "Node",
    "Verdict",
    "Opened",
    "Failed to connect",
    "Closes",
    "Delivered",
    "Delivery failed",
    "CPU peak",
    "RSS peak",
    "Downs",
    "Lost",
    "Breached",
)


def fleet_exit_code(report: Report, nodes: list[NodeReport]) -> int:
    """A breach anywhere, the fleet's or one node's, is the run's."""
    return max([report.exit_code, *(node.report.exit_code for node in nodes)])


def render_fleet(report: Report, nodes: list[NodeReport], fmt: str) -> str:
    if not nodes or fmt == "junit":
        return render(report, fmt)
    if fmt == "json":
        data = finite(msgspec.to_builtins(report))
        data["nodes"] = [finite(msgspec.to_builtins(node)) for node in nodes]
        return msgspec.json.format(msgspec.json.encode(data), indent=2).decode()
    document = report_document(report)
    document = dataclasses.replace(document, sections=[*document.sections, nodes_section(nodes)])
    return to_markdown(document) if fmt == "markdown" else to_text(document)


def nodes_section(nodes: list[NodeReport]) -> Section:
    rows = [_node_row(node) for node in nodes]
    breached = sum(1 for node in nodes if node.report.breached)
    return Section(
        "Nodes",
        summary=f"{len(nodes)} nodes, each judged on its own figures; {breached} breached",
        blocks=[Table(NODE_HEADINGS, rows)],
    )


def _node_row(node: NodeReport) -> list[str]:
    report = node.report
    figures = {figure.figure: figure for figure in report.figures}
    target = next((t for t in report.targets if t.name == node.node), None)
    lost = f"{node.lost_events} events" + (f", {node.lost_entries} batches" if node.lost_entries else "")
    return [
        node.node,
        report.verdict,
        str(report.connections.opened_total),
        str(report.connections.connect_failed),
        ", ".join(f"{row.code}×{row.count}" for row in report.close_codes.codes) or "—",
        str(report.delivery.delivered),
        str(report.delivery.failed),
        _peak(figures.get("cpu_percent"), "%"),
        _peak(figures.get("rss_mib"), "MiB"),
        str(target.down_count) if target is not None else "—",
        lost,
        ", ".join(f.figure for f in report.figures if f.verdict == "breach") or "—",
    ]


def _peak(figure: Figure | None, unit: str) -> str:
    """A process figure's peak, or "no data" when the node published no process samples."""
    if figure is None or figure.peak is None:
        return "no data"
    return f"{figure.peak:.1f} {unit}"
