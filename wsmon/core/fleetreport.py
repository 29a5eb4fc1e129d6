"""A fleet recording judged node by node: its events split by node (core.fleet.node_of_event), each
node's folded into a State of its own and judged like any session, beside the combined report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from wsmon.core import events as ev
from wsmon.core.fleet import LOST_ENTRIES, LOST_EVENTS, NODE_KIND, node_of_event
from wsmon.core.limits import Limit
from wsmon.core.reducer import Reducer
from wsmon.core.report import Report, build_report


class NodeReport(msgspec.Struct, kw_only=True):
    node: str
    report: Report  # the node's own figures, judged against the same limits as the fleet
    lost_events: int  # events its agent dropped while its buffer was full (Redis unreachable)
    lost_entries: int  # batches trimmed from its stream before the fleet read them


def node_reports(
    events: Iterable[ev.Event],
    limits: tuple[Limit, ...],
    *,
    source: str = "",
    header: Mapping[str, Any] | None = None,
) -> list[NodeReport]:
    """One report a node, in the order the nodes joined; [] for a recording that is no fleet's."""
    reducers: dict[str, Reducer] = {}
    lost: dict[str, list[int]] = {}
    for event in events:
        if isinstance(event, ev.TargetAdded) and event.kind == NODE_KIND:
            reducers.setdefault(event.target, Reducer())
            lost.setdefault(event.target, [0, 0])
        node = node_of_event(event)
        reducer = reducers.get(node)
        if reducer is None:
            continue
        reducer.apply(event)
        if isinstance(event, ev.LogLine) and event.source == node and event.fields:
            # Only the fleet's own lines carry the node's bare name as their source.
            lost[node][0] += _count(event.fields.get(LOST_EVENTS, ""))
            lost[node][1] += _count(event.fields.get(LOST_ENTRIES, ""))
    return [
        NodeReport(
            node=name,
            report=build_report(reducer.state, limits, source=f"{source} · node {name}", header=header),
            lost_events=lost[name][0],
            lost_entries=lost[name][1],
        )
        for name, reducer in reducers.items()
    ]


def _count(text: str) -> int:
    return int(text) if text.isdigit() else 0
