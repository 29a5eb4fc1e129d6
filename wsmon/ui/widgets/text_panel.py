"""A panel of text that is rebuilt and repainted only when what it shows has changed."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from textual.content import Content
from textual.widget import Widget

from wsmon.core.sanitize import is_visible, visible

_NOTHING_SHOWN = object()


class TextPanel(Widget):
    """Subclasses call ``show(key, build)`` every tick; ``build`` runs only when ``key`` differs.

    The key is whatever the panel's text is a function of (a few counters, a formatted value), so a
    tick that changes nothing costs one tuple comparison and no repaint.
    """

    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    TextPanel {
        height: auto;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._key: Hashable = _NOTHING_SHOWN
        self._content = Content("")

    def show(self, key: Hashable, build: Callable[[], Content]) -> bool:
        """Rebuild and repaint if ``key`` changed; returns whether it did."""
        if key == self._key:
            return False
        self._key = key
        content = _safe(build())
        # Only a change in line count can change an auto height; otherwise a repaint is enough.
        relayout = content.plain.count("\n") != self._content.plain.count("\n")
        self._content = content
        if relayout:  # Textual keeps a widget's auto height per width until told it changed
            self.clear_cached_dimensions()
        self.refresh(layout=relayout)
        return True

    @property
    def text(self) -> str:
        """The plain text shown now (what tests and screen readers care about)."""
        return self._content.plain

    def render(self) -> Content:
        return self._content


def _safe(content: Content) -> Content:
    """Every panel shows text from outside (log lines, reasons, errors), maybe from an old recording:
    its control characters become placeholders here, one for one, so the spans still fit."""
    plain = content.plain
    if is_visible(plain):
        return content
    return Content(visible(plain, keep_newlines=True), list(content.spans))
