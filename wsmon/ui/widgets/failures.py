"""Delivery failures: the success ratio, counts by reason, and the most recent failures."""

from __future__ import annotations

import time

from textual.content import Content

from wsmon.core.state import State
from wsmon.ui.format import count, percent
from wsmon.ui.widgets.text_panel import TextPanel

RECENT_SHOWN = 8


class FailuresPanel(TextPanel):
    DEFAULT_CSS = """
    FailuresPanel {
        border: round $primary-darken-1;
        border-title-color: $text;
        height: 1fr;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = "Delivery failures"

    def update_from(self, state: State) -> bool:
        success = percent(state.delivery_success())
        key = (state.delivered, state.delivery_failed, success)
        return self.show(key, lambda: self._build(state, success))

    @staticmethod
    def _build(state: State, success: str) -> Content:
        failed = state.delivery_failed
        summary = Content.assemble(
            f"delivered {count(state.delivered)} · ",
            (f"failed {count(failed)}", "bold $error" if failed else ""),
            f" · success {success}",
        )
        if not failed:
            return Content.assemble(summary, "\n", Content.styled("no delivery failures", "$text-muted"))
        reasons = " · ".join(
            f"{reason} {count(n)}" for reason, n in sorted(state.failure_reasons.items(), key=lambda i: -i[1])
        )
        lines = [summary, Content(f"by reason: {reasons}"), Content.styled("recent", "bold")]
        for failure in reversed(state.failures[-RECENT_SHOWN:]):
            stamp = time.strftime("%H:%M:%S", time.localtime(failure.wall))
            lines.append(
                Content.assemble(
                    (stamp, "$text-muted"),
                    f"  {failure.message_id}  {failure.conn or '—'}  ",
                    (failure.reason, "$error"),
                )
            )
        return Content("\n").join(lines)
