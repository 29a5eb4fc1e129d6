"""The `?` screen: every key the dashboard answers to."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str], ...] = (
    ("q", "quit (stops the session and closes the recording first)"),
    ("?", "this help"),
    ("/", "filter connections by id, peer, state or close code"),
    ("esc", "back: clear the filter, restore a maximised panel, close this help"),
    ("space", "pause / resume"),
    ("1 2 3 4", "maximise connections, close codes, delivery failures, resources"),
    ("5 6 7 8", "maximise Redis, PostgreSQL, logs, HTTP (when shown)"),
    ("0", "all panels"),
    ("↑ ↓ pgup pgdn home end", "scroll the connections table"),
    ("ctrl+p", "command palette (themes, screenshots, keys)"),
    ("t", "next theme (dark, light, high-contrast, colour-blind-safe, yours); kept for next time"),
    ("← →", "replay: step back / forward"),
    ("+ -", "replay: faster / slower"),
    ("n N", "replay: next / previous anomaly (abnormal close, delivery failure, alert, outage)"),
    ("g", "replay: seek to a moment (50%, 1:30, 90s)"),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: auto;
        max-width: 90%;
        height: auto;
        border: round $accent;
        background: $panel;
        padding: 1 2;
    }
    HelpScreen Static {
        width: auto;
        max-width: 100%;  /* on a narrow terminal a line wraps at a space instead of being cut */
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", show=True),
    ]

    def compose(self) -> ComposeResult:
        width = max(len(key) for key, _ in KEYS)
        lines = "\n".join(f"[b]{key:<{width}}[/b]  {what}" for key, what in KEYS)
        with Vertical():
            yield Static("[b $accent]wsmon keys[/]\n", markup=True)
            yield Static(lines, markup=True)
