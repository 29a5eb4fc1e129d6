"""Golden files: every report format, byte for byte, from fixed recordings.

The recordings are written at test time by tests/golden/make_recording.py (a fixed event script through
wsmon's own RecordingWriter); the expected outputs are committed in tests/golden/. Each output comes from
the real CLI (``python -m wsmon report FILE --format X`` and friends) run in a subprocess with TZ=UTC, the
recording's directory as working directory (so the source path is just the file name) and no user config.

When a change to an output is intended, rewrite the golden files and review the diff:

    WSMON_UPDATE_GOLDEN=1 python -m pytest -q tests/test_golden.py
    git diff tests/golden/
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from helpers import run_wsmon

from wsmon.attach import CheckRow
from wsmon.render.targets import check_json, render_check_table
from wsmon.sources.base import CheckResult

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent
UPDATE = os.environ.get("WSMON_UPDATE_GOLDEN") == "1"

sys.path.insert(0, str(GOLDEN))
import make_recording  # noqa: E402

# golden file -> (the CLI's arguments, its expected exit code)
CLI_OUTPUTS: dict[str, tuple[list[str], int]] = {
    "report.txt": (["report", "full.wsmon", "--format", "text"], 1),
    "report.md": (["report", "full.wsmon", "--format", "markdown"], 1),
    "report.json": (["report", "full.wsmon", "--format", "json"], 1),
    "report.junit.xml": (["report", "full.wsmon", "--format", "junit"], 1),
    "baseline.txt": (["report", "full.wsmon", "--baseline", "old.wsmon", "--format", "text"], 1),
    "baseline.md": (["report", "full.wsmon", "--baseline", "old.wsmon", "--format", "markdown"], 1),
    "baseline.json": (["report", "full.wsmon", "--baseline", "old.wsmon", "--format", "json"], 1),
    "baseline.junit.xml": (["report", "full.wsmon", "--baseline", "old.wsmon", "--format", "junit"], 1),
    "old.txt": (["report", "old.wsmon", "--format", "text"], 0),
    "quiet.txt": (["report", "quiet.wsmon", "--format", "text"], 0),
    "quiet.json": (["report", "quiet.wsmon", "--format", "json"], 0),
    "export.jsonl": (["export", "--jsonl", "full.wsmon"], 0),
    "replay.txt": (["replay", "--headless", "full.wsmon"], 1),
}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("golden")
    make_recording.write_all(directory)
    return directory


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSMON_", "GITHUB_"))}
    env.update(
        TZ="UTC",
        PYTHONPATH=str(ROOT),
        HOME=str(cwd),  # no user wsmon.toml: the config directory is looked up from these
        XDG_CONFIG_HOME=str(cwd / ".config"),
        NO_COLOR="1",
        COLUMNS="120",
    )
    return run_wsmon(*args, cwd=cwd, env=env)


def compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(actual.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: WSMON_UPDATE_GOLDEN=1 writes it"
    expected = path.read_bytes().decode("utf-8")
    assert actual == expected, f"{name} differs from its golden file (WSMON_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("name", list(CLI_OUTPUTS))
def test_cli_output_is_byte_identical_to_its_golden_file(name: str, recordings: Path) -> None:
    args, exit_code = CLI_OUTPUTS[name]
    done = run_cli(args, recordings)
    assert done.stderr == ""
    assert done.returncode == exit_code, done.stderr
    compare(name, done.stdout)


def test_the_recording_script_is_deterministic(tmp_path: Path) -> None:
    """Two writes of the script give the same export: the golden files do not depend on when they ran."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    make_recording.write_all(first)
    make_recording.write_all(second)
    assert run_cli(["export", "--jsonl", "full.wsmon"], first).stdout == (
        run_cli(["export", "--jsonl", "full.wsmon"], second).stdout
    )


def check_rows() -> list[CheckRow]:
    """What `wsmon check` found on a fixed system: the rendering is the deterministic part."""
    return [
        CheckRow("websocket", "ws://127.0.0.1:8080/ws", CheckResult(ok=True, latency_ms=3.25)),
        CheckRow("process", "port 8080", CheckResult(ok=True, latency_ms=12.0)),
        CheckRow(
            "redis",
            "redis://127.0.0.1:6379/0",
            CheckResult(
                ok=False,
                latency_ms=0.5,
                error="Connection refused",
                hint="start redis-server, or fix --redis",
                kind="refused",
            ),
        ),
        CheckRow(
            "postgres",
            "postgresql://app@127.0.0.1/test",
            CheckResult(ok=False, error="timed out after 5.0 s", kind="timeout"),
        ),
        CheckRow("log", "server.log", CheckResult(ok=True)),
    ]


def test_check_table_is_byte_identical_to_its_golden_file() -> None:
    compare("check.txt", render_check_table(check_rows()) + "\n")


def test_check_json_is_byte_identical_to_its_golden_file() -> None:
    # as `wsmon check --format json` prints it
    compare(
        "check.json",
        msgspec.json.format(msgspec.json.encode(check_json(check_rows())), indent=2).decode() + "\n",
    )
