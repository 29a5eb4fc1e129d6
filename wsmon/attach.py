"""`wsmon attach` and `wsmon check`: which targets to watch, resolved from flags, environment and
wsmon.toml, and the sources that watch them.

Precedence for every setting: the flag, then the environment (WSMON_URL, REDIS_URL, DATABASE_URL;
a .env in the working directory counts as environment), then [targets]/[probe]/[attach] in
wsmon.toml (working directory first, then the user config directory).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shlex
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any

from wsmon.config import ConfigError, Settings
from wsmon.core.limits import Limit
from wsmon.core.redact import redact_argv, redact_header, redact_url
from wsmon.core.sanitize import shown_key
from wsmon.session import Session, Source
from wsmon.sources.base import CheckResult
from wsmon.sources.delivery import DeliveryRules
from wsmon.sources.feeds import FeedSource, FeedSpec, FeedSpecError, parse_feed_spec
from wsmon.sources.http import HealthSource, MetricsSource
from wsmon.sources.logs.rules import RuleError, load_rules
from wsmon.sources.logs.source import LogFileSource, StdinLogSource
from wsmon.sources.postgres import PostgresSource
from wsmon.sources.probe import DEFAULT_RECONNECT_S, ExchangeStep, ProbeConfig, ProbeSource
from wsmon.sources.process import ProcessSource, pid_from_name, pid_from_port, port_of_local_url
from wsmon.sources.redis_source import RedisSource
from wsmon.sources.server import ServerSource
from wsmon.sources.tap import TapSource, parse_tap_spec

ENV_KEYS = {"url": "WSMON_URL", "redis": "REDIS_URL", "postgres": "DATABASE_URL"}
CHECK_TIMEOUT_S = 10.0


@dataclass
class AttachOptions:
    url: str | None = None
    redis: str | None = None
    postgres: str | None = None
    health: str | None = None
    metrics: str | None = None
    series: list[str] = field(default_factory=list)
    pid: int | None = None
    port: int | None = None
    process: str | None = None
    interval: float = 1.0
    cpu_basis: str = "core"
    probes: int = 2
    reconnect_every: float = DEFAULT_RECONNECT_S  # seconds a probe connection lives; 0: until closed
    request: str | None = None
    reply_contains: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    # How the probes open like a real client; header values are resolved (env:NAME) secrets.
    headers: list[tuple[str, str]] = field(default_factory=list)
    subprotocols: list[str] = field(default_factory=list)
    origin: str | None = None
    first_exchange: list[ExchangeStep] = field(default_factory=list)
    server: str | None = None  # a server command wsmon starts itself
    server_where: str = ""  # where it came from: a flag, or a wsmon.toml (said before starting it)
    taps: list[str] = field(default_factory=list)  # LISTEN=UPSTREAM
    logs: list[str] = field(default_factory=list)  # files to follow, or "-" for stdin
    # --follow / --no-follow; None: a file is followed like tail -F, standard input read to its end.
    follow: bool | None = None
    feeds: list[str] = field(default_factory=list)  # redis://…#channel, postgresql://…#channel
    capture_payloads: bool = False
    log_rules: list[Any] = field(default_factory=list)  # from wsmon.toml [[log.rules]]
    delivery_rules: DeliveryRules = field(default_factory=DeliveryRules)  # from wsmon.toml [delivery]
    delivery_timeout: float = 5.0

    def configured(self) -> list[str]:
        names = [n for n in ("url", "server", "redis", "postgres", "health", "metrics") if getattr(self, n)]
        names += [n for n in ("taps", "logs", "feeds") if getattr(self, n)]
        if self.process_wanted():
            names.append("process")
        return names

    def process_port(self) -> int | None:
        if self.port is not None:
            return self.port
        return port_of_local_url(self.url) if self.url else None

    def process_wanted(self) -> bool:
        return (
            self.server is not None
            or self.pid is not None
            or self.process is not None
            or self.process_port() is not None
        )


# --- resolution ------------------------------------------------------------------------------------


def _expect(value: Any, kind: type | UnionType | tuple[type, ...], where: str, expected: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    return value


def _url(value: Any, where: str, schemes: tuple[str, ...]) -> str:
    text = _expect(value, str, where, f"a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if not text.startswith(tuple(s + "://" for s in schemes)):
        shown = redact_url(text)
        raise ConfigError(
            f"{where}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {shown!r}"
        )
    return text


def _port(value: Any, where: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    port = _expect(value, int, where, "a port number 1-65535")
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: expected a port number 1-65535, got {port}")
    return port


def _positive(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number of seconds, got {value!r}") from None
    number = _expect(value, int | float, where, "a positive number of seconds")
    if not number > 0 or not math.isfinite(number):  # nan and inf too: a sleep of nan never returns
        raise ConfigError(f"{where}: expected a positive number of seconds, got {number}")
    return float(number)


def _count(value: Any, where: str) -> int:
    number = _expect(value, int, where, "a whole number")
    if number < 1:
        raise ConfigError(f"{where}: expected a whole number of at least 1, got {number}")
    return int(number)


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of series names, got {value!r}")
    return list(value)


def _reconnect_every(value: Any, where: str) -> float:
    if value == 0 or value == "0":
        return 0.0  # never on purpose: each probe connection lives until the server closes it
    return _positive(value, where)


def _probe_count(value: Any, where: str) -> int:
    count = _expect(value, int, where, "a number of probe connections 0-50")
    if not 0 <= count <= 50:
        raise ConfigError(f"{where}: expected a number of probe connections 0-50, got {count}")
    return count


def _pid(value: Any, where: str) -> int:
    pid = _expect(value, int, where, "a process id")
    if pid <= 0:
        raise ConfigError(f"{where}: expected a process id, got {pid}")
    return pid


def _ca_file(value: Any, where: str) -> str:
    path = _expect(value, str, where, "a path to a PEM file")
    if not Path(path).is_file():
        raise ConfigError(f"{where}: expected a path to a readable PEM file, got {path!r}")
    return path


# RFC 9110 token: what a header name or a subprotocol may be.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by the handshake itself; two would confuse a server. Origin and subprotocols have their own flags.
_HANDSHAKE_HEADERS = {
    "host": "",
    "upgrade": "",
    "connection": "",
    "sec-websocket-key": "",
    "sec-websocket-version": "",
    "sec-websocket-extensions": "",
    "sec-websocket-protocol": " (use --subprotocol)",
    "origin": " (use --origin)",
}


def _headers(value: Any, where: str) -> list[tuple[str, str]]:
    """'Name: value' strings (the flag, a TOML list) or a TOML table of name = value. Values are not
    echoed in errors: they are credentials."""
    if isinstance(value, dict):
        pairs = []
        for name, text in value.items():
            if not isinstance(text, str):
                raise ConfigError(
                    f"{where}.{shown_key(name)}: expected a string value, got a {type(text).__name__}"
                )
            pairs.append((str(name), text.strip()))
    else:
        lines = [value] if isinstance(value, str) else value
        if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
            raise ConfigError(f"{where}: expected 'Name: value' strings or a table of name = value")
        pairs = []
        for line in lines:
            name, sep, text = line.partition(":")
            if not sep:
                raise ConfigError(f"{where}: expected 'Name: value', got {redact_header(line)!r}")
            pairs.append((name.strip(), text.strip()))
    for name, _ in pairs:
        if not _TOKEN.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a header name")
        reserved = _HANDSHAKE_HEADERS.get(name.lower())
        if reserved is not None:
            raise ConfigError(f"{where}: {name} is set by the WebSocket handshake itself{reserved}")
    return pairs


_ENV_WORD = re.compile(r"(?<!\S)env:([A-Za-z_][A-Za-z0-9_]*)(?!\S)")


def _resolve_env_refs(pairs: list[tuple[str, str]], settings: Settings, where: str) -> list[tuple[str, str]]:
    """Each word ``env:NAME`` of a header value becomes that variable (environment, then .env), so the
    secret stays out of the command line and of a committed wsmon.toml."""

    resolved = []
    for header, text in pairs:
        for name in _ENV_WORD.findall(text):
            if not settings.env.get(name):
                raise ConfigError(f"{where}: {header}: environment variable {name} is not set (nor in .env)")
        value = _ENV_WORD.sub(lambda match: settings.env[match.group(1)].strip(), text)
        if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
            # A line break would end the header early and start another: not a value a server reads.
            raise ConfigError(f"{where}: {header}: the value has a line break or a control character")
        resolved.append((header, value))
    return resolved


def _subprotocols(value: Any, where: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(
        isinstance(n, str) and _TOKEN.fullmatch(n) for n in names
    ):
        raise ConfigError(f"{where}: expected subprotocol names such as chat.v1, got {value!r}")
    return list(names)


def _origin(value: Any, where: str) -> str:
    text = _expect(value, str, where, "an origin such as https://app.example.com")
    if text != "null" and not re.fullmatch(r"https?://[^/?#\s]+", text):
        raise ConfigError(f"{where}: expected an origin such as https://app.example.com, got {text!r}")
    return text


def _first_exchange(value: Any, where: str) -> list[ExchangeStep]:
    """[[probe.first_exchange]] tables: send (a string, or a table sent as JSON), expect (a substring,
    or a table the JSON reply must contain), timeout (seconds, default 5)."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigError(f"{where}: expected [[probe.first_exchange]] tables with send and expect")
    steps = []
    for number, item in enumerate(items, 1):
        at = f"{where}[{number}]"
        unknown = sorted(set(item) - {"send", "expect", "timeout"})
        if unknown:
            raise ConfigError(
                f"{at}.{shown_key(unknown[0])}: unknown key; expected one of expect, send, timeout"
            )
        send, expect = item.get("send"), item.get("expect")
        if send is None and expect is None:
            raise ConfigError(f"{at}: expected send, expect or both")
        if send is not None and not isinstance(send, str | dict | list):
            raise ConfigError(f"{at}.send: expected a string or a table (sent as JSON), got {send!r}")
        if expect is not None and not isinstance(expect, str | dict):
            raise ConfigError(
                f"{at}.expect: expected a substring or a table the reply contains, got {expect!r}"
            )
        text = send if isinstance(send, str) or send is None else json.dumps(send, ensure_ascii=False)
        timeout = _positive(item["timeout"], f"{at}.timeout") if "timeout" in item else 5.0
        steps.append(ExchangeStep(send=text, expect=expect, timeout=timeout))
    return steps


_VALIDATORS: dict[str, Any] = {
    "url": lambda v, w: _url(v, w, ("ws", "wss")),
    "redis": lambda v, w: _url(v, w, ("redis", "rediss", "unix")),
    "postgres": lambda v, w: _url(v, w, ("postgresql", "postgres")),
    "health": lambda v, w: _url(v, w, ("http", "https")),
    "metrics": lambda v, w: _url(v, w, ("http", "https")),
    "pid": _pid,
    "port": _port,
    "process": lambda v, w: _expect(v, str, w, "a process name or command-line fragment"),
    "interval": _positive,
    "cpu_basis": lambda v, w: _choice(v, w, ("core", "machine")),
    "probes": _probe_count,
    "reconnect_every": _reconnect_every,
    "request": lambda v, w: _expect(v, str, w, "a message template"),
    "reply_contains": lambda v, w: _expect(v, str, w, "a substring of the reply"),
    "ca_file": _ca_file,
    "insecure": lambda v, w: _expect(v, bool, w, "true or false"),
    "headers": _headers,
    "subprotocols": _subprotocols,
    "origin": _origin,
    "first_exchange": _first_exchange,
    "series": _string_list,
    "server": lambda v, w: _expect(v, str, w, "a server command line"),
    "taps": lambda v, w: _specs(v, w, _tap_spec),
    "logs": lambda v, w: _specs(v, w, lambda x, _w: x),
    "feeds": lambda v, w: _specs(v, w, _feed_spec),
    "capture_payloads": lambda v, w: _expect(v, bool, w, "true or false"),
}
# Where each key lives in wsmon.toml.
_SECTIONS = {
    "url": "targets",
    "redis": "targets",
    "postgres": "targets",
    "health": "targets",
    "metrics": "targets",
    "pid": "targets",
    "port": "targets",
    "process": "targets",
    "interval": "attach",
    "cpu_basis": "attach",
    "probes": "probe",
    "reconnect_every": "probe",
    "request": "probe",
    "reply_contains": "probe",
    "ca_file": "probe",
    "insecure": "probe",
    "headers": "probe",
    "subprotocols": "probe",
    "origin": "probe",
    "first_exchange": "probe",
    "series": "metrics",
    "server": "targets",
    "taps": "targets",
    "logs": "targets",
    "feeds": "targets",
    "capture_payloads": "attach",
}


def _specs(value: Any, where: str, check: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return [check(item, where) for item in items]


def _tap_spec(spec: str, where: str) -> str:
    try:
        parse_tap_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('--tap ')}") from None
    return spec


def _feed_spec(spec: str, where: str) -> str:
    try:
        parse_feed_spec(spec)
    except FeedSpecError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('--feed ')}") from None
    return spec


def _flag_name(key: str) -> str:
    if key == "url":
        return "the URL argument"
    if key in ("taps", "logs", "feeds", "headers", "subprotocols"):
        return f"--{key[:-1]}"
    return "--ca" if key == "ca_file" else f"--{key.replace('_', '-')}"


def check_config_tables(settings: Settings) -> None:
    """A section of ours that is not a table, or a key in it that nothing reads, is a mistake (a typo
    would otherwise be silently ignored). Other sections belong to other commands and are left alone."""
    for path, data in settings.tables:
        for section in sorted(set(_SECTIONS.values())):
            if section not in data:
                continue
            table = data[section]
            known = sorted(key for key, home in _SECTIONS.items() if home == section)
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{path} [{section}]: expected a table with keys {', '.join(known)}, got {table!r}"
                )
            for key in table:
                if key not in known:
                    raise ConfigError(
                        f"{path} [{section}].{shown_key(key)}: unknown key; "
                        f"expected one of {', '.join(known)}"
                    )


def resolve_options(flags: Mapping[str, Any], settings: Settings) -> AttachOptions:
    """Flags (None = not given), then environment, then the config files."""
    check_config_tables(settings)
    options = AttachOptions()
    for key, validate in _VALIDATORS.items():
        value: Any = flags.get(key)
        where = _flag_name(key)
        if value is None or value == () or value == []:
            value, where = None, ""
            env_key = ENV_KEYS.get(key)
            if env_key and settings.env.get(env_key):
                value, where = settings.env[env_key], settings.env_where(env_key)
            else:
                found = settings.lookup(_SECTIONS[key], key)
                if found is not None:
                    value, where = found
        if value is None:
            continue
        setattr(options, key, validate(value, where))
        if key == "headers":
            options.headers = _resolve_env_refs(options.headers, settings, where)
        if key == "server":
            options.server_where = where
            _refuse_untrusted_command(settings, where, trusted=bool(flags.get("trust_config")))
    options.log_rules = _log_rules(settings)
    options.delivery_rules, options.delivery_timeout = _delivery_rules(settings)
    return options


def _refuse_untrusted_command(settings: Settings, where: str, *, trusted: bool) -> None:
    """A command from a wsmon.toml runs on a plain `wsmon attach`: like git with safe.directory, refuse
    one from a file another user owns or may write to (a shared or downloaded checkout), unless the
    user says it is trusted."""
    path = next((p for p, data in settings.tables if where.startswith(f"{p} [")), None)
    if path is None or trusted:
        return  # a flag: the user typed it
    reason = untrusted_reason(path)
    if reason:
        raise ConfigError(
            f"{where}: refusing to run a command from a file {reason}; check it, then fix it "
            f"(chown, chmod go-w) or pass --trust-config"
        )


def untrusted_reason(path: Path) -> str:
    """Why a config file may not give commands to run: '' when it is the user's own and only theirs."""
    try:
        info = path.stat()
    except OSError as exc:
        return f"that cannot be checked ({exc.strerror})"
    if info.st_uid != os.getuid():
        return f"owned by another user (uid {info.st_uid}, you are {os.getuid()})"
    writable = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if info.st_mode & bit]
    if writable:
        return f"writable by {' and '.join(writable)} (mode {stat.S_IMODE(info.st_mode):04o})"
    return ""


def server_notice(options: AttachOptions) -> str:
    """The line said before a server command is started, naming where it came from."""
    if not options.server:
        return ""
    origin = "--server" if options.server_where in ("", "--server") else options.server_where
    return f"wsmon: starting the server command from {origin}: {_shown_command(options.server)}"


_DELIVERY_LISTS = (
    "id_paths",
    "ack_paths",
    "status_paths",
    "reason_paths",
    "pending_directions",
    "ack_directions",
)
_DELIVERY_SETS = ("failure_values", "request_types", "ack_types")
_DELIVERY_BOUNDS = ("value_max_depth", "value_max_strings", "value_max_bytes", "value_min_chars")


def _delivery_rules(settings: Settings) -> tuple[DeliveryRules, float]:
    """[delivery] from the highest-precedence config file that has it: how the tap pairs messages."""
    for path, data in settings.tables:
        table = data.get("delivery")
        if table is None:
            continue
        where = f"{path} [delivery]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        known = {*_DELIVERY_LISTS, *_DELIVERY_SETS, *_DELIVERY_BOUNDS}
        known |= {"success_path", "type_path", "timeout_s", "enabled", "match_values"}
        values: dict[str, Any] = {}
        timeout = 5.0
        for key, value in table.items():
            at = f"{where}.{shown_key(key)}"
            if key not in known:
                raise ConfigError(f"{at}: unknown key; expected one of {', '.join(sorted(known))}")
            if key == "timeout_s":
                timeout = _positive(value, at)
            elif key in ("enabled", "match_values"):
                values[key] = _expect(value, bool, at, "true or false")
            elif key in _DELIVERY_BOUNDS:
                values[key] = _count(value, at)
            elif key in ("success_path", "type_path"):
                values[key] = _expect(value, str, at, "a dotted JSON path")
            else:
                items = _specs(value, at, lambda item, _w: item)
                values[key] = frozenset(items) if key in _DELIVERY_SETS else tuple(items)
        for key in ("pending_directions", "ack_directions"):
            if not set(values.get(key, ())) <= {"in", "out"}:
                raise ConfigError(f'{where}.{key}: expected a list of "in" and "out"')
        return DeliveryRules(**values), timeout
    return DeliveryRules(), 5.0


def _log_rules(settings: Settings) -> list[Any]:
    """[[log.rules]] from the highest-precedence config file that has any."""
    for path, data in settings.tables:
        if isinstance(data.get("log"), dict) and "rules" in data["log"]:
            try:
                return load_rules(data, str(path))
            except RuleError as exc:
                raise ConfigError(str(exc)) from None
    return []


# --- sources ---------------------------------------------------------------------------------------


def build_sources(options: AttachOptions) -> list[Source]:
    sources: list[Source] = []
    server: ServerSource | None = None
    if options.server:
        server = ServerSource(options.server, target="server", rules=options.log_rules)
        sources.append(server)
    for number, spec in enumerate(options.taps, 1):
        host, port, upstream = parse_tap_spec(spec)
        tap = TapSource(
            host,
            port,
            upstream,
            target=tap_names(options)[number - 1],
            interval=options.interval,
            capture_payloads=options.capture_payloads,
            rules=options.delivery_rules,
            delivery_timeout_s=options.delivery_timeout,
            # The tap fronts the server whose log wsmon reads: the tap's rows own the counts.
            covers=log_names(options),
            starting=server is not None,
        )
        if server is not None:
            server.exit_listeners.append(tap.upstream_exited)
        sources.append(tap)
    for name, path in zip(log_names(options)[1 if server else 0 :], options.logs, strict=True):
        if path == "-":
            follow = options.follow is True
            sources.append(StdinLogSource(target="stdin", parser_rules=options.log_rules, follow=follow))
        else:
            follow = options.follow is not False
            sources.append(LogFileSource(path, target=name, parser_rules=options.log_rules, follow=follow))
    for number, spec in enumerate(options.feeds, 1):
        sources.append(FeedSource(spec, target="feed" if len(options.feeds) == 1 else f"feed{number}"))
    if options.url and options.probes > 0:
        sources.append(ProbeSource(_probe_config(options)))
    process = _process_source(options, server)
    if process is not None:
        sources.append(process)
    if options.redis:
        sources.append(RedisSource(options.redis, interval=options.interval))
    if options.postgres:
        sources.append(PostgresSource(options.postgres, interval=options.interval))
    if options.health:
        sources.append(HealthSource(options.health, interval=options.interval))
    if options.metrics:
        sources.append(MetricsSource(options.metrics, interval=options.interval, series=options.series))
    return sources


def tap_names(options: AttachOptions) -> list[str]:
    return ["tap"] if len(options.taps) == 1 else [f"tap{n}" for n in range(1, len(options.taps) + 1)]


def log_names(options: AttachOptions) -> list[str]:
    """The targets whose lines are the server's log: a --server's output, then each --log."""
    names = ["server"] if options.server else []
    for number, path in enumerate(options.logs, 1):
        names.append("stdin" if path == "-" else "log" if len(options.logs) == 1 else f"log{number}")
    return names


def starting_targets(options: AttachOptions) -> list[str]:
    """With --server, wsmon starts the server: it and whatever watches it are STARTING until they first
    answer, so the server's start-up is not reported as their outage."""
    if not options.server:
        return []
    names = ["server", *tap_names(options)]
    if options.url and options.probes > 0:
        names.append("websocket")
    if options.process_wanted():
        names.append("process")
    names += [name for name in ("health", "metrics") if getattr(options, name)]
    return names


def _probe_config(options: AttachOptions) -> ProbeConfig:
    assert options.url is not None
    return ProbeConfig(
        url=options.url,
        count=max(options.probes, 1),
        interval=options.interval,
        reconnect_every=options.reconnect_every,
        request=options.request,
        reply_contains=options.reply_contains,
        ca_file=options.ca_file,
        insecure=options.insecure,
        headers=tuple(options.headers),
        subprotocols=tuple(options.subprotocols),
        origin=options.origin,
        first_exchange=tuple(options.first_exchange),
    )


def _process_source(options: AttachOptions, server: ServerSource | None) -> ProcessSource | None:
    port = options.process_port()
    common = {"interval": options.interval, "cpu_basis": options.cpu_basis}
    if server is not None and options.pid is None and options.process is None:
        # The server wsmon started is the process to watch, whatever port it listens on.
        return ProcessSource(lambda: server.pid, port=port, **common)
    if options.pid is not None:
        return ProcessSource.for_pid(options.pid, port=port, **common)
    if options.process is not None:
        return ProcessSource.for_name(options.process, port=port, **common)
    if port is not None:
        return ProcessSource.for_port(port, **common)
    return None


def targets_of(options: AttachOptions) -> list[dict[str, str]]:
    out = []
    for name in ("url", "redis", "postgres", "health", "metrics"):
        value = getattr(options, name)
        if value:
            # The same name and kind as the source's TargetAdded, so header and events agree.
            target = "websocket" if name == "url" else name
            kind = {"url": "websocket", "health": "http", "metrics": "http"}.get(name, name)
            out.append({"name": target, "kind": kind, "address": redact_url(value)})
    if options.process_wanted():
        how = (
            f"pid {options.pid}"
            if options.pid is not None
            else f"name {options.process}"
            if options.process
            else f"port {options.process_port()}"
        )
        out.append({"name": "process", "kind": "process", "address": how})
    return out


def reads_finite_logs_only(options: AttachOptions) -> bool:
    """Only saved logs read to their end (no --follow), nothing live: a headless session can end with
    them (`wsmon attach --log - --headless < saved.log`)."""
    if options.configured() != ["logs"] or options.follow is True:
        return False
    return options.follow is False or all(path == "-" for path in options.logs)


def build_attach_session(
    options: AttachOptions, *, limits: tuple[Limit, ...], record: Path | None, duration: float | None
) -> Session:
    title = "attach · " + (redact_url(options.url) if options.url else ", ".join(options.configured()))
    return Session(
        build_sources(options),
        title=title,
        limits=limits,
        record=record,
        command="wsmon attach " + " ".join(options.configured()),
        targets=targets_of(options),
        duration=duration,
        starting=starting_targets(options),
    )


# --- check -----------------------------------------------------------------------------------------


@dataclass
class CheckRow:
    target: str
    address: str
    result: CheckResult


async def _check_process(options: AttachOptions) -> CheckResult:
    started = time.perf_counter()
    port = options.process_port()
    if options.pid is not None:
        import psutil

        ok = psutil.pid_exists(options.pid)
        error = "" if ok else f"no process with pid {options.pid}"
    elif options.process is not None:
        ok = await asyncio.to_thread(pid_from_name, options.process) is not None
        error = "" if ok else f"no process named {options.process!r}"
    else:
        assert port is not None
        ok = await asyncio.to_thread(pid_from_port, port) is not None
        error = "" if ok else f"no process of this user is listening on port {port}"
    ms = (time.perf_counter() - started) * 1000.0
    hint = "" if ok else "start the server, or run wsmon as the server's user"
    return CheckResult(ok=ok, latency_ms=ms, error=error, hint=hint, kind="" if ok else "missing")


async def _check_server_command(command: str) -> CheckResult:
    """`--server CMD` is started by wsmon later: what can be checked now is that its program exists."""
    started = time.perf_counter()
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return CheckResult(ok=False, error=f"not a command line: {exc}", kind="usage")
    program = argv[0] if argv else ""
    found = shutil.which(program) if program else None
    ms = (time.perf_counter() - started) * 1000.0
    if found is None:
        error = "empty command" if not program else f"{program}: no such executable"
        hint = "check the program's name and PATH, or give its full path"
        return CheckResult(ok=False, latency_ms=ms, error=error, hint=hint, kind="missing")
    return CheckResult(ok=True, latency_ms=ms)


async def _check_log_file(path: str) -> CheckResult:
    """A `--log FILE` must exist and be readable now; `-` (stdin) needs nothing."""
    started = time.perf_counter()
    error, hint = "", ""
    if path != "-":
        if not os.path.exists(path):
            error, hint = "no such file", "start the server first, or check the path"
        elif os.path.isdir(path):
            error, hint = "a directory, not a file", "give the log file itself"
        elif not os.access(path, os.R_OK):
            error, hint = "not readable", "run wsmon as a user who may read it"
    ms = (time.perf_counter() - started) * 1000.0
    return CheckResult(ok=not error, latency_ms=ms, error=error, hint=hint, kind="missing" if error else "")


def _tap_check(options: AttachOptions, upstream: str) -> Any:
    """A tap is only as good as its upstream: connect to it as a probe would."""
    config = ProbeConfig(url=upstream, count=1, ca_file=options.ca_file, insecure=options.insecure)
    return ProbeSource(config).check()


def _feed_check(spec: FeedSpec) -> Any:
    source = PostgresSource(spec.url) if spec.kind == "postgres" else RedisSource(spec.url)
    return source.check()


def _shown_command(command: str) -> str:
    try:
        return shlex.join(redact_argv(shlex.split(command)))
    except ValueError:
        return redact_url(command)


def _numbered(kind: str, count: int, number: int) -> str:
    return kind if count == 1 else f"{kind}{number}"


async def run_checks(options: AttachOptions) -> list[CheckRow]:
    """One pass over every configured target, concurrently, each bounded in time."""
    jobs: list[tuple[str, str, Any]] = []
    if options.server:
        jobs.append(("server", _shown_command(options.server), _check_server_command(options.server)))
    for number, spec in enumerate(options.taps, 1):
        _, _, upstream = parse_tap_spec(spec)
        name = _numbered("tap", len(options.taps), number)
        jobs.append((name, redact_url(upstream), _tap_check(options, upstream)))
    for number, path in enumerate(options.logs, 1):
        name = "stdin" if path == "-" else _numbered("log", len(options.logs), number)
        jobs.append((name, path, _check_log_file(path)))
    for number, feed in enumerate(options.feeds, 1):
        spec = parse_feed_spec(feed)
        jobs.append((_numbered("feed", len(options.feeds), number), spec.shown, _feed_check(spec)))
    if options.url:
        jobs.append(("websocket", redact_url(options.url), ProbeSource(_probe_config(options)).check()))
    locatable = options.pid is not None or options.process is not None or options.process_port() is not None
    if locatable:
        jobs.append(("process", targets_of(options)[-1]["address"], _check_process(options)))
    if options.redis:
        jobs.append(("redis", redact_url(options.redis), RedisSource(options.redis).check()))
    if options.postgres:
        jobs.append(("postgres", redact_url(options.postgres), PostgresSource(options.postgres).check()))
    if options.health:
        jobs.append(("health", redact_url(options.health), HealthSource(options.health).check()))
    if options.metrics:
        jobs.append(
            (
                "metrics",
                redact_url(options.metrics),
                MetricsSource(options.metrics, series=options.series).check(),
            )
        )

    async def bounded(coro: Any) -> CheckResult:
        try:
            return await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT_S)
        except TimeoutError:
            return CheckResult(ok=False, error=f"no answer within {CHECK_TIMEOUT_S:.0f} s", kind="timeout")
        except Exception as exc:  # a check must report, never crash the table
            return CheckResult(ok=False, error=str(exc) or type(exc).__name__, kind="error")

    results = await asyncio.gather(*(bounded(job) for _, _, job in jobs))
    return [CheckRow(name, address, result) for (name, address, _), result in zip(jobs, results, strict=True)]
