"""Themes as the dashboard uses them: a theme's levels, the catalogue of themes, and the choice at start.

Pure: finding, parsing and remembering theme files is I/O, which the dashboard never does; that is
``wsmon.themes`` (the composition layer), which hands the app a ``ThemeSetup``. Without one the app
draws the default, ``dark``, built here from Textual's textual-dark (what wsmon has always shown, and
what ``wsmon/themes/dark.toml`` spells out; tests/test_themes.py checks the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from textual.theme import BUILTIN_THEMES, Theme

from wsmon.core.limits import BREACH, OK, WARN
from wsmon.ui.format import LevelSymbols

DEFAULT_THEME = "dark"
LEVELS = (OK, WARN, BREACH)
# Under NO_COLOR every colour is dropped, so levels must differ by what is left: symbol (every theme has
# them) and weight, with a breach the most prominent thing on the screen.
NO_COLOR_STYLES: Mapping[str, str] = {OK: "", WARN: "bold", BREACH: "bold reverse"}
STANDARD_SYMBOLS = LevelSymbols()  # ✓ ▲ ✗


@dataclass(frozen=True)
class WsmonTheme:
    """A Textual theme plus how wsmon draws ok / warn / breach in it."""

    theme: Theme
    colours: Mapping[str, str]  # level → colour
    styles: Mapping[str, str] = field(default_factory=dict)  # level → Textual text-style words
    symbols: LevelSymbols = STANDARD_SYMBOLS  # unless the theme's file names its own
    muted: str | None = None
    origin: str = "built-in"

    @property
    def name(self) -> str:
        return self.theme.name

    def monochrome(self) -> WsmonTheme:
        """The theme as NO_COLOR shows it: its symbols, bold / bold reverse by level, and every level in
        the foreground colour: greyed, a dark red breach would be a dim block."""
        foreground = self.theme.to_color_system().generate()["foreground"]
        colours = dict.fromkeys(LEVELS, foreground)
        return replace(self, colours=colours, styles=NO_COLOR_STYLES)

    def textual_theme(self) -> Theme:
        """What the app registers: wsmon's levels become theme variables the widgets' styles name."""
        levels: dict[str, str] = {}
        for level in LEVELS:
            colour = self.colours[level]
            levels[f"wsmon-{level}"] = colour
            levels[f"wsmon-{level}-style"] = f"{self.styles.get(level, '')} {colour}".strip()
        if self.muted is not None:
            levels["wsmon-muted"] = self.muted
            levels["text-muted"] = self.muted  # every panel's secondary text is $text-muted
        return replace(self.theme, variables={**self.theme.variables, **levels})


def from_textual(theme: Theme) -> WsmonTheme:
    """One of Textual's themes, levels in its own success / warning / error colours."""
    # The generated variables, not the ColorSystem's fields: those are None where the theme left them out.
    generated = theme.to_color_system().generate()
    colours = {OK: generated["success"], WARN: generated["warning"], BREACH: generated["error"]}
    return WsmonTheme(theme=theme, colours=colours, styles={BREACH: "bold"}, origin="textual")


def default_theme() -> WsmonTheme:
    """``dark``: textual-dark's colours and levels, a breach in bold, the levels' symbols."""
    textual_dark = BUILTIN_THEMES["textual-dark"]
    return replace(
        from_textual(textual_dark), theme=replace(textual_dark, name=DEFAULT_THEME), origin="built-in"
    )


@dataclass
class Catalogue:
    """Every theme found, by name, and the files that could not be loaded, by file stem."""

    themes: dict[str, WsmonTheme] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def cycle_names(self) -> list[str]:
        """wsmon's themes in the order ``t`` steps through them: the default first, Textual's left out."""
        own = [name for name, theme in self.themes.items() if theme.origin != "textual"]
        return sorted(own, key=lambda name: (name != DEFAULT_THEME, name))

    def choose(self, wanted: str | None) -> tuple[WsmonTheme, list[str]]:
        """The theme to start with, ``wanted`` or the default, and one line for each problem to show:
        every file that could not be loaded, and a wanted theme that is unknown or malformed."""
        notes: list[str] = []
        for stem, problem in self.problems.items():
            consequence = f"using the default theme {DEFAULT_THEME!r}" if stem == wanted else "not loaded"
            notes.append(f"{problem}; {consequence}")
        if wanted is None or wanted in self.themes:
            return self.themes[wanted or DEFAULT_THEME], notes
        if wanted not in self.problems:
            known = ", ".join(self.cycle_names())
            notes.append(
                f"theme {wanted!r}: unknown (wsmon's: {known}); using the default theme {DEFAULT_THEME!r}"
            )
        return self.themes[DEFAULT_THEME], notes


def default_catalogue() -> Catalogue:
    """Textual's themes and the default: what the app offers when its creator gives it no themes."""
    themes = {name: from_textual(theme) for name, theme in BUILTIN_THEMES.items()}
    themes[DEFAULT_THEME] = default_theme()
    return Catalogue(themes=themes)


@dataclass(frozen=True)
class ThemeSetup:
    """What the app's creator found: the themes, the one to start in, the lines to show about them, and
    where a choice made on the dashboard (``t``, ctrl+p) goes to be remembered (given the app's way of
    showing a one-line warning)."""

    catalogue: Catalogue
    start: str = DEFAULT_THEME
    notes: tuple[str, ...] = ()
    remember: Callable[[str, Callable[[str], None]], None] | None = None
