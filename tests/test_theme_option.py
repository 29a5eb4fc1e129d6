"""--theme NAME and `[ui] theme` in wsmon.toml (issue 12, item 4, finished through issue 11's schema): the
name reaches the dashboard of every command that shows one, and the flag beats wsmon.toml, which beats
the theme remembered from the last `t`, which beats the default.

The dashboard itself is replaced by a stand-in that keeps the ThemeSetup it was given (what the real app
starts in: tests/test_themes.py proves that part), so the commands run to their end in a test. Every test
has its own XDG_CONFIG_HOME and working directory: a user's wsmon.toml or remembered theme must not count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from helpers import TARGET_ENV, at

from wsmon.cli import main
from wsmon.config import THEME
from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import fold
from wsmon.store import RecordingWriter, new_header
from wsmon.themes import remember_theme
from wsmon.ui.themes import DEFAULT_THEME, ThemeSetup


class StandInApp:
    """Keeps what the command hands the dashboard, and shows nothing."""

    started: ClassVar[list[ThemeSetup]] = []

    def __init__(self, feed: Any, *, themes: ThemeSetup) -> None:
        StandInApp.started.append(themes)

    def run(self) -> None:
        pass


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for key in (*TARGET_ENV, "NO_COLOR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("wsmon.ui.app.WsmonApp", StandInApp)
    StandInApp.started = []
    return tmp_path


@pytest.fixture
def recording(workdir: Path) -> Path:
    events: list[ev.Event] = [
        ev.ConnectionOpened(**at(1.0), conn="c1", peer="10.0.0.1:1"),
        ev.Marker(**at(2.0), text="the end"),
    ]
    path = workdir / "tiny.wsmon"
    writer = RecordingWriter(path, new_header(limits=list(DEFAULT_LIMITS)))
    writer.extend(events)
    writer.close(fold(events))
    return path


def ui_toml(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[ui]\n{body}\n")


def wsmon(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def started_in(*args: str) -> str:
    result = wsmon(*args)
    assert result.exit_code == 0, result.output
    assert len(StandInApp.started) == 1
    return StandInApp.started.pop().start


def test_the_flag_reaches_the_replay_dashboard(recording: Path) -> None:
    assert started_in("replay", str(recording)) == DEFAULT_THEME
    assert started_in("replay", str(recording), "--theme", "light") == "light"


def test_flag_beats_wsmon_toml_beats_the_remembered_theme(workdir: Path, recording: Path) -> None:
    remember_theme("colour-blind-safe")
    assert started_in("replay", str(recording)) == "colour-blind-safe"
    ui_toml(workdir / "xdg" / "wsmon" / "wsmon.toml", 'theme = "light"')
    assert started_in("replay", str(recording)) == "light"  # the user's wsmon.toml
    ui_toml(workdir / "wsmon.toml", 'theme = "high-contrast"')
    assert started_in("replay", str(recording)) == "high-contrast"  # the working directory's first
    assert started_in("replay", str(recording), "--theme", "dark") == "dark"


def test_a_theme_given_at_start_is_not_remembered(workdir: Path, recording: Path) -> None:
    started_in("replay", str(recording), "--theme", "light")
    assert not (workdir / "xdg" / "wsmon" / "ui-state.toml").exists()


def test_an_unknown_theme_is_one_note_on_the_dashboard_and_the_default(recording: Path) -> None:
    result = wsmon("replay", str(recording), "--theme", "no-such-theme")
    assert result.exit_code == 0, result.output
    setup = StandInApp.started.pop()
    assert setup.start == DEFAULT_THEME
    assert len(setup.notes) == 1 and "no-such-theme" in setup.notes[0]


def test_a_theme_in_wsmon_toml_that_is_not_a_name_is_one_line_and_exit_2(
    workdir: Path, recording: Path
) -> None:
    ui_toml(workdir / "wsmon.toml", "theme = 3")
    result = wsmon("replay", str(recording))
    assert result.exit_code == 2
    where = f"{workdir / 'wsmon.toml'} [ui].theme"
    assert result.output == f"wsmon: error: {where}: expected a theme name, got 3\n"
    assert not StandInApp.started


def test_attach_takes_the_theme_from_the_schema(workdir: Path) -> None:
    # Nothing answers on port 9; the stand-in dashboard returns at once, so the session never runs.
    target = ["--health", "http://127.0.0.1:9/", "--probes", "0"]
    ui_toml(workdir / "wsmon.toml", 'theme = "light"')
    assert started_in("attach", *target) == "light"
    assert started_in("attach", *target, "--theme", "high-contrast") == "high-contrast"


def test_attach_refuses_an_unknown_key_in_ui(workdir: Path) -> None:
    ui_toml(workdir / "wsmon.toml", 'colours = "light"')
    result = wsmon("attach", "--health", "http://127.0.0.1:9/")
    assert result.exit_code == 2
    assert "[ui].colours: unknown key; expected one of theme" in result.output


@pytest.mark.parametrize("command", ["demo", "attach", "replay", "run"])
def test_every_dashboard_command_has_the_same_flag_and_check_has_none(command: str) -> None:
    help_text = wsmon(command, "--help").output
    assert "--theme NAME" in help_text and THEME.option.help.split(" (")[0] in help_text
    assert "--theme" not in wsmon("check", "--help").output
