"""The top bar: what is watched, live or replay, how long, and each target's up/down state."""

from __future__ import annotations

import math

from textual.content import Content

from wsmon.core.state import PROBE_CONNECT, State, TargetState
from wsmon.ui.format import clock, coarse_age, count
from wsmon.ui.widgets.target_panel import down_word
from wsmon.ui.widgets.text_panel import TextPanel

# Kinds the user expects to see even when nobody configured them, so a missing one is visible.
EXPECTED_KINDS = ("redis", "postgres")


class HeaderBar(TextPanel):
    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: 2;
        background: $panel;
        padding: 0 1;
    }
    """

    def update_from(
        self,
        state: State,
        *,
        title: str,
        mode: str,
        paused: bool,
        speed: float | None = None,
        progress: float | None = None,
        notice: str = "",
    ) -> bool:
        now = state.last_mono
        targets = tuple(
            (
                t.name,
                t.kind,
                t.status,
                None if t.since_mono is None else coarse_age(now - t.since_mono),
                t.error,
            )
            for t in state.targets.values()
        )
        key = (title, mode, paused, speed, progress, notice, clock(state.duration_s), state.seq, targets)
        return self.show(key, lambda: self._build(state, title, mode, paused, speed, progress, notice))

    def _build(
        self,
        state: State,
        title: str,
        mode: str,
        paused: bool,
        speed: float | None,
        progress: float | None,
        notice: str = "",
    ) -> Content:
        top: list[str | tuple[str, str] | Content] = [("wsmon ", "bold $accent"), (title, "bold")]
        if mode == "replay":
            top.append(("  REPLAY", "bold $warning"))
            if speed is not None:
                top.append(f" ×{speed:g}")
            if progress is not None:
                top.append(f" {progress * 100:.0f} %")
        else:
            top.append(("  LIVE", "bold $success"))
        if paused:
            top.append(("  ⏸ PAUSED", "reverse $warning"))
        top.append(f"  elapsed {clock(state.duration_s)}  events {count(state.seq)}")
        if notice:  # e.g. "recording stopped: disk full"
            top.append((f"  {notice}", "bold $error"))
        return Content.assemble(*top, "\n", self._targets_line(state))

    @staticmethod
    def _targets_line(state: State) -> Content:
        parts: list[str | tuple[str, str]] = []
        now = state.last_mono
        for target in state.targets.values():
            parts.extend(_target_parts(target, now))
            if target.kind == "websocket" and target.up:
                parts.extend(_probe_handshake(state))
            parts.append("   ")
        kinds = {target.kind for target in state.targets.values()}
        for kind in EXPECTED_KINDS:
            if kind not in kinds:
                parts.extend([(f"{kind}: ", "bold"), ("not configured", "$text-muted"), "   "])
        if not parts:
            return Content("no targets yet")
        return Content.assemble(*parts[:-1])


def _probe_handshake(state: State) -> list[str | tuple[str, str]]:
    """wsmon's own probes' handshake p95 over the last minute, labelled as the probe's: it is not the
    clients' connect time, which the limits strip shows (from a tap) and the connect_ms limit judges."""
    dist = state.latency.get(PROBE_CONNECT)
    if dist is None or not dist.window_t:
        return []
    p95 = dist.window_percentiles(state.last_mono, (95,))[0]
    if math.isnan(p95):
        return []
    return [(f" · probe handshake p95 {p95:.1f} ms", "$text-muted")]


def _target_parts(target: TargetState, now: float) -> list[str | tuple[str, str]]:
    since = f" {coarse_age(now - target.since_mono)}" if target.since_mono is not None else ""
    name = (f"{target.name}: ", "bold")
    if target.starting:  # wsmon is starting it: not an outage yet
        return [name, ("STARTING", "bold $warning"), since]
    if target.up is None:
        return [name, ("pending", "$text-muted")]
    if target.up:
        return [name, ("UP", "bold $success"), since]
    word = down_word(target)
    return [name, (word, "bold $error"), since, (f" ({target.error})" if target.error else "", "$error")]
