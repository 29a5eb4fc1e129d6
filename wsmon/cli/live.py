"""`wsmon demo`, `wsmon attach` and `wsmon check`: live sessions and the one pass of checks. Their target
flags are made from the settings' definitions (wsmon.config.options)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import click
import msgspec

from wsmon.cli.common import (
    EXIT_BREACH,
    EXIT_OK,
    add_outputs,
    check_record_path,
    command_line,
    fail,
    limit_option,
    main,
    output_options,
    settings_or_fail,
    theme_choice,
    theme_option,
    watch_live,
)
from wsmon.config import SETTINGS, ConfigError, click_options, resolve_options


def target_options(
    func: Callable[..., Any], *, url_as_option: bool = False, dashboard: bool = True
) -> Callable[..., Any]:
    """The options `attach`, `check` and `run` share: every setting's flag (wsmon.config.options; without
    ``dashboard``, not --theme), and the switches that are not settings."""
    settings = click_options(url_as_option=url_as_option, dashboard=dashboard)
    follow = click.option(
        "--follow/--no-follow",
        default=None,
        help="Keep reading --log as it grows (default for a file), or read it to its end and stop "
        "(default for -).",
    )
    trust_config = click.option(
        "--trust-config",
        is_flag=True,
        default=None,
        help="Run a [targets] server command from a wsmon.toml that another user owns or may write.",
    )
    after_logs = [s.key for s in SETTINGS if s.flag is not None].index("logs") + 1
    options = [*settings[:after_logs], follow, *settings[after_logs:], trust_config, limit_option]
    for option in reversed(options):
        func = option(func)
    return func


def attach_options(settings: Any, flags: dict[str, Any]) -> Any:
    try:
        options = resolve_options(flags, settings)
    except ConfigError as exc:
        fail(str(exc))
    if not options.configured():
        fail(
            "nothing to watch: give a ws:// URL, --server, --redis, --postgres, --health, --metrics, --pid, "
            "--port or --process"
        )
    return options


def announce_server(options: Any) -> None:
    """Say which command is about to run, and from where: it may come from a checked-out wsmon.toml."""
    from wsmon.attach import server_notice

    if options.server:
        click.echo(server_notice(options), err=True)


@main.command()
@click.option(
    "--clients", default=50, show_default=True, type=click.IntRange(1, 5000), help="Simulated clients."
)
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Record the session to FILE.")
@click.option("--headless", is_flag=True, help="No screen: run, then print the report.")
@click.option(
    "--fault-rate",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 20),
    help="Fault injection (0: none).",
)
@click.option(
    "--rate", default=1.0, show_default=True, type=click.FloatRange(0.01, 100), help="Msg/s per client."
)
@click.option(
    "--slow-acks",
    type=click.FloatRange(0, 1),
    help="Share of clients that ack 100–600 ms late (default 0.1).",
)
@click.option(
    "--load",
    type=click.Choice(["demo", "steady", "churn"]),
    default="demo",
    show_default=True,
    help="demo: clients that misbehave; steady: --clients held open at --rate each, no faults; "
    "churn: --connect-rate connections/s opened and closed.",
)
@click.option(
    "--connect-rate",
    default=50.0,
    show_default=True,
    type=click.FloatRange(0.1, 5000),
    help="Churn: connections opened a second.",
)
@click.option(
    "--hold",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 600),
    help="Churn: seconds each connection stays open.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    help="The demo server refuses more with 1013 (default: what the load needs).",
)
@click.option("--no-tap", is_flag=True, help="Clients connect to the server directly, not through the tap.")
@limit_option
@output_options
@theme_option
def demo(
    clients: int,
    duration: float | None,
    record: Path | None,
    headless: bool,
    fault_rate: float,
    no_tap: bool,
    slow_acks: float | None,
    rate: float,
    load: str,
    connect_rate: float,
    hold: float,
    max_connections: int | None,
    limit_flags: tuple[str, ...],
    alert_cmd: str | None,
    alert_webhook: str | None,
    prometheus: str | None,
    theme: str | None,
) -> None:
    """Run the reference server and its simulated clients, and watch them.

    The server logs to its stdout (read by wsmon), psutil samples it and wsmon's probes connect to
    it, exactly as wsmon watches any server. Faults are injected at a visible rate; --load steady or
    churn gives a load that means one thing (docs/demo.md).
    """
    live = demo_session(
        clients=clients,
        duration=duration,
        record=record,
        fault_rate=fault_rate,
        no_tap=no_tap,
        slow_acks=slow_acks,
        rate=rate,
        load=load,
        connect_rate=connect_rate,
        hold=hold,
        max_connections=max_connections,
        limit_flags=limit_flags,
        alert_cmd=alert_cmd,
        alert_webhook=alert_webhook,
        prometheus=prometheus,
        theme=theme,
    )
    sys.exit(watch_live(live.session, headless, record, source="demo", after=live.after, theme=live.theme))


class LiveSession(NamedTuple):
    """A live session built from a command's options, ready to run: what `wsmon serve` runs once for
    every viewer, and what `demo` and `attach` run in the dashboard or headless."""

    session: Any
    theme: str | None
    after: Callable[[], None] | None = None  # what the command prints once the session ended


def demo_session(
    *,
    clients: int,
    duration: float | None,
    record: Path | None,
    fault_rate: float,
    no_tap: bool,
    slow_acks: float | None,
    rate: float,
    load: str,
    connect_rate: float,
    hold: float,
    max_connections: int | None,
    limit_flags: tuple[str, ...],
    alert_cmd: str | None,
    alert_webhook: str | None,
    prometheus: str | None,
    theme: str | None,
) -> LiveSession:
    """`wsmon demo`'s session from its options; a bad one is a one-line error and exit 2."""
    from wsmon.demo.runner import build_demo_session, load_generator_of

    settings = settings_or_fail(limit_flags)
    check_record_path(record)
    session = build_demo_session(
        clients=clients,
        limits=settings.limits,
        record=record,
        duration=duration,
        fault_rate=fault_rate,
        rate=rate,
        through_tap=not no_tap,
        slow_acks=slow_acks,
        load=load,
        connect_rate=connect_rate,
        hold=hold,
        max_connections=max_connections,
    )
    session.command = command_line()
    add_outputs(session, alert_cmd, alert_webhook, prometheus)

    def tally() -> None:
        load = load_generator_of(session)
        if load is not None:
            click.echo(load.tally_line())

    return LiveSession(session, theme_choice(theme, lambda: settings), tally)


@main.command()
@target_options
@output_options
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Record the session to FILE.")
@click.option("--headless", is_flag=True, help="No screen: watch, then print the report.")
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds.")
def attach(
    record: Path | None, headless: bool, duration: float | None, limit_flags: tuple[str, ...], **flags: Any
) -> None:
    """Attach to a running system: WebSocket probes, the server process, Redis, PostgreSQL, HTTP.

    Every target is optional; whatever is given gets its own panel and goes into the recording. A
    target that is down shows DOWN and is retried; wsmon keeps running.
    """
    live = attach_session(
        record=record, headless=headless, duration=duration, limit_flags=limit_flags, **flags
    )
    sys.exit(watch_live(live.session, headless, record, source="attach", theme=live.theme))


def attach_session(
    *, record: Path | None, headless: bool, duration: float | None, limit_flags: tuple[str, ...], **flags: Any
) -> LiveSession:
    """`wsmon attach`'s session from its options; a bad one is a one-line error and exit 2."""
    from wsmon.attach import build_attach_session

    settings = settings_or_fail(limit_flags)
    options = attach_options(settings, flags)
    check_record_path(record)
    announce_server(options)
    session = build_attach_session(options, limits=settings.limits, record=record, duration=duration)
    session.command = command_line()
    add_outputs(session, flags.pop("alert_cmd"), flags.pop("alert_webhook"), flags.pop("prometheus"))
    _end_with_finite_logs(session, options, headless)
    return LiveSession(session, options.theme)


@main.command()
@functools.partial(target_options, dashboard=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(limit_flags: tuple[str, ...], fmt: str, **flags: Any) -> None:
    """One pass over every configured target: a table, and exit 0 only when all of them answer.

    Every target is checked: WebSocket, Redis, PostgreSQL, HTTP and the server process answer; a tap's
    upstream answers; a --log file exists and is readable; a --server command's program exists; a
    --feed's server answers. Exit 1 when any check fails, 2 when there was nothing to check.
    Put it before a test suite so the suite refuses to start on missing infrastructure.
    """
    from wsmon.attach import run_checks
    from wsmon.render.targets import check_json, render_check_table

    settings = settings_or_fail(limit_flags)
    options = attach_options(settings, flags)
    rows = asyncio.run(run_checks(options))
    if not rows:
        fail(
            "nothing to check: the configured targets (" + ", ".join(options.configured()) + ") "
            "have no check of their own; give a ws:// URL, --redis, --postgres, --health or --pid"
        )
    if fmt == "json":
        click.echo(msgspec.json.format(msgspec.json.encode(check_json(rows)), indent=2).decode())
    else:
        click.echo(render_check_table(rows))
    sys.exit(EXIT_OK if all(row.result.ok for row in rows) else EXIT_BREACH)


def _end_with_finite_logs(session: Any, options: Any, headless: bool) -> None:
    """`--log -` (or --no-follow) without --follow ends at the end of input: headless, so does the session."""
    from wsmon.attach import reads_finite_logs_only

    session.end_with_sources = headless and reads_finite_logs_only(options)
