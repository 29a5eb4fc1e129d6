"""Themes (issue 12, item 4): the shipped ones load and register, a malformed file is one line naming the
file and the key and the default is used, t switches and the choice is kept for the next start, levels
differ by symbol and weight where colour is not enough, and NO_COLOR makes a breach the loudest thing.

Every test runs with its own XDG_CONFIG_HOME: a user's remembered theme must not change what a test sees,
and a test must not change the user's."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from ui_support import ReducerFeed, screen_lines, settle

from wsmon.core import events as ev
from wsmon.core.limits import BREACH, OK, WARN
from wsmon.themes import (
    dashboard_themes,
    load_catalogue,
    remember_theme,
    remembered_theme,
    resolve_theme,
    ui_state_path,
)
from wsmon.ui.app import WsmonApp
from wsmon.ui.format import LevelSymbols
from wsmon.ui.themes import DEFAULT_THEME, default_catalogue, default_theme
from wsmon.ui.widgets import LimitsStrip

SIZE = (160, 50)
SHIPPED = ("dark", "light", "high-contrast", "colour-blind-safe")
REPO = Path(__file__).resolve().parent.parent
GOOD = """\
name = "mine"
primary = "#0178D4"
ok = "#00aa00"
warn = "#aaaa00"
breach = "#aa0000"
"""


@pytest.fixture(autouse=True)
def own_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return config


def user_theme(config: Path, file_name: str, text: str) -> Path:
    folder = config / "wsmon" / "themes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    path.write_text(text, encoding="utf-8")
    return path


def at(seconds: float) -> dict[str, float]:
    return {"wall": 1_700_000_000.0 + seconds, "mono": 1000.0 + seconds}


def one_of_each_level() -> ReducerFeed:
    """connect p95 ok (10 of 100 ms), delivery p95 warn (45 of 50 ms), e2e p95 breach (900 of 500 ms),
    with the alerts the judge raised for the last two."""
    feed = ReducerFeed()
    feed.apply(
        ev.LatencySample(**at(0.0), kind="connect", ms=10.0),
        ev.LatencySample(**at(0.1), kind="delivery", ms=45.0),
        ev.LatencySample(**at(0.2), kind="e2e", ms=900.0),
        ev.AlertRaised(**at(0.3), figure="delivery_ms", level="warn", value=45.0, limit=50.0),
        ev.AlertRaised(**at(0.3), figure="e2e_ms", level="breach", value=900.0, limit=500.0),
    )
    return feed


# --- the files ------------------------------------------------------------------------------------


def test_every_shipped_theme_loads_without_a_problem() -> None:
    catalogue = load_catalogue()
    assert catalogue.problems == {}
    assert set(SHIPPED) <= set(catalogue.themes)
    assert catalogue.cycle_names()[0] == DEFAULT_THEME
    assert resolve_theme(None, catalogue=catalogue).name == DEFAULT_THEME


def test_the_repository_themes_folder_is_the_packaged_one() -> None:
    root = REPO / "themes"
    assert root.resolve() == (REPO / "wsmon" / "themes").resolve()
    assert {path.stem for path in root.glob("*.toml")} == set(SHIPPED)


def test_the_default_theme_keeps_the_look_wsmon_had() -> None:
    """Textual's textual-dark colours, levels in its success / warning / error, a breach in bold."""
    dark = load_catalogue().themes["dark"]
    variables = dark.textual_theme().variables
    textual_dark = load_catalogue().themes["textual-dark"].theme
    for field in ("primary", "secondary", "accent", "warning", "error", "success", "foreground"):
        assert str(getattr(dark.theme, field)).lower() == str(getattr(textual_dark, field)).lower()
    before = textual_dark.to_color_system().generate()  # what $success, $warning and $error were
    assert variables["wsmon-ok-style"] == before["success"]
    assert variables["wsmon-warn-style"] == before["warning"]
    assert variables["wsmon-breach-style"] == f"bold {before['error']}"
    assert dark.symbols == LevelSymbols(ok="✓", warn="▲", breach="✗")


def test_the_app_s_own_default_is_the_shipped_dark_file() -> None:
    """Without themes from its creator the app draws wsmon.ui.themes' default: the same as dark.toml."""
    shipped = load_catalogue().themes[DEFAULT_THEME]
    assert replace(shipped, origin="built-in") == default_theme()
    assert shipped.textual_theme() == default_theme().textual_theme()
    assert default_catalogue().cycle_names() == [DEFAULT_THEME]


def test_colour_blind_safe_differs_by_symbol_and_weight() -> None:
    theme = load_catalogue().themes["colour-blind-safe"]
    assert theme.symbols == LevelSymbols(ok="✓", warn="▲", breach="✗")
    assert len({theme.styles.get(level, "") for level in (OK, WARN, BREACH)}) == 3


BROKEN = GOOD.replace("mine", "broken")
MALFORMED = [
    ("bad TOML", 'name = "broken"\nprimary = \n', "(TOML)"),
    ("unknown key", BROKEN + 'colour = "#ffffff"\n', "colour"),
    ("colour Textual rejects", BROKEN.replace("#0178D4", "blurple"), "primary"),
    ("missing required", BROKEN.replace('breach = "#aa0000"\n', ""), "breach"),
    ("unknown symbol level", BROKEN + '[symbols]\nfine = "✓"\n', "symbols.fine"),
    ("empty symbol", BROKEN + '[symbols]\nwarn = ""\n', "symbols.warn"),
    ("two levels, one symbol", BROKEN + '[symbols]\nbreach = "▲"\n', "symbols.breach"),
    ("bad text style", BROKEN + '[text-style]\nbreach = "blink"\n', "text-style.breach"),
    ("reserved variable", BROKEN + '[variables]\nwsmon-ok = "red"\n', "variables.wsmon-ok"),
]


@pytest.mark.parametrize(("case", "text", "key"), MALFORMED, ids=[case for case, _, _ in MALFORMED])
def test_a_malformed_theme_is_one_line_naming_file_and_key_and_the_default_is_used(
    own_config_dir: Path, case: str, text: str, key: str
) -> None:
    path = user_theme(own_config_dir, "broken.toml", text)
    lines: list[str] = []
    chosen = resolve_theme("broken", warn=lines.append)
    assert chosen.name == DEFAULT_THEME
    assert len(lines) == 1, lines
    line = lines[0]
    assert "\n" not in line
    assert line.startswith(f"{path}: {key}: ")
    assert line.endswith(f"using the default theme {DEFAULT_THEME!r}")


def test_a_malformed_theme_not_chosen_is_reported_and_the_rest_still_load(own_config_dir: Path) -> None:
    user_theme(own_config_dir, "broken.toml", "name = ")
    user_theme(own_config_dir, "mine.toml", GOOD)
    lines: list[str] = []
    assert resolve_theme("mine", warn=lines.append).name == "mine"
    assert len(lines) == 1 and "broken.toml: (TOML): " in lines[0] and lines[0].endswith("not loaded")


def test_an_unknown_theme_name_falls_back_to_the_default_saying_which_exist() -> None:
    lines: list[str] = []
    assert resolve_theme("no-such-theme", warn=lines.append).name == DEFAULT_THEME
    assert len(lines) == 1 and "'no-such-theme'" in lines[0] and "colour-blind-safe" in lines[0]


def test_a_user_theme_replaces_a_built_in_one_of_the_same_name(own_config_dir: Path) -> None:
    user_theme(own_config_dir, "light.toml", GOOD.replace("mine", "light"))
    theme = load_catalogue().themes["light"]
    assert theme.colours[OK] == "#00aa00"
    assert theme.origin.endswith("light.toml")


def test_the_choice_is_remembered_and_an_unreadable_state_file_is_ignored_with_a_warning(
    own_config_dir: Path,
) -> None:
    remember_theme("light")
    assert remembered_theme() == "light"
    assert resolve_theme(None).name == "light"
    assert resolve_theme("high-contrast").name == "high-contrast"  # a flag or wsmon.toml wins
    assert [p.name for p in ui_state_path().parent.iterdir() if p.name.startswith(".ui-state.")] == []
    ui_state_path().write_bytes(b"theme = \xff\n")
    lines: list[str] = []
    assert resolve_theme(None, warn=lines.append).name == DEFAULT_THEME
    assert len(lines) == 1 and str(ui_state_path()) in lines[0]
    remember_theme("dark")  # a damaged file is replaced, not a reason to forget the choice
    assert remembered_theme() == "dark"


# --- the dashboard --------------------------------------------------------------------------------


async def test_every_shipped_theme_registers_and_draws() -> None:
    for name in SHIPPED:
        app = WsmonApp(one_of_each_level(), themes=dashboard_themes(name))
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.theme == name
            assert set(SHIPPED) <= set(app.available_themes)
            assert "e2e p95" in app.query_one(LimitsStrip).text
            assert "<svg" in app.export_screenshot()


async def test_t_switches_theme_and_the_next_start_keeps_it() -> None:
    app = WsmonApp(ReducerFeed(), themes=dashboard_themes())
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == DEFAULT_THEME
        await pilot.press("t")
        await pilot.pause()
        switched = app.theme
        assert switched != DEFAULT_THEME and switched in SHIPPED
    assert remembered_theme() == switched
    again = WsmonApp(ReducerFeed(), themes=dashboard_themes())
    async with again.run_test(size=SIZE):
        assert again.theme == switched


async def test_a_palette_choice_is_remembered_and_the_start_theme_is_not() -> None:
    app = WsmonApp(ReducerFeed(), themes=dashboard_themes("light"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert remembered_theme() is None  # given at start (a flag): not a choice to keep
        app.theme = "nord"  # what ctrl+p → theme does
        await pilot.pause()
    assert remembered_theme() == "nord"


async def test_a_malformed_theme_asked_for_starts_the_default_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A short config path: the toast shows the whole line only if it fits its few lines, and pytest's
    # own temporary paths (longer still under xdist) would push the key's value out of it.
    short = Path(tempfile.mkdtemp(prefix="wt", dir="/tmp"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(short))
    user_theme(short, "broken.toml", BROKEN.replace("#0178D4", "blurple"))
    app = WsmonApp(ReducerFeed(), themes=dashboard_themes("broken"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        assert app.theme == DEFAULT_THEME
        # The toast is mounted after the first frame; on a loaded machine that can take a while.
        for _ in range(50):
            await pilot.pause(0.1)
            if "blurple" in "\n".join(screen_lines(app)):
                break
        assert "'blurple' is not a colour" in "\n".join(screen_lines(app))


@pytest.mark.parametrize("name", SHIPPED)
async def test_every_theme_marks_each_level_by_its_own_symbol(name: str) -> None:
    """Levels never differ by colour alone: a warn alert line and a breach one start differently."""
    app = WsmonApp(one_of_each_level(), themes=dashboard_themes(name))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = app.query_one(LimitsStrip).text
        assert "connect p95 ✓ " in text and "delivery p95 ▲ " in text and "e2e p95 ✗ " in text
        assert "\n✗ BREACH " in text and "\n▲ WARN " in text


async def test_textual_s_own_themes_draw_the_symbols_too() -> None:
    app = WsmonApp(one_of_each_level(), themes=dashboard_themes("nord"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = app.query_one(LimitsStrip).text
        assert "\n✗ BREACH " in text and "\n▲ WARN " in text


async def test_under_no_color_a_breach_is_bold_and_reversed_and_levels_carry_symbols(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = WsmonApp(one_of_each_level())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.no_color
        cells = svg_cells(app.export_screenshot())
    breach = next(cell for cell in cells if cell.text.startswith("✗ 900"))
    ok = next(cell for cell in cells if cell.text.startswith("✓ 10"))
    assert breach.bold and not ok.bold
    # Reverse: the breach is dark text on a block as bright as any text; the rest is light text on dark.
    assert breach.background is not None and grey(breach.background) > grey(breach.fill)
    assert grey(breach.background) >= grey(ok.fill)
    assert ok.background is None or grey(ok.background) < grey(ok.fill)
    alert = next(cell for cell in cells if cell.text.startswith("✗ BREACH"))
    assert alert.bold and alert.background is not None and grey(alert.background) > grey(alert.fill)
    coloured = [(c.text, c.fill) for c in cells if c.text.strip() and not is_grey(c.fill)]
    assert coloured == [], "NO_COLOR leaves only greys"


# --- the wheel ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_wheel_ships_the_theme_files(tmp_path: Path) -> None:
    # Built from a copy: pip builds in the source folder and would leave build/ in the work tree.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "wsmon", source / "wsmon", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("wsmon-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"wsmon/themes/{name}.toml" for name in SHIPPED} <= names


# --- reading the screenshot -----------------------------------------------------------------------


class Cell:
    """One run of text in the SVG screenshot, with the colours and weight it is drawn in."""

    def __init__(self, text: str, fill: str, bold: bool, background: str | None) -> None:
        self.text, self.fill, self.bold, self.background = text, fill, bold, background


_CLASS = re.compile(r"\.(terminal-\d+-r\d+) \{ ([^}]*) \}")
_TEXT = re.compile(r'<text class="(terminal-\d+-r\d+)" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>')
_RECT = re.compile(r'<rect fill="(#[0-9a-f]{6})" x="([\d.]+)" y="([\d.]+)" width="[\d.]+" height="[\d.]+"')


def svg_cells(svg: str) -> list[Cell]:
    """Text runs with their class's fill and weight, and a background block that starts where they do
    and is not the screen's (Rich draws reversed or coloured backgrounds as such blocks)."""
    classes = {name: rules for name, rules in _CLASS.findall(svg)}
    rects = {(float(x), round(float(y))): fill for fill, x, y in _RECT.findall(svg)}
    screen = max(set(rects.values()), key=list(rects.values()).count)
    cells = []
    for name, x, y, raw in _TEXT.findall(svg):
        rules = classes.get(name, "")
        fill = re.search(r"fill: (#[0-9a-f]{6})", rules)
        # A text baseline sits a line's ascent below its block's top: look for the nearest block above.
        block = next(
            (f for (bx, by), f in rects.items() if bx == float(x) and 0 < float(y) - by < 24), None
        )
        cells.append(
            Cell(
                html.unescape(raw).replace("\xa0", " "),
                fill.group(1) if fill else "#000000",
                "font-weight: bold" in rules,
                block if block != screen else None,
            )
        )
    return cells


def screen_text(svg: str) -> str:
    return " ".join(cell.text for cell in svg_cells(svg))


def grey(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b


def is_grey(hex_colour: str) -> bool:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return max(r, g, b) - min(r, g, b) <= 2
