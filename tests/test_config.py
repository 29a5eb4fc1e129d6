"""Configuration: flag > environment > .env > ./wsmon.toml > the user config directory, and one clear
line (key, file, what was expected) for every bad value.

The precedence tests run the real CLI (`wsmon check`) in an empty working directory with a clean
environment, and read which address won from the check table. The targets are closed ports, so each
check fails fast (exit 1) while still showing the address it was given.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import free_port

from wsmon.config import ConfigError, load_settings, resolve_options

TARGET_ENV = ("WSMON_URL", "REDIS_URL", "DATABASE_URL")
LAYERS = ("flag", "env", "dotenv", "cwd", "user")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in TARGET_ENV}
    env["XDG_CONFIG_HOME"] = str(home / "xdg")
    env.update(extra)
    return env


def wsmon(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsmon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=clean_env(cwd, **env),
    )


def user_config(cwd: Path) -> Path:
    path = cwd / "xdg" / "wsmon" / "wsmon.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def addresses(stdout: str) -> dict[str, str]:
    """{target: address} from the check table."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1]
    return rows


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wsmon: error: ")
    return lines[0]


# --- precedence ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_precedence_flag_env_dotenv_cwd_user(tmp_path: Path) -> None:
    # One closed port per layer, so the address in the table tells which layer won.
    port = {layer: free_port() for layer in LAYERS}
    url = {layer: f"ws://127.0.0.1:{port[layer]}/{layer}" for layer in LAYERS}
    redis = {layer: f"redis://127.0.0.1:{port[layer]}/0" for layer in LAYERS}
    postgres = {layer: f"postgresql://wsmon@127.0.0.1:{port[layer]}/{layer}" for layer in LAYERS}

    def toml(layer: str) -> str:
        return f'[targets]\nurl = "{url[layer]}"\nredis = "{redis[layer]}"\npostgres = "{postgres[layer]}"\n'

    user_config(tmp_path).write_text(toml("user"))
    (tmp_path / "wsmon.toml").write_text(toml("cwd"))
    (tmp_path / ".env").write_text(
        f"# the .env counts as environment\nexport WSMON_URL={url['dotenv']}\n"
        f"REDIS_URL='{redis['dotenv']}'\nDATABASE_URL=\"{postgres['dotenv']}\"\n"
    )
    env = {"WSMON_URL": url["env"], "REDIS_URL": redis["env"], "DATABASE_URL": postgres["env"]}
    flags = [url["flag"], "--redis", redis["flag"], "--postgres", postgres["flag"]]

    def winner(*args: str, **environment: str) -> str:
        result = wsmon(tmp_path, "check", *args, **environment)
        assert result.returncode == 1, result.stdout + result.stderr  # every port is closed
        shown = addresses(result.stdout)
        layers = {
            next(layer for layer in LAYERS if shown[name] == table[layer])
            for name, table in (("websocket", url), ("redis", redis), ("postgres", postgres))
        }
        assert len(layers) == 1, f"the three keys came from different layers: {shown}"
        return layers.pop()

    assert winner(*flags, **env) == "flag"
    assert winner(**env) == "env"
    # An empty variable is unset: it does not hide the .env.
    assert winner(WSMON_URL="", REDIS_URL="", DATABASE_URL="") == "dotenv"
    (tmp_path / ".env").unlink()
    assert winner() == "cwd"
    (tmp_path / "wsmon.toml").unlink()
    assert winner() == "user"


def test_each_key_is_resolved_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A higher layer that sets one key does not hide the other keys of lower layers."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for key in TARGET_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://env:6379/0")
    user_config(tmp_path).write_text(
        '[targets]\npostgres = "postgresql://user-dir/db"\nredis = "redis://user-dir:6379/0"\n'
        '[probe]\nprobes = 3\nrequest = "{id}"\n[attach]\ninterval = 0.25\ncpu_basis = "machine"\n'
        '[metrics]\nseries = ["up", "ws_connections"]\n'
    )
    (tmp_path / "wsmon.toml").write_text('[targets]\nurl = "ws://cwd:8080/ws"\n[probe]\nprobes = 5\n')

    options = resolve_options({"probes": None, "interval": 2.0}, load_settings(cwd=tmp_path))

    assert options.url == "ws://cwd:8080/ws"
    assert options.redis == "redis://env:6379/0"
    assert options.postgres == "postgresql://user-dir/db"
    assert options.probes == 5
    assert options.request == "{id}"
    assert options.interval == 2.0
    assert options.cpu_basis == "machine"
    assert options.series == ["up", "ws_connections"]


def test_limits_merge_per_figure_flag_over_cwd_over_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user_config(tmp_path).write_text("[limits]\nrss_mib = 100\ncpu_percent = 70\nconnect_ms = 10\n")
    (tmp_path / "wsmon.toml").write_text("[limits]\nrss_mib = 200\ncpu_percent = 80\n")

    limits = {limit.figure: limit.value for limit in load_settings(["rss_mib=300"], cwd=tmp_path).limits}

    assert limits["rss_mib"] == 300.0
    assert limits["cpu_percent"] == 80.0
    assert limits["connect_ms"] == 10.0
    assert limits["db_ms"] == 200.0  # untouched: the default


# --- one clear line for every bad value -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[targets]\nport = "abc"\n', r"\[targets\]\.port: expected a port number 1-65535, got 'abc'"),
        ("[targets]\nport = 70000\n", r"\[targets\]\.port: expected a port number 1-65535, got 70000"),
        ('[targets]\nredis = "http://x"\n', r"\[targets\]\.redis: expected a URL starting with redis://"),
        ('[targets]\nredi = "redis://x"\n', r"\[targets\]\.redi: unknown key; expected one of .*redis"),
        ("targets = 3\n", r"\[targets\]: expected a table with keys .*url"),
        ("[attach]\ninterval = -1\n", r"\[attach\]\.interval: expected a positive number of seconds"),
        ('[attach]\ncpu_basis = "gpu"\n', r"\[attach\]\.cpu_basis: expected one of core, machine"),
        ("[probe]\nprobes = 99\n", r"\[probe\]\.probes: expected a number of probe connections 0-50"),
        ('[probe]\ninsecure = "yes"\n', r"\[probe\]\.insecure: expected true or false"),
        ('[probe]\nca_file = "missing.pem"\n', r"\[probe\]\.ca_file: expected a path to a readable PEM"),
        ('[metrics]\nseries = "up"\n', r"\[metrics\]\.series: expected a list of series names"),
        ('[limits]\nrss_mib = "big"\n', r"\[limits\]\.rss_mib: expected a positive number, got 'big'"),
        ("[limits]\nconnect_success = 100\n", r"\[limits\]\.connect_success: expected a percentage below"),
        ("[limits]\nram = 5\n", r"\[limits\]\.ram: unknown limit; expected one of connect_ms"),
        ("limits = 5\n", r"\[limits\]: expected a table of figure = number"),
        ("[targets\nurl = 1\n", r": not valid TOML: .*line 1"),
    ],
)
def test_bad_wsmon_toml_value_is_one_line_naming_key_and_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "wsmon.toml").write_text(text)
    line = one_error_line(wsmon(tmp_path, "check", "--health", "http://127.0.0.1:1/health"))
    assert str(tmp_path / "wsmon.toml") in line
    assert re.search(expected, line), line


@pytest.mark.slow
def test_bad_value_in_the_user_config_names_that_file(tmp_path: Path) -> None:
    user_config(tmp_path).write_text("[attach]\ninterval = 0\n")
    line = one_error_line(wsmon(tmp_path, "check", "--redis", "redis://127.0.0.1:1/0"))
    assert f"{user_config(tmp_path)} [attach].interval: expected a positive number" in line


@pytest.mark.slow
def test_dotenv_line_without_equals_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# targets\nREDIS_URL=redis://127.0.0.1:1/0\nDATABASE_URL\n")
    line = one_error_line(wsmon(tmp_path, "check"))
    assert f"{tmp_path / '.env'}:3: expected KEY=VALUE, got 'DATABASE_URL'" in line


@pytest.mark.slow
def test_bad_value_from_dotenv_names_the_dotenv_and_hides_the_password(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://root:hunter2@127.0.0.1/db\n")
    line = one_error_line(wsmon(tmp_path, "check"))
    assert f"{tmp_path / '.env'} DATABASE_URL: expected a URL starting with postgresql://" in line
    assert "hunter2" not in line
    assert "root:***@" in line


@pytest.mark.slow
def test_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    line = one_error_line(wsmon(tmp_path, "check", WSMON_URL="http://127.0.0.1:8080/ws"))
    assert "environment WSMON_URL: expected a URL starting with ws:// or wss://" in line


@pytest.mark.slow
def test_attach_refuses_bad_config_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "wsmon.toml").write_text('[targets]\nport = "abc"\n')
    line = one_error_line(wsmon(tmp_path, "attach", "--headless", "--duration", "1"))
    assert f"{tmp_path / 'wsmon.toml'} [targets].port: expected a port number" in line


def test_sections_of_other_commands_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "wsmon.toml").write_text('[run]\nsomething = 1\n[targets]\nredis = "redis://h:1/0"\n')
    assert resolve_options({}, load_settings(cwd=tmp_path)).redis == "redis://h:1/0"


def test_config_error_is_a_single_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "wsmon.toml").write_text('[targets]\nurl = """http://a\nb"""\n')
    with pytest.raises(ConfigError) as caught:
        resolve_options({}, load_settings(cwd=tmp_path))
    assert "\n" not in str(caught.value)
    assert "[targets].url: expected a URL starting with ws://" in str(caught.value)


# --- secrets ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_passwords_from_config_never_reach_the_check_table(tmp_path: Path) -> None:
    secrets = ("pg-Hunter2", "redis-Hunter2", "tok-Hunter2")
    (tmp_path / ".env").write_text(f"DATABASE_URL=postgresql://app:{secrets[0]}@127.0.0.1:{free_port()}/db\n")
    (tmp_path / "wsmon.toml").write_text(
        f'[targets]\nredis = "redis://:{secrets[1]}@127.0.0.1:{free_port()}/0"\n'
        f'url = "ws://127.0.0.1:{free_port()}/ws?token={secrets[2]}"\n'
    )
    result = wsmon(tmp_path, "check")
    assert result.returncode == 1, result.stdout + result.stderr
    shown = addresses(result.stdout)
    assert shown["postgres"].startswith("postgresql://app:***@")
    assert shown["redis"].startswith("redis://***@") or shown["redis"].startswith("redis://:***@")
    assert shown["websocket"].endswith("?token=***")
    for secret in secrets:
        assert secret not in result.stdout + result.stderr


def test_delivery_rules_come_from_wsmon_toml_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    from wsmon.config import ConfigError, load_settings, resolve_options

    (tmp_path / "wsmon.toml").write_text(
        '[delivery]\nid_paths = ["id"]\nack_paths = ["id"]\nrequest_types = ["message"]\n'
        'ack_types = ["ack", "error"]\ntimeout_s = 2.5\n'
    )
    options = resolve_options({}, load_settings(cwd=tmp_path))
    assert options.delivery_rules.ack_types == frozenset({"ack", "error"})
    assert options.delivery_rules.id_paths == ("id",) and options.delivery_timeout == 2.5
    (tmp_path / "wsmon.toml").write_text('[delivery]\nack_path = ["id"]\n')
    with pytest.raises(ConfigError, match=r"wsmon.toml \[delivery\]\.ack_path: unknown key"):
        resolve_options({}, load_settings(cwd=tmp_path))
    (tmp_path / "wsmon.toml").write_text('[delivery]\npending_directions = ["up"]\n')
    with pytest.raises(ConfigError, match=r"pending_directions: expected a list of \"in\" and \"out\""):
        resolve_options({}, load_settings(cwd=tmp_path))


def test_the_bounds_of_pairing_by_value_come_from_wsmon_toml(tmp_path: Path) -> None:
    from wsmon.config import ConfigError, load_settings, resolve_options

    (tmp_path / "wsmon.toml").write_text(
        "[delivery]\nmatch_values = false\nvalue_max_depth = 3\nvalue_max_strings = 50\n"
        "value_max_bytes = 4096\nvalue_min_chars = 6\n"
    )
    rules = resolve_options({}, load_settings(cwd=tmp_path)).delivery_rules
    assert rules.match_values is False
    assert (rules.value_max_depth, rules.value_max_strings, rules.value_max_bytes) == (3, 50, 4096)
    assert rules.value_min_chars == 6
    (tmp_path / "wsmon.toml").write_text("[delivery]\nvalue_max_depth = 0\n")
    with pytest.raises(ConfigError, match=r"\.value_max_depth: expected a whole number of at least 1, got 0"):
        resolve_options({}, load_settings(cwd=tmp_path))
    (tmp_path / "wsmon.toml").write_text('[delivery]\nvalue_max_bytes = "big"\n')
    with pytest.raises(ConfigError, match=r"value_max_bytes: expected a whole number, got 'big'"):
        resolve_options({}, load_settings(cwd=tmp_path))
