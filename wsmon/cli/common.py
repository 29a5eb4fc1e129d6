"""What every command shares: the `wsmon` group, exit codes (docs/exit-codes.md: 0 pass; 1 a limit
breached, the tests failed or a check failed; 2 bad usage or unreadable input), one-line errors, settings,
the --limit and output flags, and running a live session headless or in the dashboard."""

from __future__ import annotations

import asyncio
import functools
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

import wsmon
from wsmon.config import THEME, ConfigError, Settings, load_settings

EXIT_OK = 0

EXIT_BREACH = 1

EXIT_USAGE = 2


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit 2: bad usage or unreadable input."""
    click.echo(f"wsmon: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def command_line(argv: list[str] | None = None) -> str:
    """The command line as the user typed it, for the recording's header; secrets masked."""
    from wsmon.core.redact import redact_argv

    return shlex.join(["wsmon", *redact_argv(sys.argv[1:] if argv is None else argv)])


def settings_or_fail(limit_flags: tuple[str, ...]) -> Settings:
    try:
        return load_settings(limit_flags)
    except ConfigError as exc:
        fail(str(exc))


def settings_when_needed(limit_flags: tuple[str, ...]) -> Callable[[], Settings]:
    """Settings loaded once, on first use: a command that may not need them (a recording carries its
    limits) does not fail on a bad wsmon.toml it never reads."""
    return functools.cache(lambda: settings_or_fail(limit_flags))


limit_option = click.option(
    "--limit",
    "limit_flags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a limit, e.g. --limit rss_mib=256 (repeatable). Keys: connect_ms, delivery_ms, db_ms, "
    "e2e_ms, connect_success, delivery_success, rss_mib, cpu_percent, connections, messages_per_s; "
    "ratio_min_events (attempts a success ratio needs before it is judged, default 100).",
)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Where a live session's alerts and figures go besides the screen and the recording."""
    options = [
        click.option(
            "--alert-cmd", metavar="CMD", help="Run CMD for each alert, the alert as JSON on stdin."
        ),
        click.option(
            "--alert-webhook", metavar="URL", help="POST each alert as JSON (with a chat-ready text)."
        ),
        click.option("--prometheus", metavar="HOST:PORT", help="Expose the live figures for Prometheus."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def add_outputs(
    session: Any, alert_cmd: str | None, alert_webhook: str | None, prometheus: str | None
) -> None:
    from wsmon.outputs import outputs_for

    try:
        session.sinks += outputs_for(
            session, alert_cmd=alert_cmd, alert_webhook=alert_webhook, prometheus=prometheus
        )
    except ValueError as exc:
        fail(f"--prometheus: {exc}")
    except OSError as exc:
        fail(f"--prometheus {prometheus}: {exc.strerror or exc}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(wsmon.__version__, "--version", prog_name="wsmon")
def main() -> None:
    """wsmon: watch a WebSocket server, its Redis and its PostgreSQL; record, replay and judge the run."""


def watch_live(
    session: Any,
    headless: bool,
    record: Path | None,
    *,
    source: str,
    after: Callable[[], None] | None = None,
    theme: str | None = None,
) -> int:
    """Run a live session; headless, print its report and return the report's exit code.

    ``after`` prints what the command adds once the session ended (the demo's load tally)."""
    code = EXIT_OK
    if headless:
        run_headless(session.run, session.stop)
        code = print_live_report(session, source)
    else:
        run_dashboard(session, theme)  # no verdict printed, so none to exit with
    if after is not None:
        after()
    # A recording that could not be written (disk full) is exit 2, whatever the verdict.
    return recording_exit(session, record) or code


def print_live_report(session: Any, source: str) -> int:
    """The report of a live session that has ended, on stdout; its exit code."""
    from wsmon.core.report import build_report
    from wsmon.render.report import render_text

    report = build_report(session.state, session.limits, source=source)
    click.echo(render_text(report))
    return report.exit_code


def report_of(reader: Any, state: Any, limits: Any, *, source: str) -> Any:
    """The report of a recording (or, without one, of the live State), its failed tests' windows
    filled from the recorded events."""
    from wsmon.core.report import build_report
    from wsmon.core.testwindows import summarise_windows

    windows = summarise_windows(state, reader.iter_events() if reader is not None else iter(()))
    header = header_of(reader) if reader is not None else None
    return build_report(state, limits, source=source, header=header, test_windows=windows)


def emit_report(text: str, output: Path | None, verdict: str) -> None:
    """The report on stdout, or in OUTPUT with only its verdict line on stdout."""
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
    click.echo(verdict)


def check_record_path(record: Path | None) -> None:
    if record is None:
        return
    if record.exists():
        fail(f"{record}: already exists; wsmon never overwrites a recording (choose another name)")
    if not record.parent.exists():
        fail(f"{record}: directory {record.parent} does not exist")
    if not os.access(record.parent, os.W_OK):
        read_only = os.statvfs(record.parent).f_flag & os.ST_RDONLY
        fail(f"{record}: cannot write ({'read-only file system' if read_only else 'permission denied'})")


UNREADABLE_BATCHES = "unreadable batches:"


def damaged_batches_warning(reader: Any) -> None:
    """Read every batch (the State comes from a keyframe, which would hide damage) and sum up the loss."""
    unreadable = reader.check_batches()
    if unreadable:
        reader.warnings.append(
            f"{UNREADABLE_BATCHES} {unreadable} of {reader.batch_count} batches in {reader.path} could not"
            " be read; their events cannot be replayed or exported"
        )


def recording_exit(session: Any, record: Path | None) -> int:
    """Exit 2 with one line when the session's recording could not be written, else 0."""
    if session.recording_error:
        click.echo(f"wsmon: error: {session.recording_error}", err=True)
        return EXIT_USAGE
    if record is not None:
        click.echo(f"recorded to {record}", err=True)
    return EXIT_OK


def header_of(reader: Any) -> dict[str, Any]:
    return msgspec.to_builtins(reader.header)


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"wsmon: warning: {warning}", err=True)


def run_headless(run: Callable[[], Any], stop: Callable[[], None]) -> None:
    async def main_loop() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await run()

    asyncio.run(main_loop())


# --theme NAME, the same flag (and [ui] theme) as attach's, for the dashboards without attach's settings.
theme_option = THEME.to_click()


def theme_choice(flag: str | None, settings: Callable[[], Settings]) -> str | None:
    """--theme, else [ui] theme in wsmon.toml; None leaves it to the remembered theme, then the default.
    ``settings`` is only asked when there is no flag (a replay needs no wsmon.toml otherwise)."""
    if flag is not None:
        return flag
    found = settings().lookup(THEME.option.section, THEME.key)
    if found is None:
        return None
    try:
        return THEME.option.parse(*found)
    except ConfigError as exc:
        fail(str(exc))


def run_dashboard(feed: Any, theme: str | None = None) -> None:
    """The dashboard on ``feed``, starting in ``theme`` (an unknown one: a warning on it, and the default)."""
    from wsmon.themes import dashboard_themes
    from wsmon.ui.app import WsmonApp

    WsmonApp(feed, themes=dashboard_themes(theme)).run()
