"""HTTP health and metrics URLs: one line a target with its status, latency and health field, and the
values of the Prometheus series named in wsmon.toml under it.
"""

from __future__ import annotations

import math

from textual.content import Content

from wsmon.core.events import HttpSample
from wsmon.core.state import State, TargetState
from wsmon.ui.widgets.target_panel import Part, TargetPanel, hint_lines, ms, status_key, status_parts

# The sources give every HTTP poller the kind "http"; the others are accepted for feeds that split them.
HTTP_KINDS = frozenset({"http", "health", "metrics"})
SERIES_SHOWN = 12


class HttpPanel(TargetPanel):
    KINDS = HTTP_KINDS
    TITLE = "HTTP"

    def update_from(self, state: State) -> bool:
        targets = self.targets_of(state)
        if not self.show_if(bool(targets)):
            return False
        now = state.last_mono
        # Samples are frozen and replaced whole: identity says whether a target's poll changed.
        key = tuple((state.http.get(t.name), status_key(t, now)) for t in targets)
        return self.show(key, lambda: _build(state, targets))


def _build(state: State, targets: list[TargetState]) -> Content:
    now = state.last_mono
    width = max(len(target.name) for target in targets)
    lines: list[Content] = []
    for target in targets:
        sample = state.http.get(target.name)
        head: list[Part] = [(f"{target.name:<{width}} ", "bold"), *status_parts(target, now)]
        if sample is not None:
            head.extend(_answer(sample, target))
        elif target.address:
            head.append((f"  {target.address}", "$text-muted"))
        lines.append(Content.assemble(*head))
        if sample is not None and sample.series:
            lines.extend(_series_lines(sample.series))
    lines.extend(hint_lines(targets))
    return Content("\n").join(lines)


def _answer(sample: HttpSample, target: TargetState) -> list[Part]:
    # A down target's error already says what it answered ("HTTP 503 · status down"): add the latency.
    said = target.up is False and bool(target.error)
    parts: list[Part] = []
    if sample.status is not None and not said:
        good = 200 <= sample.status < 300
        parts.append((f"  HTTP {sample.status}", "$success" if good else "bold $error"))
    if sample.ms is not None:
        parts.append(f"  {ms(sample.ms)}")
    if sample.health and not said:
        parts.append(f"  status {sample.health}")
    if sample.error and not said:
        parts.append((f"  {sample.error}", "$error"))
    return parts


def _series_lines(series: dict[str, float]) -> list[Content]:
    names = sorted(series)[:SERIES_SHOWN]
    return [Content.assemble("  ", (name, "$text-muted"), f" {_number(series[name])}") for name in names]


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.1f}"
