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


class NodeSplit:
    """A fleet's events folded node by node, as they come (a live fleet) or from its recording."""

    def __init__(self) -> None:
        self.reducers: dict[str, Reducer] = {}
        self.lost: dict[str, list[int]] = {}  # node -> [events, entries]

    def apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.TargetAdded) and event.kind == NODE_KIND:
            self.reducers.setdefault(event.target, Reducer())
            self.lost.setdefault(event.target, [0, 0])
        node = node_of_event(event)
        reducer = self.reducers.get(node)
        if reducer is None:
            return
        reducer.apply(event)
        if isinstance(event, ev.LogLine) and event.source == node and event.fields:
            # Only the fleet's own lines carry the node's bare name as their source.
            self.lost[node][0] += _count(event.fields.get(LOST_EVENTS, ""))
            self.lost[node][1] += _count(event.fields.get(LOST_ENTRIES, ""))

    def reports(
        self, limits: tuple[Limit, ...], *, source: str = "", header: Mapping[str, Any] | None = None
    ) -> list[NodeReport]:
        """One report a node, in the order the nodes joined; [] when no node was seen."""
        return [
            NodeReport(
                node=name,
                report=build_report(reducer.state, limits, source=f"{source} · node {name}", header=header),
                lost_events=self.lost[name][0],
                lost_entries=self.lost[name][1],
            )
            for name, reducer in self.reducers.items()
        ]


def node_reports(
    events: Iterable[ev.Event],
    limits: tuple[Limit, ...],
    *,
    source: str = "",
    header: Mapping[str, Any] | None = None,
) -> list[NodeReport]:
    """A fleet recording's events, one report a node; [] for a recording that is no fleet's."""
    split = NodeSplit()
    for event in events:
        split.apply(event)
    return split.reports(limits, source=source, header=header)


def _count(text: str) -> int:
    return int(text) if text.isdigit() else 0
