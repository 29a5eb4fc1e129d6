"""The commands: demo, replay, report, export. Exit codes: 0 ok, 1 a limit breached, 2 bad usage or input."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

import wsmon
from wsmon.config import ConfigError, load_settings

EXIT_OK = 0
EXIT_BREACH = 1
EXIT_USAGE = 2


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit 2: bad usage or unreadable input."""
    click.echo(f"wsmon: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _settings(limit_flags: tuple[str, ...]) -> Any:
    try:
        return load_settings(limit_flags)
    except ConfigError as exc:
        fail(str(exc))


limit_option = click.option(
    "--limit",
    "limit_flags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a limit, e.g. --limit rss_mib=256 (repeatable). Keys: connect_ms, delivery_ms, db_ms, "
    "e2e_ms, connect_success, delivery_success, rss_mib, cpu_percent, connections, messages_per_s.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(wsmon.__version__, "--version", prog_name="wsmon")
def main() -> None:
    """wsmon: watch a WebSocket server, its Redis and its PostgreSQL; record, replay and judge the run."""


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
@limit_option
def demo(
    clients: int,
    duration: float | None,
    record: Path | None,
    headless: bool,
    fault_rate: float,
    rate: float,
    limit_flags: tuple[str, ...],
) -> None:
    """Run the reference server and its simulated clients, and watch them.

    The server logs to its stdout (read by wsmon), psutil samples it and wsmon's probes connect to
    it, exactly as wsmon watches any server. Faults are injected at a visible rate.
    """
    from wsmon.demo.runner import build_demo_session

    settings = _settings(limit_flags)
    _check_record_path(record)
    session = build_demo_session(
        clients=clients,
        limits=settings.limits,
        record=record,
        duration=duration,
        fault_rate=fault_rate,
        rate=rate,
    )
    if headless:
        _run_headless(session.run, session.stop)
        from wsmon.core.report import build_report, render_text

        click.echo(render_text(build_report(session.state, session.limits, source="demo")))
    else:
        _run_dashboard(session)
    if record is not None:
        click.echo(f"recorded to {record}", err=True)
    sys.exit(EXIT_OK)


def target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options `attach` and `check` share: what to watch and how."""
    options = [
        click.argument("url", required=False),
        click.option("--redis", help="Redis URL, e.g. redis://127.0.0.1:6379/0 (or REDIS_URL)."),
        click.option("--postgres", help="PostgreSQL URL, e.g. postgresql://user@host/db (or DATABASE_URL)."),
        click.option("--pid", type=int, help="Watch this process (and its children)."),
        click.option("--port", type=int, help="Watch the process listening on this port."),
        click.option("--process", "process_name", help="Watch the process with this name or command line."),
        click.option("--health", help="Poll this HTTP health URL."),
        click.option("--metrics", help="Scrape this Prometheus metrics URL."),
        click.option("--series", multiple=True, help="A metrics series to show (repeatable)."),
        click.option("--interval", type=float, help="Seconds between samples (default 1)."),
        click.option(
            "--cpu-basis", type=click.Choice(["core", "machine"]), help="CPU as % of one core or of all."
        ),
        click.option("--probes", type=int, help="Probe connections to the WebSocket URL (default 2)."),
        click.option("--request", help='A request the probes send, "{id}" replaced by a fresh id.'),
        click.option("--reply-contains", help='How to recognise its reply ("{id}" replaced too).'),
        click.option("--ca", "ca_file", type=click.Path(dir_okay=False), help="A CA bundle for wss://."),
        click.option("--insecure", is_flag=True, default=None, help="Do not verify TLS certificates."),
        limit_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _attach_options(settings: Any, flags: dict[str, Any]) -> Any:
    from wsmon.attach import resolve_options

    flags = dict(flags)
    flags["process"] = flags.pop("process_name", None)
    flags["series"] = list(flags.get("series") or [])
    try:
        options = resolve_options(flags, settings)
    except ConfigError as exc:
        fail(str(exc))
    if not options.configured():
        fail(
            "nothing to watch: give a ws:// URL, --redis, --postgres, --health, --metrics, --pid, --port "
            "or --process"
        )
    return options


@main.command()
@target_options
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
    from wsmon.attach import build_attach_session

    settings = _settings(limit_flags)
    options = _attach_options(settings, flags)
    _check_record_path(record)
    session = build_attach_session(options, limits=settings.limits, record=record, duration=duration)
    if headless:
        _run_headless(session.run, session.stop)
        from wsmon.core.report import build_report, render_text

        click.echo(render_text(build_report(session.state, session.limits, source="attach")))
    else:
        _run_dashboard(session)
    if record is not None:
        click.echo(f"recorded to {record}", err=True)
    sys.exit(EXIT_OK)


@main.command()
@target_options
def check(limit_flags: tuple[str, ...], **flags: Any) -> None:
    """One pass over every configured target: a table, and exit 0 only when all of them answer.

    Put it before a test suite so the suite refuses to start on missing infrastructure.
    """
    from wsmon.attach import render_check_table, run_checks

    settings = _settings(limit_flags)
    options = _attach_options(settings, flags)
    rows = asyncio.run(run_checks(options))
    click.echo(render_check_table(rows))
    sys.exit(EXIT_OK if all(row.result.ok for row in rows) else EXIT_BREACH)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--headless", is_flag=True, help="No screen: replay everything, then print the summary.")
@click.option(
    "--speed", default=1.0, show_default=True, type=click.FloatRange(0.25, 16), help="Replay speed factor."
)
def replay(file: Path, headless: bool, speed: float) -> None:
    """Step through a recorded session in the dashboard, at recorded pace."""
    from wsmon.core.report import build_report, render_text
    from wsmon.store.format import RecordingError

    try:
        if headless:
            from wsmon.store.reader import RecordingReader
            from wsmon.store.replay import ReplayEngine

            reader = RecordingReader(file)
            engine = ReplayEngine(reader)
            engine.seek_seq(reader.event_count)
            _print_warnings(reader.warnings)
            limits = tuple(reader.header.limits) or None
            report = build_report(
                engine.state, limits or _settings(()).limits, source=str(file), header=_header(reader)
            )
            click.echo(render_text(report))
            sys.exit(EXIT_OK)
        from wsmon.replay_feed import ReplayFeed

        feed = ReplayFeed(file, speed=speed)
    except RecordingError as exc:
        fail(str(exc))
    _print_warnings(feed.reader.warnings)
    _run_dashboard(feed)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@limit_option
def report(file: Path, fmt: str, limit_flags: tuple[str, ...]) -> None:
    """Judge a recording against the limits. Exit 0 when every limit holds, 1 when any is breached."""
    from wsmon.core.report import build_report, render
    from wsmon.store.format import RecordingError
    from wsmon.store.reader import RecordingReader

    try:
        reader = RecordingReader(file)
        state = reader.state_at_seq(reader.event_count)
    except RecordingError as exc:
        fail(str(exc))
    _print_warnings(reader.warnings)
    limits = (
        _settings(limit_flags).limits
        if limit_flags
        else (tuple(reader.header.limits) or _settings(()).limits)
    )
    result = build_report(state, limits, source=str(file), header=_header(reader))
    click.echo(render(result, fmt))
    sys.exit(result.exit_code)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--jsonl", is_flag=True, required=True, help="Write JSON Lines: a header line, then one event a line."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
def export(file: Path, jsonl: bool, output: Path | None) -> None:
    """Export a recording as plain JSON Lines, for jq and grep."""
    from wsmon.store.export import export_jsonl
    from wsmon.store.format import RecordingError
    from wsmon.store.reader import RecordingReader

    try:
        reader = RecordingReader(file)
        if output is None:
            export_jsonl(reader, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as out:
                export_jsonl(reader, out)
    except RecordingError as exc:
        fail(str(exc))
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        sys.stderr.close()
        sys.exit(EXIT_OK)
    _print_warnings(reader.warnings)


# --- helpers ---------------------------------------------------------------------------------------


def _check_record_path(record: Path | None) -> None:
    if record is None:
        return
    if record.exists():
        fail(f"{record}: already exists; wsmon never overwrites a recording (choose another name)")
    if not record.parent.exists():
        fail(f"{record}: directory {record.parent} does not exist")


def _header(reader: Any) -> dict[str, Any]:
    return msgspec.to_builtins(reader.header)


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"wsmon: warning: {warning}", err=True)


def _run_headless(run: Callable[[], Any], stop: Callable[[], None]) -> None:
    async def main_loop() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await run()

    asyncio.run(main_loop())


def _run_dashboard(feed: Any) -> None:
    from wsmon.ui.app import WsmonApp

    WsmonApp(feed).run()
