"""The configuration schema (wsmon/config/options.py): every setting is defined once, and that one
definition gives its flag, its environment variable, its wsmon.toml key, its help and its parsed type.

Proved here: the generated flags, the variables and the keys each give the same typed value; the
precedence is flag > environment > ./wsmon.toml > the user's wsmon.toml for every setting; a bad value
is the same one line from each place, naming that place; and the specs packed into one string (taps,
feeds) are parsed once, the typed value reaching the sources.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from wsmon.attach import build_sources, run_checks
from wsmon.cli.live import target_options
from wsmon.config import SETTINGS, AttachOptions, ConfigError, TapSpec, load_settings, parse_tap_spec
from wsmon.config import specs as config_specs
from wsmon.config.options import SECTIONS
from wsmon.config.resolve import resolve_options
from wsmon.core.hostport import HostPort, HostPortError
from wsmon.sources.feeds import FeedSource, FeedSpec
from wsmon.sources.tap import TapSource

TARGET_ENV = ("WSMON_URL", "REDIS_URL", "DATABASE_URL")


def pem(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return str(path)


def samples(tmp_path: Path) -> dict[str, tuple[list[str], Any, Any]]:
    """For each setting: (its flag's arguments, the same value in TOML, the parsed value)."""
    ca = pem(tmp_path, "ca.pem")
    return {
        "url": (["ws://h:1/ws"], "ws://h:1/ws", "ws://h:1/ws"),
        "server": (["--server", "true"], "true", "true"),
        "taps": (
            ["--tap", "9001=ws://h:1"],
            ["9001=ws://h:1"],
            [TapSpec(HostPort("127.0.0.1", 9001), "ws://h:1")],
        ),
        "logs": (["--log", "app.log"], ["app.log"], ["app.log"]),
        "feeds": (
            ["--feed", "redis://h/0#ch"],
            ["redis://h/0#ch"],
            [FeedSpec("redis-pubsub", "redis://h/0", "ch")],
        ),
        "redis": (["--redis", "redis://h:1/0"], "redis://h:1/0", "redis://h:1/0"),
        "postgres": (["--postgres", "postgresql://h/db"], "postgresql://h/db", "postgresql://h/db"),
        "pid": (["--pid", "42"], 42, 42),
        "port": (["--port", "8080"], 8080, 8080),
        "process": (["--process", "node"], "node", "node"),
        "health": (["--health", "http://h/health"], "http://h/health", "http://h/health"),
        "metrics": (["--metrics", "http://h/metrics"], "http://h/metrics", "http://h/metrics"),
        "series": (["--series", "up"], ["up"], ["up"]),
        "interval": (["--interval", "0.5"], 0.5, 0.5),
        "cpu_basis": (["--cpu-basis", "machine"], "machine", "machine"),
        "probes": (["--probes", "3"], 3, 3),
        "tap_workers": (["--tap-workers", "2"], 2, 2),
        "reconnect_every": (["--reconnect-every", "0"], 0, 0.0),
        "request": (["--request", "{id}"], "{id}", "{id}"),
        "reply_contains": (["--reply-contains", "{id}"], "{id}", "{id}"),
        "ca_file": (["--ca", ca], ca, ca),
        "insecure": (["--insecure"], True, True),
        "headers": (["--header", "X-Client: wsmon"], ["X-Client: wsmon"], [("X-Client", "wsmon")]),
        "subprotocols": (["--subprotocol", "chat.v1"], ["chat.v1"], ["chat.v1"]),
        "origin": (["--origin", "https://a.example"], "https://a.example", "https://a.example"),
        "publish": (["--publish", "redis://h:1/0"], "redis://h:1/0", "redis://h:1/0"),
        "node": (["--node", "node-a"], "node-a", "node-a"),
        "theme": (["--theme", "light"], "light", "light"),
    }


def flags_of(args: list[str]) -> dict[str, Any]:
    """What the generated click options give the command for ``args``."""
    seen: dict[str, Any] = {}

    @click.command()
    @target_options
    def command(limit_flags: tuple[str, ...], **flags: Any) -> None:
        seen.update(flags)

    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen


def toml_value(value: Any) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists of them are TOML as JSON writes them


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for key in TARGET_ENV:
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def write_toml(path: Path, section: str, key: str, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[{section}]\n{key} = {toml_value(value)}\n")
    path.chmod(0o600)  # a [targets] server command is only taken from a file that is the user's alone


# --- the definitions ---------------------------------------------------------------------------------


def test_every_setting_has_a_key_a_section_a_help_and_a_flag_or_says_why_not() -> None:
    keys = [setting.key for setting in SETTINGS]
    assert len(keys) == len(set(keys))
    assert set(SECTIONS.values()) == {"targets", "probe", "attach", "metrics", "ui", "fleet"}
    for setting in SETTINGS:
        assert setting.option.help.strip(), setting.key
        assert callable(setting.option.parse), setting.key
        if setting.flag is None:
            # Only what no flag can spell: an array of tables.
            assert setting.key == "first_exchange"
        else:
            assert setting.flag.startswith("--"), setting.key
    environment = {setting.key: setting.option.env for setting in SETTINGS if setting.option.env}
    assert environment == {"url": "WSMON_URL", "redis": "REDIS_URL", "postgres": "DATABASE_URL"}


def test_every_setting_with_a_flag_has_a_sample_here(tmp_path: Path) -> None:
    assert set(samples(tmp_path)) == {setting.key for setting in SETTINGS if setting.flag is not None}


def test_the_generated_flags_are_named_by_their_settings() -> None:
    flags = flags_of([])
    assert {setting.key for setting in SETTINGS if setting.flag is not None} <= set(flags)
    assert flags["follow"] is None and flags["trust_config"] is None


# --- one value from each place ---------------------------------------------------------------------


@pytest.mark.parametrize("key", [setting.key for setting in SETTINGS if setting.flag is not None])
def test_a_flag_and_a_toml_key_give_the_same_typed_value(key: str, workdir: Path) -> None:
    args, raw, parsed = samples(workdir)[key]
    from_flag = resolve_options(flags_of(args), load_settings(cwd=workdir))
    assert getattr(from_flag, key) == parsed
    write_toml(workdir / "wsmon.toml", SECTIONS[key], key, raw)
    from_toml = resolve_options({}, load_settings(cwd=workdir))
    assert getattr(from_toml, key) == parsed


@pytest.mark.parametrize("key", [setting.key for setting in SETTINGS if setting.option.env])
def test_a_variable_gives_the_same_value_and_sits_between_flag_and_toml(
    key: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting = next(s for s in SETTINGS if s.key == key)
    assert setting.option.env is not None
    scheme = {"url": "ws", "redis": "redis", "postgres": "postgresql"}[key]
    flag, env, cwd, user = (f"{scheme}://{layer}:1/x" for layer in ("flag", "env", "cwd", "user"))
    write_toml(workdir / "xdg" / "wsmon" / "wsmon.toml", "targets", key, user)
    write_toml(workdir / "wsmon.toml", "targets", key, cwd)

    def winner(**flags: Any) -> Any:
        return getattr(resolve_options(flags, load_settings(cwd=workdir)), key)

    assert winner() == cwd
    monkeypatch.setenv(setting.option.env, env)
    assert winner() == env
    assert winner(**{key: flag}) == flag
    (workdir / "wsmon.toml").unlink()
    monkeypatch.delenv(setting.option.env)
    assert winner() == user


@pytest.mark.parametrize("key", [setting.key for setting in SETTINGS if setting.flag is not None])
def test_a_flag_beats_the_working_directory_which_beats_the_user_config(key: str, workdir: Path) -> None:
    args, raw, parsed = samples(workdir)[key]
    section = SECTIONS[key]
    others = {
        "server": "false",
        "taps": ["9002=ws://h:2"],
        "logs": ["other.log"],
        "feeds": ["redis://h/0#other"],
        "pid": 43,
        "port": 8081,
        "series": ["down"],
        "interval": 2,
        "cpu_basis": "core",
        "probes": 4,
        "tap_workers": 3,
        "reconnect_every": 7,
        "insecure": False,
        "ca_file": pem(workdir, "other.pem"),
        "headers": ["X-Other: 1"],
        "subprotocols": ["other.v1"],
        "origin": "https://other.example",
    }
    if key in others:
        other = others[key]
    else:  # a string: another host, or another word
        other = raw.replace("://h", "://other") if "://h" in raw else f"{raw}-other"
    user, cwd = workdir / "xdg" / "wsmon" / "wsmon.toml", workdir / "wsmon.toml"
    write_toml(user, section, key, other)
    write_toml(cwd, section, key, raw)
    assert getattr(resolve_options({}, load_settings(cwd=workdir)), key) == parsed
    write_toml(cwd, section, key, other)
    write_toml(user, section, key, raw)
    assert getattr(resolve_options({}, load_settings(cwd=workdir)), key) != parsed
    assert getattr(resolve_options(flags_of(args), load_settings(cwd=workdir)), key) == parsed
    cwd.unlink()
    assert getattr(resolve_options({}, load_settings(cwd=workdir)), key) == parsed


# --- one line for a bad value, wherever it came from ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "bad", "expectation"),
    [
        ("port", 70000, "expected a port number 1-65535, got 70000"),
        ("interval", 0, "expected a positive number of seconds, got 0"),
        ("probes", 99, "expected a number of probe connections 0-50, got 99"),
        ("cpu_basis", "gpu", "expected one of core, machine, got 'gpu'"),
        (
            "redis",
            "http://x",
            "expected a URL starting with redis:// or rediss:// or unix://, got 'http://x'",
        ),
        ("taps", ["9001"], "'9001': expected LISTEN=UPSTREAM, e.g. 127.0.0.1:9001=ws://127.0.0.1:3001"),
        ("feeds", ["redis://h/0"], "redis://h/0: name the channel after '#'"),
        ("origin", "ftp://x", "expected an origin such as https://app.example.com, got 'ftp://x'"),
    ],
)
def test_a_bad_value_is_the_same_line_from_a_flag_and_from_wsmon_toml(
    key: str, bad: Any, expectation: str, workdir: Path
) -> None:
    setting = next(s for s in SETTINGS if s.key == key)
    with pytest.raises(ConfigError) as from_flag:
        resolve_options({key: bad}, load_settings(cwd=workdir))
    assert str(from_flag.value).startswith(f"{setting.where}: {expectation}")
    write_toml(workdir / "wsmon.toml", SECTIONS[key], key, bad)
    with pytest.raises(ConfigError) as from_toml:
        resolve_options({}, load_settings(cwd=workdir))
    where = f"{workdir / 'wsmon.toml'} [{SECTIONS[key]}].{key}"
    assert str(from_toml.value).startswith(f"{where}: {expectation}")
    assert str(from_toml.value).removeprefix(where) == str(from_flag.value).removeprefix(setting.where)


def test_a_bad_variable_names_the_variable(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@db/app")
    with pytest.raises(ConfigError) as caught:
        resolve_options({}, load_settings(cwd=workdir))
    assert str(caught.value) == (
        "environment DATABASE_URL: expected a URL starting with postgresql:// or postgres://, "
        "got 'mysql://root:***@db/app'"
    )


# --- specs are parsed once ---------------------------------------------------------------------------


def test_tap_and_feed_specs_are_parsed_once_and_reach_the_sources_typed(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_tap, real_feed = config_specs.parse_tap_spec, config_specs.parse_feed_spec

    def counted_tap(spec: str) -> TapSpec:
        calls.append(spec)
        return real_tap(spec)

    def counted_feed(spec: str) -> FeedSpec:
        calls.append(spec)
        return real_feed(spec)

    monkeypatch.setattr(config_specs, "parse_tap_spec", counted_tap)
    monkeypatch.setattr(config_specs, "parse_feed_spec", counted_feed)
    flags = flags_of(["--tap", "[::1]:9001=ws://[::1]:3001", "--feed", "postgresql://db/app#events"])
    options = resolve_options(flags, load_settings(cwd=workdir))
    assert options.taps == [TapSpec(HostPort("::1", 9001), "ws://[::1]:3001")]
    assert options.feeds == [FeedSpec("postgres", "postgresql://db/app", "events")]

    sources = build_sources(options)
    tap = next(source for source in sources if isinstance(source, TapSource))
    feed = next(source for source in sources if isinstance(source, FeedSource))
    assert (tap.listen_host, tap.upstream_url) == ("::1", "ws://[::1]:3001")
    assert tap.workers == options.tap_workers == 1
    assert feed.spec is options.feeds[0]
    assert calls == ["[::1]:9001=ws://[::1]:3001", "postgresql://db/app#events"]


async def test_checks_read_the_typed_specs_too() -> None:
    options = AttachOptions(
        taps=[TapSpec(HostPort("127.0.0.1", 0), "ws://127.0.0.1:1/")],
        feeds=[FeedSpec("redis-pubsub", "redis://:pw@127.0.0.1:1/0", "ch")],
    )
    rows = await run_checks(options)
    assert [(row.target, row.address) for row in rows] == [
        ("tap", "ws://127.0.0.1:1/"),
        ("feed", "redis://:***@127.0.0.1:1/0#ch"),
    ]


# --- the tap spec and HOST:PORT ----------------------------------------------------------------------


def test_tap_spec_parses_listen_and_upstream() -> None:
    def parsed(spec: str) -> tuple[str, int, str]:
        tap = parse_tap_spec(spec)
        return tap.listen.host, tap.listen.port, tap.upstream

    assert parsed("127.0.0.1:9001=ws://127.0.0.1:3001") == ("127.0.0.1", 9001, "ws://127.0.0.1:3001")
    assert parsed("9001=wss://example.com/ws") == ("127.0.0.1", 9001, "wss://example.com/ws")
    assert parsed("0.0.0.0:0=ws://h:1") == ("0.0.0.0", 0, "ws://h:1")
    assert parsed("[::1]:9001=ws://[::1]:3001") == ("::1", 9001, "ws://[::1]:3001")


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("127.0.0.1:9001", "expected LISTEN=UPSTREAM"),
        ("9001=http://x:1", "ws:// or wss://"),
        ("host:port=ws://x:1", "listening port"),
        ("9001=ws://x:99999", "bad upstream URL"),
        ("70000=ws://x:1", "listening port"),
        ("²=ws://x:1", "listening port"),
    ],
)
def test_tap_spec_errors_are_one_clear_line(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as error:
        parse_tap_spec(spec)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", HostPort("127.0.0.1", 9464)),
        (":9464", HostPort("default", 9464)),
        ("9464", HostPort("default", 9464)),
        ("[::1]:9464", HostPort("::1", 9464)),
        ("[]:0", HostPort("default", 0)),
    ],
)
def test_host_port(text: str, expected: HostPort) -> None:
    assert HostPort.parse(text, default_host="default") == expected


@pytest.mark.parametrize(
    ("text", "part"), [("h:port", "port"), ("h:-1", "port"), ("h:", "port"), ("h:65536", "range")]
)
def test_host_port_says_which_part_is_wrong(text: str, part: str) -> None:
    with pytest.raises(HostPortError) as caught:
        HostPort.parse(text, default_host="h")
    assert caught.value.part == part


def test_host_port_prints_v6_in_brackets() -> None:
    assert str(HostPort("::1", 1)) == "[::1]:1" and str(HostPort("h", 2)) == "h:2"


def test_the_documented_table_is_the_definitions() -> None:
    from wsmon.config.options import settings_table

    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert settings_table() in docs
