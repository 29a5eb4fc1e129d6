"""The line that names the panels a short terminal has no room for, and the keys that show them."""

from __future__ import annotations

from textual.content import Content

from wsmon.ui.widgets.fitted_panel import FittedPanel, pack


class HiddenNote(FittedPanel):
    DEFAULT_CSS = """
    HiddenNote {
        display: none;
        padding: 0 1;
        color: $text-muted;
        &.-shown { display: block; }
    }
    """

    def update_from(self, phrases: list[str]) -> bool:
        self.set_class(bool(phrases), "-shown")
        return self.show_fitted(
            tuple(phrases),
            lambda width: Content("\n").join(pack([Content(p) for p in phrases], width, "   ")),
        )
