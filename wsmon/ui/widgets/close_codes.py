"""Close codes seen so far: code, name, count, share, and what usually causes it."""

from __future__ import annotations

from textual.content import Content

from wsmon.core.closecodes import close_code_cause, close_code_name, expected_close
from wsmon.core.state import State
from wsmon.ui.format import count
from wsmon.ui.widgets.text_panel import TextPanel


class CloseCodesPanel(TextPanel):
    DEFAULT_CSS = """
    CloseCodesPanel {
        border: round $primary-darken-1;
        border-title-color: $text;
        height: 1fr;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = "Close codes"

    def update_from(self, state: State) -> bool:
        key = (tuple(state.close_codes.items()), tuple(state.closed_by.items()))
        return self.show(key, lambda: self._build(state))

    @staticmethod
    def _build(state: State) -> Content:
        codes = state.close_codes
        if not codes:
            return Content.styled("no closes yet", "$text-muted")
        total = sum(codes.values())
        title = f"{'code':>4} {'name':<22}{'count':>7}{'share':>7}"
        lines: list[Content] = [Content.styled(title, "bold")]
        for code, n in sorted(codes.items(), key=lambda item: (-item[1], item[0])):
            style = "" if expected_close(code) else "$warning"
            lines.append(
                Content.assemble(
                    (f"{code:>4} {close_code_name(code):<22}", style),
                    f"{count(n):>7}{n / total * 100:>6.1f}%\n",
                    (f"     {close_code_cause(code)}", "$text-muted"),
                )
            )
        by_count = sorted(state.closed_by.items(), key=lambda item: -item[1])
        by = " · ".join(f"{who} {count(n)}" for who, n in by_count)
        lines.append(Content.styled(f"closed by: {by}", "$text-muted"))
        return Content("\n").join(lines)
