"""The settings of `attach`, `check` and `run`, one definition each: the field of ``AttachOptions`` is
the setting's name, TOML key and parsed type; its ``Option`` says which wsmon.toml section holds it,
its flag, its environment variable, its help, and the parser that turns any raw value (a flag, the
environment, TOML) into the typed one. The commands' click options are made from these definitions
(``click_options``), so a flag, a key and a variable cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import click
import msgspec

from wsmon.config import values as v
from wsmon.config.specs import TapSpec, feed_specs, tap_specs
from wsmon.sources.delivery import DeliveryRules
from wsmon.sources.feeds import FeedSpec
from wsmon.sources.logs.rules import Rule
from wsmon.sources.probe import DEFAULT_RECONNECT_S, ExchangeStep
from wsmon.sources.process import port_of_local_url


@dataclass(frozen=True)
class Option:
    """How one setting is given. ``flag`` None: only in wsmon.toml (a table no flag can spell);
    ``argument``: the flag is the command's positional argument (or ``--url`` where a command's own
    arguments follow); ``click`` holds the flag's own click keywords (type, multiple, metavar…)."""

    section: str
    help: str
    parse: Callable[[Any, str], Any]
    flag: str | None = ""  # "": --the-key-with-dashes
    env: str | None = None
    argument: bool = False
    click: dict[str, Any] = field(default_factory=dict)


def _targets(help: str, parse: Callable[[Any, str], Any], **more: Any) -> Option:
    return Option("targets", help, parse, **more)


def _probe(help: str, parse: Callable[[Any, str], Any], **more: Any) -> Option:
    return Option("probe", help, parse, **more)


_http = v.urls("http", "https")
CPU_BASES = ("core", "machine")
_cpu_basis = v.choice_of(*CPU_BASES)


class AttachOptions(msgspec.Struct, kw_only=True):
    """What `attach`, `check` and `run` watch and how (and the dashboard's theme), resolved: flag, then
    environment, then wsmon.toml."""

    # fmt: off
    url: Annotated[str | None, Option(
        "targets", "The WebSocket server's URL, e.g. ws://127.0.0.1:3001/ (or WSMON_URL).",
        v.urls("ws", "wss"), env="WSMON_URL", argument=True)] = None
    server: Annotated[str | None, _targets(
        "Start this server command and watch it (its output is its log).",
        v.string_of("a server command line"))] = None
    taps: Annotated[list[TapSpec], _targets(
        "A pass-through in front of the server: 127.0.0.1:9001=ws://127.0.0.1:3001 (repeatable).",
        tap_specs, flag="--tap", click={"multiple": True, "metavar": "LISTEN=UPSTREAM"})] = []
    tap_workers: Annotated[int, _targets(
        "Processes that forward and read the tap's connections (default 1; with more, acks are paired "
        "in wsmon's own process).", v.count, click={"type": int, "metavar": "N"})] = 1
    logs: Annotated[list[str], _targets(
        "Follow the server's log file; - for stdin.",
        v.strings, flag="--log", click={"multiple": True, "metavar": "FILE"})] = []
    feeds: Annotated[list[FeedSpec], _targets(
        "Events published by the server: redis://host/db#channel, …#stream:KEY, postgresql://…#channel.",
        feed_specs, flag="--feed", click={"multiple": True, "metavar": "SPEC"})] = []
    redis: Annotated[str | None, _targets(
        "Redis URL, e.g. redis://127.0.0.1:6379/0 (or REDIS_URL).",
        v.urls("redis", "rediss", "unix"), env="REDIS_URL")] = None
    postgres: Annotated[str | None, _targets(
        "PostgreSQL URL, e.g. postgresql://user@host/db (or DATABASE_URL).",
        v.urls("postgresql", "postgres"), env="DATABASE_URL")] = None
    pid: Annotated[int | None, _targets(
        "Watch this process (and its children).", v.pid, click={"type": int})] = None
    port: Annotated[int | None, _targets(
        "Watch the process listening on this port.", v.port, click={"type": int})] = None
    process: Annotated[str | None, _targets(
        "Watch the process with this name or command line.",
        v.string_of("a process name or command-line fragment"))] = None
    health: Annotated[str | None, _targets("Poll this HTTP health URL.", _http)] = None
    metrics: Annotated[str | None, _targets("Scrape this Prometheus metrics URL.", _http)] = None
    series: Annotated[list[str], Option(
        "metrics", "A metrics series to show (repeatable).", v.string_list, click={"multiple": True})] = []
    interval: Annotated[float, Option(
        "attach", "Seconds between samples (default 1).", v.positive, click={"type": float})] = 1.0
    cpu_basis: Annotated[str, Option(
        "attach", "CPU as % of one core or of all.", _cpu_basis,
        click={"type": click.Choice(CPU_BASES)})] = "core"
    probes: Annotated[int, _probe(
        "Probe connections to the WebSocket URL (default 2).", v.probe_count, click={"type": int})] = 2
    # Seconds a probe connection lives; 0: until the server closes it.
    reconnect_every: Annotated[float, _probe(
        "Reopen each probe connection this often, timing its handshake again (default 30, 0 never).",
        v.reconnect_every, click={"type": float, "metavar": "SECONDS"})] = DEFAULT_RECONNECT_S
    request: Annotated[str | None, _probe(
        'A request the probes send, "{id}" replaced by a fresh id.',
        v.string_of("a message template"))] = None
    reply_contains: Annotated[str | None, _probe(
        'How to recognise its reply ("{id}" replaced too).', v.string_of("a substring of the reply"))] = None
    ca_file: Annotated[str | None, _probe(
        "A CA bundle for wss://.", v.ca_file, flag="--ca", click={"type": click.Path(dir_okay=False)})] = None
    insecure: Annotated[bool, _probe(
        "Do not verify TLS certificates.", v.boolean, click={"is_flag": True, "default": None})] = False
    # How the probes open like a real client; header values are resolved (env:NAME) secrets.
    headers: Annotated[list[tuple[str, str]], _probe(
        "A header the probes send in the handshake, e.g. 'Authorization: Bearer env:TOKEN' "
        "(env:NAME is read from the environment or .env; values are never shown) (repeatable).",
        v.headers, flag="--header", click={"multiple": True, "metavar": "'NAME: VALUE'"})] = []
    subprotocols: Annotated[list[str], _probe(
        "A subprotocol the probes offer.", v.subprotocols, flag="--subprotocol",
        click={"multiple": True})] = []
    origin: Annotated[str | None, _probe(
        "The Origin header the probes send, e.g. https://app.example.com.", v.origin)] = None
    first_exchange: Annotated[list[ExchangeStep], _probe(
        "Messages exchanged right after the handshake, before the probe counts as open.",
        v.first_exchange, flag=None)] = []
    publish: Annotated[str | None, Option(
        "fleet", "Publish this session's events to a Redis Stream for `wsmon fleet`, e.g. redis://host:6379/0.",
        v.urls("redis", "rediss", "unix"))] = None
    node: Annotated[str | None, Option(
        "fleet", "This node's name in the fleet (default: the host name).", v.node_name)] = None
    theme: Annotated[str | None, Option(
        "ui", "The dashboard's theme (default: the one last chosen with t, else dark).",
        v.string_of("a theme name"), click={"metavar": "NAME"})] = None
    # fmt: on

    # Not settings: what the command line or the other sections of wsmon.toml add.
    server_where: str = ""  # where `server` came from: a flag, or a wsmon.toml (said before starting it)
    # --follow / --no-follow; None: a file is followed like tail -F, standard input read to its end.
    follow: bool | None = None
    log_rules: list[Rule] = []  # [[log.rules]]
    delivery_rules: DeliveryRules = msgspec.field(default_factory=DeliveryRules)  # [delivery]
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


@dataclass(frozen=True)
class Setting:
    """A field of AttachOptions that is a setting, with its definition."""

    key: str
    option: Option

    @property
    def flag(self) -> str | None:
        if self.option.flag == "":
            return f"--{self.key.replace('_', '-')}"
        return self.option.flag

    @property
    def where(self) -> str:
        """How an error names the flag."""
        return "the URL argument" if self.option.argument else self.flag or self.key

    @property
    def parsed_type(self) -> str:
        annotation = next(f.type for f in msgspec.structs.fields(AttachOptions) if f.name == self.key)
        return _type_name(annotation.__origin__)

    def to_click(self, *, argument_as_option: bool = False) -> Callable[[Any], Any]:
        """The click parameter, named by the setting's key (what resolve_options looks up)."""
        if self.option.argument and not argument_as_option:
            return click.argument(self.key, required=False)
        flag = f"--{self.key}" if self.option.argument else self.flag
        if flag is None:
            raise ValueError(f"{self.key} is set in wsmon.toml only: it has no flag")
        return click.option(flag, self.key, help=self.option.help, **self.option.click)


def _type_name(annotation: Any) -> str:
    """``list[wsmon.config.specs.TapSpec]`` as ``list[TapSpec]``; ``str | None`` as ``str`` or none."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    optional = text.endswith(" | None")
    text = re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", text.removesuffix(" | None"))
    return f"`{text}`" + (" or none" if optional else "")


def _settings() -> tuple[Setting, ...]:
    found = []
    for info in msgspec.structs.fields(AttachOptions):
        metadata = getattr(info.type, "__metadata__", ())
        found += [Setting(info.name, item) for item in metadata if isinstance(item, Option)]
    return tuple(found)


SETTINGS = _settings()
SECTIONS = {setting.key: setting.option.section for setting in SETTINGS}
# The one setting of every command that shows the dashboard, `demo` and `replay` included.
THEME = next(setting for setting in SETTINGS if setting.key == "theme")


def settings_table() -> str:
    """docs/configuration.md's table of every setting (tests/test_config_schema.py keeps them equal)."""
    rows = ["| key | flag | variable | parsed to |", "| --- | --- | --- | --- |"]
    for setting in SETTINGS:
        option = setting.option
        flag = "the `URL` argument (`--url` in `run`)" if option.argument else f"`{setting.flag}`"
        if setting.flag is None:
            flag = "—"
        if option.click.get("multiple"):
            flag += " (repeatable)"
        env = f"`{option.env}`" if option.env else "—"
        rows.append(f"| `[{option.section}] {setting.key}` | {flag} | {env} | {setting.parsed_type} |")
    return "\n".join(rows)


def click_options(*, url_as_option: bool = False, dashboard: bool = True) -> list[Callable[[Any], Any]]:
    """The commands' flags of every setting that has one, in definition order; without ``dashboard``
    (`check`, which shows none) not the [ui] ones."""
    return [
        s.to_click(argument_as_option=url_as_option)
        for s in SETTINGS
        if s.flag is not None and (dashboard or s.option.section != "ui")
    ]
