"""One-line prompts: the replay's `:` (where to go: "50%", "1:30", "90s") and a live marker's text (m)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class PromptScreen(ModalScreen[str | None]):
    """Dismisses with the text typed (enter), or None on escape."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical {
        width: 60; height: auto; padding: 1 2;
        border: round $primary; background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, label: str, placeholder: str, *, input_id: str) -> None:
        super().__init__()
        self._label = label
        self._placeholder = placeholder
        self._input_id = input_id

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._label, markup=False)
            yield Input(placeholder=self._placeholder, id=self._input_id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SeekScreen(PromptScreen):
    def __init__(self) -> None:
        super().__init__("Seek to (50%, 1:30, 90s from the start)", "1:30", input_id="seek")


class MarkerScreen(PromptScreen):
    def __init__(self, default: str) -> None:
        super().__init__(f"Marker text (empty: '{default}'; esc: none)", default, input_id="marker")
