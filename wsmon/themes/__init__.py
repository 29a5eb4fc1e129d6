"""Theme files: find, parse and validate them, and remember the one chosen on the dashboard.

A theme is a TOML file (docs/themes.md): Textual's ``Theme`` fields plus wsmon's level colours, symbols
and text styles. The built-in ones are this package's ``*.toml`` (the repository's ``themes/`` links
here); a user's live in ``$XDG_CONFIG_HOME/wsmon/themes/`` (``~/.config`` without it) and win over a
built-in of the same name. Textual's own themes stay available (the palette lists them), with levels drawn
in their success / warning / error colours.

This is the composition layer's side of themes: the dashboard does no I/O, so whoever builds it calls
``dashboard_themes`` and hands the app the result (``wsmon.ui.themes`` holds the pure types).

Nothing here raises at a user: a malformed file becomes one line naming the file and the key, and the
theme asked for falls back to the default.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.css.tokenize import tokenize_values
from textual.css.tokenizer import TokenError
from textual.theme import BUILTIN_THEMES, Theme

from wsmon.core.limits import BREACH, OK, WARN
from wsmon.ui.format import LevelSymbols
from wsmon.ui.themes import LEVELS, Catalogue, ThemeSetup, WsmonTheme, from_textual

TEXT_STYLES = frozenset({"bold", "dim", "italic", "underline", "reverse", "strike"})
# Textual's Theme fields, as a theme file spells them.
COLOUR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "warning",
    "error",
    "success",
)
REQUIRED = ("name", "primary", OK, WARN, BREACH)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
MAX_SYMBOL_CHARS = 2


class ThemeError(ValueError):
    """One problem with one theme file: ``file: key: what is wrong``."""


# --- reading -------------------------------------------------------------------------------------


def builtin_theme_files() -> list[tuple[str, str]]:
    """(file name, text) of the themes shipped in the package."""
    folder = resources.files(__name__)
    return sorted(
        (entry.name, entry.read_text("utf-8")) for entry in folder.iterdir() if entry.name.endswith(".toml")
    )


def config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "wsmon"


def user_theme_dir() -> Path:
    return config_dir() / "themes"


def parse_theme(text: str, origin: str) -> WsmonTheme:
    """A theme file's text as a WsmonTheme; ThemeError names ``origin`` and the key at fault."""

    def fail(key: str, problem: str) -> ThemeError:
        return ThemeError(f"{origin}: {key}: {problem}")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail("(TOML)", str(exc)) from None
    known = {
        *REQUIRED,
        *COLOUR_FIELDS,
        "muted",
        "dark",
        "luminosity_spread",
        "text_alpha",
        "variables",
        "symbols",
        "text-style",
    }
    for key in data:
        if key not in known:
            raise fail(key, "unknown key")
    for key in REQUIRED:
        if key not in data:
            raise fail(key, "missing (required)")
    name = _string(data, "name", fail)
    if not _NAME.fullmatch(name):
        raise fail("name", f"{name!r} is not a theme name: lower-case letters, digits and '-'")
    colours = {
        key: _colour(data, key, fail) for key in (*COLOUR_FIELDS, OK, WARN, BREACH, "muted") if key in data
    }
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise fail("dark", "must be true or false")
    theme = Theme(
        name=name,
        primary=colours["primary"],
        secondary=colours.get("secondary"),
        accent=colours.get("accent"),
        foreground=colours.get("foreground"),
        background=colours.get("background"),
        surface=colours.get("surface"),
        panel=colours.get("panel"),
        boost=colours.get("boost"),
        warning=colours.get("warning"),
        error=colours.get("error"),
        success=colours.get("success"),
        dark=dark,
        variables=_variables(data.get("variables", {}), fail),
    )
    # Left to Textual's defaults unless the file sets them.
    if "luminosity_spread" in data:
        theme.luminosity_spread = _number(data, "luminosity_spread", fail)
    if "text_alpha" in data:
        theme.text_alpha = _number(data, "text_alpha", fail)
    return WsmonTheme(
        theme=theme,
        colours={level: colours[level] for level in LEVELS},
        styles=_per_level(data, "text-style", _text_style, fail),
        symbols=_symbols(data, fail),
        muted=colours.get("muted"),
        origin=origin,
    )


def _string(data: Mapping[str, Any], key: str, fail: Callable[[str, str], ThemeError]) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise fail(key, "must be a string")
    return value


def _colour(data: Mapping[str, Any], key: str, fail: Callable[[str, str], ThemeError]) -> str:
    value = _string(data, key, fail)
    try:
        Color.parse(value)
    except ColorParseError:
        raise fail(key, f"{value!r} is not a colour") from None
    return value


def _number(data: Mapping[str, Any], key: str, fail: Callable[[str, str], ThemeError]) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, "must be a number")
    return float(value)


def _variables(table: object, fail: Callable[[str, str], ThemeError]) -> dict[str, str]:
    if not isinstance(table, dict):
        raise fail("variables", "must be a table")
    out: dict[str, str] = {}
    for name, value in table.items():
        key = f"variables.{name}"
        if name.startswith("wsmon-"):
            raise fail(key, "wsmon's variables come from ok / warn / breach / muted, not from here")
        if not isinstance(value, str):
            raise fail(key, "must be a string")
        try:
            tokenize_values({name: value})
        except TokenError:
            raise fail(key, f"{value!r} is not a CSS value") from None
        out[name] = value
    return out


def _symbols(data: Mapping[str, Any], fail: Callable[[str, str], ThemeError]) -> LevelSymbols:
    """The file's symbols over the standard ✓ ▲ ✗; two levels with one symbol would differ by colour alone."""
    symbols = LevelSymbols(**_per_level(data, "symbols", _symbol, fail))
    seen: dict[str, str] = {}
    for level, symbol in zip(LEVELS, (symbols.ok, symbols.warn, symbols.breach), strict=True):
        if symbol in seen:
            raise fail(
                f"symbols.{level}", f"{symbol!r} is {seen[symbol]}'s too: levels must differ by symbol"
            )
        seen[symbol] = level
    return symbols


def _text_style(value: str) -> str | None:
    words = value.split()
    return " ".join(words) if all(word in TEXT_STYLES for word in words) else None


def _symbol(value: str) -> str | None:
    return (
        value
        if 0 < len(value) <= MAX_SYMBOL_CHARS and value.isprintable() and value.strip() == value
        else None
    )


def _per_level(
    data: Mapping[str, Any],
    table_name: str,
    check: Callable[[str], str | None],
    fail: Callable[[str, str], ThemeError],
) -> dict[str, str]:
    table = data.get(table_name, {})
    if not isinstance(table, dict):
        raise fail(table_name, "must be a table")
    out: dict[str, str] = {}
    for level, value in table.items():
        key = f"{table_name}.{level}"
        if level not in LEVELS:
            raise fail(key, "unknown key (ok, warn or breach)")
        checked = check(value) if isinstance(value, str) else None
        if checked is None:
            what = (
                f"words from {', '.join(sorted(TEXT_STYLES))}"
                if table_name == "text-style"
                else (f"1 to {MAX_SYMBOL_CHARS} visible characters")
            )
            raise fail(key, f"{value!r} is not valid: {what}")
        out[level] = checked
    return out


def load_catalogue(user_dir: Path | None = None) -> Catalogue:
    """Textual's themes, then wsmon's built-in ones, then the user's (each may replace one before it)."""
    catalogue = Catalogue(themes={name: from_textual(theme) for name, theme in BUILTIN_THEMES.items()})
    sources: list[tuple[str, str, str | Path]] = [
        (file_name, f"wsmon/themes/{file_name}", text) for file_name, text in builtin_theme_files()
    ]
    folder = user_theme_dir() if user_dir is None else user_dir
    if folder.is_dir():
        sources += [(path.name, str(path), path) for path in sorted(folder.glob("*.toml"))]
    for file_name, origin, source in sources:
        stem = file_name.removesuffix(".toml")
        try:
            text = source if isinstance(source, str) else source.read_text("utf-8")
            theme = parse_theme(text, origin)
        except (OSError, UnicodeDecodeError) as exc:
            catalogue.problems[stem] = f"{origin}: (file): cannot be read: {exc}"
            continue
        except ThemeError as exc:
            catalogue.problems[stem] = str(exc)
            continue
        catalogue.problems.pop(stem, None)
        catalogue.themes[theme.name] = theme
    return catalogue


# --- choosing and remembering ---------------------------------------------------------------------


def _to_stderr(line: str) -> None:
    print(f"wsmon: {line}", file=sys.stderr)


def resolve_theme(
    name: str | None,
    *,
    warn: Callable[[str], None] = _to_stderr,
    catalogue: Catalogue | None = None,
) -> WsmonTheme:
    """The theme to start with: ``name`` (a flag or wsmon.toml), else the remembered one, else the default.

    Every file that could not be loaded is reported with ``warn`` (one line each); a chosen theme that is
    unknown or malformed is reported as such and the default is used instead.
    """
    catalogue = load_catalogue() if catalogue is None else catalogue
    theme, notes = catalogue.choose(name if name is not None else remembered_theme(warn=warn))
    for note in notes:
        warn(note)
    return theme


def dashboard_themes(name: str | None = None) -> ThemeSetup:
    """Everything the dashboard needs to know of themes, found now; its warnings are shown on it."""
    notes: list[str] = []
    catalogue = load_catalogue()
    start = resolve_theme(name, warn=notes.append, catalogue=catalogue)
    return ThemeSetup(catalogue=catalogue, start=start.name, notes=tuple(notes), remember=remember_theme)


def ui_state_path() -> Path:
    return config_dir() / "ui-state.toml"


def _read_ui_state(warn: Callable[[str], None]) -> dict[str, Any]:
    path = ui_state_path()
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        warn(f"{path}: ignored, cannot be read: {exc}")
        return {}


def remembered_theme(*, warn: Callable[[str], None] = _to_stderr) -> str | None:
    value = _read_ui_state(warn).get("theme")
    return value if isinstance(value, str) else None


def remember_theme(name: str, warn: Callable[[str], None] = _to_stderr) -> None:
    """Keep ``name`` for the next start; written whole or not at all (a crash leaves the old file)."""
    state = _read_ui_state(lambda _line: None)
    state["theme"] = name
    path = ui_state_path()
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=".ui-state.", delete=False
        ) as out:
            temporary = out.name
            out.write("".join(_toml_lines(state)))
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        warn(f"{path}: theme not remembered: {exc}")


def _toml_lines(state: Mapping[str, Any]) -> Iterable[str]:
    """The flat key = value lines ui-state.toml holds; JSON's string escapes are valid TOML ones."""
    yield "# wsmon remembers the dashboard's choices here; safe to delete.\n"
    for key, value in state.items():
        if isinstance(value, str | bool | int | float):
            yield f"{json.dumps(key)} = {json.dumps(value)}\n"
