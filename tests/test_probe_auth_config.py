"""How probes' headers, subprotocols, Origin and first exchange are configured (flags, environment,
.env, wsmon.toml), and how a server command from a wsmon.toml is announced or refused."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_env, run_wsmon

from wsmon.attach import _probe_config, server_notice
from wsmon.config import ConfigError, Settings, load_settings, resolve_options, untrusted_reason
from wsmon.sources.probe import ExchangeStep

TOKEN = "tok-5f3a9c2e1d7b"


def settings(toml: str = "", env: dict[str, str] | None = None, path: str = "/a/wsmon.toml") -> Settings:
    tables = [(Path(path), tomllib.loads(toml))] if toml else []
    return Settings(env=env or {}, tables=tables)


def flags(**values: Any) -> dict[str, Any]:
    return {"url": "ws://127.0.0.1:9/ws", **values}


def test_a_header_value_comes_from_the_environment_word_by_word() -> None:
    options = resolve_options(
        flags(headers=("Authorization: Bearer env:TOKEN", "X-Client: wsmon")), settings(env={"TOKEN": TOKEN})
    )
    assert options.headers == [("Authorization", f"Bearer {TOKEN}"), ("X-Client", "wsmon")]
    assert _probe_config(options).headers == (("Authorization", f"Bearer {TOKEN}"), ("X-Client", "wsmon"))


def test_a_header_value_comes_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN", raising=False)
    (tmp_path / ".env").write_text(f"TOKEN=Bearer {TOKEN}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    options = resolve_options(flags(headers=("Authorization: env:TOKEN",)), load_settings(cwd=tmp_path))
    assert options.headers == [("Authorization", f"Bearer {TOKEN}")]


def test_a_missing_variable_is_one_line_naming_the_flag_header_and_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_options(flags(headers=("Authorization: Bearer env:NOPE",)), settings())
    assert str(caught.value) == "--header: Authorization: environment variable NOPE is not set (nor in .env)"


def test_a_value_with_a_line_break_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_options(
            flags(headers=("Authorization: env:TOKEN",)), settings(env={"TOKEN": f"a\r\nX: {TOKEN}"})
        )
    assert str(caught.value) == "--header: Authorization: the value has a line break or a control character"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (f"Bearer {TOKEN}", "--header: expected 'Name: value', got '***'"),
        (f"Bad Name: {TOKEN}", "--header: 'Bad Name' is not a header name"),
        (
            "Sec-WebSocket-Protocol: chat",
            "--header: Sec-WebSocket-Protocol is set by the WebSocket handshake itself (use --subprotocol)",
        ),
        (
            "origin: https://a.example",
            "--header: origin is set by the WebSocket handshake itself (use --origin)",
        ),
    ],
)
def test_a_bad_header_is_refused_without_echoing_its_value(header: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_options(flags(headers=(header,)), settings())
    assert str(caught.value) == message and TOKEN not in str(caught.value)


def test_wsmon_toml_gives_headers_as_a_table_and_the_first_exchange() -> None:
    toml = """
[probe]
subprotocols = ["chat.v1", "chat.v0"]
origin = "https://app.example.com"

[probe.headers]
Authorization = "Bearer env:TOKEN"

[[probe.first_exchange]]
send = { type = "register", deviceId = "wsmon-{probe}", caps = ["a", "ü"] }
expect = { type = "registered" }

[[probe.first_exchange]]
send = '{"type": "subscribe"}'
expect = '"subscribed"'
timeout = 2
"""
    options = resolve_options(flags(), settings(toml, env={"TOKEN": TOKEN}))
    assert options.headers == [("Authorization", f"Bearer {TOKEN}")]
    assert options.subprotocols == ["chat.v1", "chat.v0"] and options.origin == "https://app.example.com"
    assert options.first_exchange == [
        ExchangeStep(
            send='{"type": "register", "deviceId": "wsmon-{probe}", "caps": ["a", "ü"]}',
            expect={"type": "registered"},
            timeout=5.0,
        ),
        ExchangeStep(send='{"type": "subscribe"}', expect='"subscribed"', timeout=2.0),
    ]


def test_flags_beat_wsmon_toml_for_headers_and_subprotocols() -> None:
    toml = '[probe]\nheaders = ["X-From: toml"]\nsubprotocols = "toml.v1"\n'
    options = resolve_options(flags(headers=("X-From: flag",), subprotocols=("flag.v1",)), settings(toml))
    assert options.headers == [("X-From", "flag")] and options.subprotocols == ["flag.v1"]
    options = resolve_options(flags(), settings(toml))
    assert options.headers == [("X-From", "toml")] and options.subprotocols == ["toml.v1"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[[probe.first_exchange]]\nsend = 'x'\nreply = 'y'\n",
            "/a/wsmon.toml [probe].first_exchange[1].reply: unknown key; "
            "expected one of expect, send, timeout",
        ),
        (
            "[[probe.first_exchange]]\ntimeout = 1\n",
            "/a/wsmon.toml [probe].first_exchange[1]: expected send, expect or both",
        ),
        (
            "[[probe.first_exchange]]\nexpect = 'x'\ntimeout = 0\n",
            "/a/wsmon.toml [probe].first_exchange[1].timeout: expected a positive number of seconds, got 0",
        ),
        (
            "[[probe.first_exchange]]\nexpect = 3\n",
            "/a/wsmon.toml [probe].first_exchange[1].expect: expected a substring or a table the reply "
            "contains, got 3",
        ),
        (
            "[probe]\norigin = 'app.example.com'\n",
            "/a/wsmon.toml [probe].origin: expected an origin such as https://app.example.com, "
            "got 'app.example.com'",
        ),
        (
            "[probe]\nsubprotocols = ['chat v1']\n",
            "/a/wsmon.toml [probe].subprotocols: expected subprotocol names such as chat.v1, got ['chat v1']",
        ),
        (
            "[probe.headers]\nAuthorization = 3\n",
            "/a/wsmon.toml [probe].headers.Authorization: expected a string value, got a int",
        ),
        (
            "[probe]\nheader = ['X: y']\n",
            "/a/wsmon.toml [probe].header: unknown key; expected one of ca_file, first_exchange, headers, "
            "insecure, origin, probes, reconnect_every, reply_contains, request, subprotocols",
        ),
    ],
)
def test_bad_probe_settings_in_wsmon_toml_name_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_options(flags(), settings(toml))
    assert str(caught.value) == message


# --- a server command from wsmon.toml ---------------------------------------------------------------


def test_untrusted_reason_names_the_owner_or_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "wsmon.toml"
    path.write_text("")
    path.chmod(0o644)
    assert untrusted_reason(path) == ""
    path.chmod(0o664)
    assert untrusted_reason(path) == "writable by group (mode 0664)"
    path.chmod(0o646)
    assert untrusted_reason(path) == "writable by others (mode 0646)"
    if os.getuid() == 0:
        path.chmod(0o644)
        os.chown(path, 65534, 65534)
        assert untrusted_reason(path) == "owned by another user (uid 65534, you are 0)"


def test_a_server_command_from_a_flag_is_announced_as_such() -> None:
    command = "node server.js --db postgresql://app:pw@db/app --cache=redis://:pw2@r/0"
    options = resolve_options({"server": command}, settings())
    assert server_notice(options) == (
        "wsmon: starting the server command from --server: node server.js "
        "--db 'postgresql://app:***@db/app' '--cache=redis://:***@r/0'"
    )


def wsmon(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_wsmon(*args, cwd=cwd, env=clean_env(cwd), timeout=timeout)


def server_toml(tmp_path: Path, mode: int, owner: int | None = None) -> tuple[Path, str]:
    """A wsmon.toml whose server command leaves a file behind when it starts."""
    command = f"{sys.executable} -c \"open('started', 'w').close(); import time; time.sleep(30)\""
    path = tmp_path / "wsmon.toml"
    path.write_text(f"[targets]\nserver = '''{command}'''\n")
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return path, command


@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o666, 0o664])
def test_attach_refuses_a_server_command_from_a_wsmon_toml_others_may_write(
    tmp_path: Path, mode: int
) -> None:
    path, _ = server_toml(tmp_path, mode)
    result = wsmon("attach", "--headless", "--duration", "1", cwd=tmp_path)
    assert result.returncode == 2
    who = "group and others" if mode == 0o666 else "group"
    assert result.stderr == (
        f"wsmon: error: {path} [targets].server: refusing to run a command from a file writable by {who} "
        f"(mode {mode:04o}); check it, then fix it (chown, chmod go-w) or pass --trust-config\n"
    )
    assert not (tmp_path / "started").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_attach_refuses_a_server_command_from_a_wsmon_toml_another_user_owns(tmp_path: Path) -> None:
    server_toml(tmp_path, 0o644, owner=65534)
    result = wsmon("attach", "--headless", "--duration", "1", cwd=tmp_path)
    assert result.returncode == 2 and "owned by another user (uid 65534" in result.stderr
    assert not (tmp_path / "started").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "trust"), [(0o644, False), (0o666, True)])
def test_attach_announces_a_server_command_from_wsmon_toml_then_runs_it(
    tmp_path: Path, mode: int, trust: bool
) -> None:
    path, command = server_toml(tmp_path, mode)
    extra = ["--trust-config"] if trust else []
    result = wsmon("attach", *extra, "--headless", "--duration", "2", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    prefix = f"wsmon: starting the server command from {path} [targets].server: "
    first = result.stderr.splitlines()[0]
    assert first.startswith(prefix) and shlex.split(first.removeprefix(prefix)) == shlex.split(command)
    assert (tmp_path / "started").exists()
