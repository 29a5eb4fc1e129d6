"""Delivery failures: the success ratio, counts by reason, and the most recent failures."""

from __future__ import annotations

from textual.content import Content

from wsmon.core.limits import DEFAULT_LIMITS, TOO_FEW, Limit, ratio_counts, too_few, too_few_text
from wsmon.core.state import State
from wsmon.ui.format import clock_time, count, percent, shows_utc
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

    def update_from(self, state: State, limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> bool:
        success = _success_text(state, limits)
        utc = shows_utc(self)
        key = (state.delivered, state.delivery_failed, success, utc)
        return self.show(key, lambda: self._build(state, success, utc))

    @staticmethod
    def _build(state: State, success: str, utc: bool) -> Content:
        failed = state.delivery_failed
        # "n = 10, too few to judge" is too long to share the line, and is a different kind of statement.
        unjudged = TOO_FEW in success
        summary = Content.assemble(
            f"delivered {count(state.delivered)} · ",
            (f"failed {count(failed)}", "bold $error" if failed else ""),
            ("\n" if unjudged else " · "),
            (f"success {success}", "$text-muted" if unjudged else ""),
        )
        if not failed:
            return Content.assemble(summary, "\n", Content.styled("no delivery failures", "$text-muted"))
        reasons = " · ".join(
            f"{reason} {count(n)}" for reason, n in sorted(state.failure_reasons.items(), key=lambda i: -i[1])
        )
        lines = [summary, Content(f"by reason: {reasons}"), Content.styled("recent", "bold")]
        for failure in reversed(state.failures[-RECENT_SHOWN:]):
            stamp = clock_time(failure.wall, utc)
            lines.append(
                Content.assemble(
                    (stamp, "$text-muted"),
                    f"  {failure.message_id}  {failure.conn or '—'}  ",
                    (failure.reason, "$error"),
                )
            )
        return Content("\n").join(lines)


def _success_text(state: State, limits: tuple[Limit, ...]) -> str:
    """The success rate, or "n = 2, too few to judge" while it has fewer attempts than its minimum."""
    limit = next(lim for lim in (*limits, *DEFAULT_LIMITS) if lim.figure == "delivery_success")
    attempts = ratio_counts(state, limit)[1]
    if attempts and too_few(limit, attempts):
        return too_few_text(attempts)
    return percent(state.delivery_success())
