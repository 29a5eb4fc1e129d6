"""The top bar: what is watched, live or replay, how long, and each target's up/down state.

On a narrow terminal the targets' line is abbreviated before it is wrapped (``websocket`` → ``ws``, no
colons, ``probe p95``), so every target's state stays whole on the screen.
"""

from __future__ import annotations

import math

from textual.content import Content

from wsmon.core.state import PROBE_CONNECT, State, TargetState
from wsmon.ui.format import clock, coarse_age, count
from wsmon.ui.widgets.fitted_panel import FittedPanel, fits, pack
from wsmon.ui.widgets.target_panel import down_word

# Kinds the user expects to see even when nobody configured them, so a missing one is visible.
EXPECTED_KINDS = ("redis", "postgres")
# Names shortened on a narrow terminal; a name the user chose is kept as it is.
SHORT_NAMES = {"websocket": "ws"}

Part = str | tuple[str, str]


class HeaderBar(FittedPanel):
    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: auto;
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
        return self.show_fitted(
            key, lambda width: self._build(state, title, mode, paused, speed, progress, notice, width)
        )

    def _build(
        self,
        state: State,
        title: str,
        mode: str,
        paused: bool,
        speed: float | None,
        progress: float | None,
        notice: str,
        width: int,
    ) -> Content:
        mode_part: list[Part] = []
        if mode == "replay":
            mode_part.append(("REPLAY", "bold $warning"))
            if speed is not None:
                mode_part.append(f" ×{speed:g}")
            if progress is not None:
                mode_part.append(f" {progress * 100:.0f} %")
        else:
            mode_part.append(("LIVE", "bold $success"))
        top = [Content.assemble(("wsmon ", "bold $accent"), (title, "bold")), Content.assemble(*mode_part)]
        if paused:
            top.append(Content.assemble(("⏸ PAUSED", "reverse $warning")))
        top += [Content(f"elapsed {clock(state.duration_s)}"), Content(f"events {count(state.seq)}")]
        if notice:  # e.g. "recording stopped: disk full"
            top.append(Content.assemble((notice, "bold $error")))
        targets = self._target_units(state, short=False)
        if not fits(targets, width, "   "):
            targets = self._target_units(state, short=True)
        lines = pack(top, width) + pack(targets, width, "   " if fits(targets, width, "   ") else "  ")
        return Content("\n").join(lines)

    @staticmethod
    def _target_units(state: State, *, short: bool) -> list[Content]:
        units: list[Content] = []
        now = state.last_mono
        for target in state.targets.values():
            parts = _target_parts(target, now, short=short)
            if target.kind == "websocket" and target.up:
                parts.extend(_probe_handshake(state, short=short))
            units.append(Content.assemble(*parts))
        kinds = {target.kind for target in state.targets.values()}
        for kind in EXPECTED_KINDS:
            if kind not in kinds:
                units.append(
                    Content.assemble(
                        (f"{kind}{'' if short else ':'} ", "bold"), ("not configured", "$text-muted")
                    )
                )
        return units or [Content("no targets yet")]


def _probe_handshake(state: State, *, short: bool) -> list[Part]:
    """wsmon's own probes' handshake p95 over the last minute, labelled as the probe's: it is not the
    clients' connect time, which the limits strip shows (from a tap) and the connect_ms limit judges."""
    dist = state.latency.get(PROBE_CONNECT)
    if dist is None or not dist.window_t:
        return []
    p95 = dist.window_percentiles(state.last_mono, (95,))[0]
    if math.isnan(p95):
        return []
    label = "probe" if short else "probe handshake"
    return [(f" · {label} p95 {p95:.1f} ms", "$text-muted")]


def _target_parts(target: TargetState, now: float, *, short: bool) -> list[Part]:
    since = f" {coarse_age(now - target.since_mono)}" if target.since_mono is not None else ""
    name = (f"{SHORT_NAMES.get(target.name, target.name)} " if short else f"{target.name}: ", "bold")
    if target.starting:  # wsmon is starting it: not an outage yet
        return [name, ("STARTING", "bold $warning"), since]
    if target.up is None:
        return [name, ("pending", "$text-muted")]
    if target.up and target.saturated_since is not None:  # a tap that cannot keep up: up, not trusted
        worst = target.saturated_lag_ms
        lag = "" if short else f" (its loop lag up to {worst:.0f} ms: connect time not judged)"
        since = f" {coarse_age(now - target.saturated_since)}"
        return [name, ("SATURATED", "bold $warning"), since, (lag, "$warning")]
    if target.up:
        return [name, ("UP", "bold $success"), since]
    word = down_word(target)
    return [name, (word, "bold $error"), since, (f" ({target.error})" if target.error else "", "$error")]
