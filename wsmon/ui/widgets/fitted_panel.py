"""A text panel laid out for its width: whole units side by side, a new line where the next would not fit.

The header and the limits strip show figures a reader must never see cut (a target's state, a limit's
value, a breach). Textual's own wrapping breaks at any space, which would split "connect p95 | 208.0 ms";
here a unit (a figure with its label) moves to the next line whole, and only a unit wider than the whole
line is wrapped at its spaces. The panel's height follows (``height: auto``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from textual import events
from textual.content import Content
from textual.message import Message

from wsmon.ui.widgets.text_panel import TextPanel

Build = Callable[[int], Content]


def pack(units: Sequence[Content], width: int, gap: str = "  ") -> list[Content]:
    """``units`` on as few lines as ``width`` allows, none split unless it is wider than a line.

    A width of 0 or less (not laid out yet) puts every unit on one line.
    """
    lines: list[Content] = []
    line: Content | None = None
    for unit in units:
        if line is None:
            line = unit
        elif width > 0 and line.cell_length + len(gap) + unit.cell_length > width:
            lines.append(line)
            line = unit
        else:
            line = line + gap + unit
    if line is not None:
        lines.append(line)
    if width <= 0:
        return lines
    return [
        part.rstrip() for line in lines for part in (line.wrap(width) if line.cell_length > width else [line])
    ]


def fits(units: Sequence[Content], width: int, gap: str = "  ") -> bool:
    """Whether ``units`` fit on one line of ``width`` (always, before the panel is laid out)."""
    return width <= 0 or sum(unit.cell_length for unit in units) + len(gap) * (len(units) - 1) <= width


class FittedPanel(TextPanel):
    """Subclasses call ``show_fitted(key, build)``; ``build(width)`` lays the text out for that width, and
    runs again when the width changes."""

    class Refitted(Message):
        """Laid out again for a new width: its height may have changed, and with it the room below."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._fitted: tuple[Hashable, Build] | None = None

    def show_fitted(self, key: Hashable, build: Build) -> bool:
        self._fitted = (key, build)
        width = self.content_size.width
        return self.show((key, width), lambda: build(width))

    def on_resize(self, event: events.Resize) -> None:
        # A layout asked for while the layout that sent this event is running is not taken: ask after it.
        if self._fitted is not None and self.show_fitted(*self._fitted):
            self.call_after_refresh(self.refresh, layout=True)
            self.post_message(self.Refitted())
