"""The `?` screen: every key the dashboard answers to, read from its bindings, and what the screen's
symbols and terms mean.

The key list is generated (``key_sections``) from the bindings the app and the connections table
declare, with each binding's description and tooltip, so it cannot drift from what the keys do. The
glossary is prose: it explains what the widgets draw, and is kept beside them in mind, not in code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, NamedTuple

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from wsmon.core.limits import WARN_AT
from wsmon.core.state import MAX_CLOSED_KEPT

GLOSSARY: tuple[tuple[str, str], ...] = (
    ("◆", "a connection wsmon's own probe opened: shown, never counted in the users' figures"),
    ("N open · peak M", "connections open now, and the most open at once in this session"),
    ("closed kept", f"closed connections the table still holds (the newest {MAX_CLOSED_KEPT:,})"),
    (
        "closed by",
        "who sent the first close frame: client, server, or neither (the TCP connection "
        "ended without one: 1006), unknown when no witness saw it",
    ),
    ("last close", "the close code and its name; a code other than 1000 / 1001 is in the error colour"),
    (
        "tap:",
        "the tap target: wsmon's proxy between the clients and the server, which sees every "
        "client connection on the wire; without it (or the server's log) the table shows only the probes",
    ),
    ("probe handshake p95", "wsmon's own probes' handshake time over the last minute, not the clients'"),
    ("p50 / p95", "median / 95th percentile over the last minute"),
    (
        "OK · WARN · BREACH",
        f"a figure within its limit · past {WARN_AT:.0%} of the way to it · past it "
        "(hysteresis keeps a level from flickering at the line)",
    ),
    ("✓ ▲ ✗", "ok / warn / breach, in every theme; under NO_COLOR warn is bold, breach bold and reversed"),
    ("worst · raised at", "an alert's worst value so far, and its value when it was raised"),
    ("5-sample mean", "CPU is judged on the mean of its last five samples, so one busy second is no breach"),
    ("n = 2, too few to judge", "a success ratio with fewer attempts than its minimum is not judged yet"),
    ("UP · DOWN · STOPPED", "a target answers · does not (with its error) · is a process paused by SIGSTOP"),
    ("STARTING · pending", "wsmon is starting it (not an outage) · configured, not heard from yet"),
    ("SATURATED", "a tap that cannot keep up: the connect times it measures are not judged meanwhile"),
    ("not configured", "no Redis or PostgreSQL target was given"),
    ("LIVE · REPLAY ×2 57 %", "a live session · a recording replayed at twice its speed, 57 % of the way"),
    ("━━●── ⚑ 1", "the replay bar: played · now · to come · a bookmark (m), with the count"),
    ("⏸ PAUSED", "live: the screen is frozen, the session and the recording go on; replay: its clock stops"),
    ("▁▂▃▅▇", "sparklines: the last three minutes, one sample a second"),
    ("…", "text cut to fit: maximise the panel (1–8) to read more"),
)


class KeyHelp(NamedTuple):
    keys: str  # every key that does it, e.g. "j ↓"
    description: str
    detail: str


def declared_bindings(node_type: type[DOMNode]) -> list[Binding]:
    """The bindings a node class answers to, merged over its bases as Textual merges them."""
    # _merge_bindings is Textual's own merge (BINDINGS of each base, inherit_bindings honoured); a copy
    # of it here would be the drift this screen exists to avoid.
    merged = node_type._merge_bindings()
    return [
        binding for bindings in merged.key_to_bindings.values() for binding in bindings if not binding.system
    ]


def action_name(binding: Binding) -> str:
    """'panel' for "panel('1')": the action without its arguments or namespace."""
    return binding.action.partition("(")[0].rpartition(".")[2]


def key_sections(
    groups: Iterable[tuple[str, Iterable[Binding]]], key_display: Callable[[Binding], str]
) -> list[tuple[str, list[KeyHelp]]]:
    """Bindings grouped by section, keys that do the same thing (action and description) on one line."""
    sections: list[tuple[str, list[KeyHelp]]] = []
    for title, bindings in groups:
        rows: dict[tuple[str, str], KeyHelp] = {}
        for binding in bindings:
            same = (binding.action if action_name(binding) != "panel" else "panel", binding.description)
            shown = key_display(binding)
            known = rows.get(same)
            if known is None:
                rows[same] = KeyHelp(shown, binding.description, binding.tooltip)
            elif shown not in known.keys.split(" "):
                rows[same] = known._replace(
                    keys=f"{known.keys} {shown}", detail=known.detail or binding.tooltip
                )
        if rows:
            sections.append((title, list(rows.values())))
    return sections


def _table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    # Two columns, the second wrapping under itself: long explanations stay readable at 80 columns.
    table = Table(
        title=title, title_justify="left", title_style="bold", box=None, show_header=False, expand=False
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, text in rows:
        table.add_row(key, text)
    return table


def render_help(sections: Sequence[tuple[str, Sequence[KeyHelp]]]) -> Group:
    """The keys by section, then the glossary."""
    parts: list[Table | Text] = []
    for title, rows in sections:
        lines = ((row.keys, row.description + (f" — {row.detail}" if row.detail else "")) for row in rows)
        parts += [_table(title, lines), Text()]
    parts.append(_table("On screen", GLOSSARY))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 95%;
        max-width: 130;
        height: auto;
        max-height: 95%;
        border: round $accent;
        background: $panel;
        padding: 0 1;
    }
    HelpScreen Static {
        width: auto;
        max-width: 100%;  /* on a narrow terminal a line wraps at a space instead of being cut */
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", show=True),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[KeyHelp]]]) -> None:
        super().__init__()
        self._sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b $accent]wsmon keys[/]  (esc closes)\n", markup=True)
            yield Static(render_help(self._sections))
