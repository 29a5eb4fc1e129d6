"""The commands. Exit codes, one rule for every command that prints a verdict (docs/exit-codes.md):
0 pass; 1 a limit breached, the tests failed or a check failed; 2 bad usage or unreadable input.
`wsmon run` exits with the tests' own code when they failed, else --breach-exit-code on a breach."""

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
from wsmon.config import (
    SETTINGS,
    ConfigError,
    Settings,
    click_options,
    load_settings,
    log_rules,
    resolve_options,
)

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


def _settings(limit_flags: tuple[str, ...]) -> Settings:
    try:
        return load_settings(limit_flags)
    except ConfigError as exc:
        fail(str(exc))


def _settings_when_needed(limit_flags: tuple[str, ...]) -> Callable[[], Settings]:
    """Settings loaded once, on first use: a command that may not need them (a recording carries its
    limits) does not fail on a bad wsmon.toml it never reads."""
    return functools.cache(lambda: _settings(limit_flags))


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


def _add_outputs(
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
@click.option("--no-tap", is_flag=True, help="Clients connect to the server directly, not through the tap.")
@limit_option
@output_options
def demo(
    clients: int,
    duration: float | None,
    record: Path | None,
    headless: bool,
    fault_rate: float,
    no_tap: bool,
    slow_acks: float | None,
    rate: float,
    limit_flags: tuple[str, ...],
    alert_cmd: str | None,
    alert_webhook: str | None,
    prometheus: str | None,
) -> None:
    """Run the reference server and its simulated clients, and watch them.

    The server logs to its stdout (read by wsmon), psutil samples it and wsmon's probes connect to
    it, exactly as wsmon watches any server. Faults are injected at a visible rate.
    """
    from wsmon.demo.runner import build_demo_session, load_generator_of

    settings = _settings(limit_flags)
    _check_record_path(record)
    session = build_demo_session(
        clients=clients,
        limits=settings.limits,
        record=record,
        duration=duration,
        fault_rate=fault_rate,
        rate=rate,
        through_tap=not no_tap,
        slow_acks=slow_acks,
    )
    session.command = command_line()
    _add_outputs(session, alert_cmd, alert_webhook, prometheus)

    def tally() -> None:
        load = load_generator_of(session)
        if load is not None:
            click.echo(load.tally_line())

    sys.exit(_watch(session, headless, record, source="demo", after=tally))


def _watch(
    session: Any,
    headless: bool,
    record: Path | None,
    *,
    source: str,
    after: Callable[[], None] | None = None,
) -> int:
    """Run a live session; headless, print its report and return the report's exit code.

    ``after`` prints what the command adds once the session ended (the demo's load tally)."""
    code = EXIT_OK
    if headless:
        _run_headless(session.run, session.stop)
        from wsmon.core.report import build_report, render_text

        report = build_report(session.state, session.limits, source=source)
        click.echo(render_text(report))
        code = report.exit_code
    else:
        _run_dashboard(session)  # no verdict printed, so none to exit with
    if after is not None:
        after()
    # A recording that could not be written (disk full) is exit 2, whatever the verdict.
    return _recording_exit(session, record) or code


def target_options(func: Callable[..., Any], *, url_as_option: bool = False) -> Callable[..., Any]:
    """The options `attach`, `check` and `run` share: every setting's flag (wsmon.config.options),
    and the switches that are not settings."""
    settings = click_options(url_as_option=url_as_option)
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


def _attach_options(settings: Any, flags: dict[str, Any]) -> Any:
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


def _announce_server(options: Any) -> None:
    """Say which command is about to run, and from where: it may come from a checked-out wsmon.toml."""
    from wsmon.attach import server_notice

    if options.server:
        click.echo(server_notice(options), err=True)


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
    from wsmon.attach import build_attach_session

    settings = _settings(limit_flags)
    options = _attach_options(settings, flags)
    _check_record_path(record)
    _announce_server(options)
    session = build_attach_session(options, limits=settings.limits, record=record, duration=duration)
    session.command = command_line()
    _add_outputs(session, flags.pop("alert_cmd"), flags.pop("alert_webhook"), flags.pop("prometheus"))
    _end_with_finite_logs(session, options, headless)
    sys.exit(_watch(session, headless, record, source="attach"))


@main.command()
@target_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(limit_flags: tuple[str, ...], fmt: str, **flags: Any) -> None:
    """One pass over every configured target: a table, and exit 0 only when all of them answer.

    Every target is checked: WebSocket, Redis, PostgreSQL, HTTP and the server process answer; a tap's
    upstream answers; a --log file exists and is readable; a --server command's program exists; a
    --feed's server answers. Exit 1 when any check fails, 2 when there was nothing to check.
    Put it before a test suite so the suite refuses to start on missing infrastructure.
    """
    from wsmon.attach import check_json, render_check_table, run_checks

    settings = _settings(limit_flags)
    options = _attach_options(settings, flags)
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


KNOWN_TARGETS = ("server", "websocket", "process", "redis", "postgres", "health", "metrics")


@main.command(context_settings={"allow_interspersed_args": False})
@functools.partial(target_options, url_as_option=True)
@output_options
@click.option(
    "--require", help="Targets that must answer before the tests start (default: every configured one)."
)
@click.option(
    "--ready-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0), help="Seconds."
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="The test runner's JUnit XML.")
@click.option(
    "--test-results",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="The test runner's results, read when it ends: JUnit XML, jest --json --outputFile, "
    "go test -json output or TAP; the format is told from the content (repeatable).",
)
@click.option(
    "--record", type=click.Path(dir_okay=False, path_type=Path), help="Default: ./wsmon-runs/<UTC>.wsmon"
)
@click.option("--tui", is_flag=True, help="Show the dashboard during the run (test output goes to a file).")
@click.option(
    "--no-fail-on-breach", is_flag=True, help="Exit 0 when the tests pass, even if a limit was breached."
)
@click.option(
    "--breach-exit-code",
    default=EXIT_BREACH,
    show_default=True,
    type=click.IntRange(1, 255),
    help="Exit code when the tests pass but a limit was breached (k6 uses 99), so CI can tell them apart.",
)
@click.option(
    "--test-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the tests' output here (default: wsmon's stderr; with --tui, <record>.log).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "junit"]),
    default="text",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here, not stdout.",
)
@click.argument("test_cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    test_cmd: tuple[str, ...],
    require: str | None,
    ready_timeout: float,
    junit: Path | None,
    test_results: tuple[Path, ...],
    record: Path | None,
    tui: bool,
    no_fail_on_breach: bool,
    breach_exit_code: int,
    test_output: Path | None,
    fmt: str,
    output: Path | None,
    limit_flags: tuple[str, ...],
    **flags: Any,
) -> None:
    """Watch a test run: wsmon run [OPTIONS] -- TEST_CMD ...

    Starts monitoring (and --server), waits until the required targets answer, runs TEST_CMD with its
    output on stderr (or --test-output), records the run and prints the report, one document, on
    stdout. Exit code: the test command's own when it failed; 1 when the tests ran none, the required
    targets did not answer or the run was interrupted; --breach-exit-code (default 1) when the tests
    passed but a limit was breached; otherwise 0.
    """
    from wsmon.attach import build_sources, starting_targets, targets_of
    from wsmon.run import TestRun, default_record_path
    from wsmon.session import Session
    from wsmon.sources.markers import TestMarkerSource

    settings = _settings(limit_flags)
    options = _attach_options(settings, flags)
    configured = [t["name"] for t in targets_of(options)]
    required = (
        configured if require is None else [name.strip() for name in require.split(",") if name.strip()]
    )
    for name in required:
        if name not in KNOWN_TARGETS:
            fail(f"--require {name}: unknown target; expected some of {', '.join(KNOWN_TARGETS)}")
        if name not in configured:
            fail(f"--require {name}: that target is not configured (configured: {', '.join(configured)})")
    for flag, path in (("--test-output", test_output), ("-o", output)):
        if path is not None and not path.parent.is_dir():
            fail(f"{flag} {path}: directory {path.parent} does not exist")
    _announce_server(options)
    record = record or default_record_path()
    if not record.parent.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
    _check_record_path(record)
    markers = TestMarkerSource()
    session = Session(
        [*build_sources(options), markers],
        title="run",
        limits=settings.limits,
        record=record,
        command=command_line(),
        targets=targets_of(options),
        starting=starting_targets(options),
    )
    _add_outputs(session, flags.get("alert_cmd"), flags.get("alert_webhook"), flags.get("prometheus"))
    headless = not tui
    test_output = test_output or (record.with_suffix(".log") if tui else None)
    test_run = TestRun(
        session,
        markers,
        list(test_cmd),
        required=required,
        ready_timeout=ready_timeout,
        junit=junit,
        output=test_output,
        test_results=test_results,
    )
    if headless:
        _run_headless(test_run.run, test_run.stop)
    else:
        _run_dashboard(test_run)
    if test_output is not None:
        click.echo(f"test output: {test_output}", err=True)
    breach_code = EXIT_OK if no_fail_on_breach else breach_exit_code
    code = _finish_run(test_run, record, fmt, output, breach_code=breach_code)
    recording = _recording_exit(session, None)
    # A recording that could not be written is exit 2, unless the tests' own failure says more.
    sys.exit(code if code > EXIT_BREACH else max(code, recording))


def _finish_run(test_run: Any, record: Path, fmt: str, output: Path | None, *, breach_code: int) -> int:
    from wsmon.core.report import render, verdict_line

    outcome = test_run.outcome
    reader = _run_recording(test_run.session, record)
    if reader is not None and not test_run.session.recording_error:
        state = reader.state_at_seq(reader.event_count)
    else:  # the recording stopped early (disk full): the live State holds the whole run
        state = test_run.session.state
    if outcome.missing:
        click.echo(_targets_table(state, outcome.missing), err=True)
        click.echo(f"wsmon: tests not started: {', '.join(outcome.missing)} did not answer", err=True)
    report = _report_of(reader, state, test_run.session.limits, source=str(record))
    _emit_report(render(report, fmt), output, verdict_line(report))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and fmt != "json":
        with open(summary_file, "a", encoding="utf-8") as out:
            out.write(render(report, "markdown") + "\n")
    if outcome.junit_error:
        click.echo(f"wsmon: warning: {outcome.junit_error}", err=True)
    for error in outcome.results_errors:
        click.echo(f"wsmon: warning: {error}", err=True)
    if not test_run.session.recording_error:
        click.echo(f"recorded to {record}", err=True)
    if outcome.missing:
        return EXIT_BREACH
    return run_exit_code(outcome.test_exit, report, interrupted=outcome.interrupted, breach_code=breach_code)


def run_exit_code(test_exit: int | None, report: Any, *, interrupted: bool, breach_code: int) -> int:
    """The tests' own failure first, so a CI log tells a test failure from a limit breach."""
    if test_exit not in (0, None):
        return int(test_exit) if 0 < test_exit < 256 else EXIT_BREACH
    if (report.tests is not None and report.tests.verdict == "fail") or interrupted:
        return EXIT_BREACH  # e.g. no tests ran, though the command said 0
    return breach_code if report.breached else EXIT_OK


def _report_of(reader: Any, state: Any, limits: Any, *, source: str) -> Any:
    """The report of a recording (or, without one, of the live State), its failed tests' windows
    filled from the recorded events."""
    from wsmon.core.report import build_report
    from wsmon.core.testwindows import summarise_windows

    windows = summarise_windows(state, reader.iter_events() if reader is not None else iter(()))
    header = _header(reader) if reader is not None else None
    return build_report(state, limits, source=source, header=header, test_windows=windows)


def _emit_report(text: str, output: Path | None, verdict: str) -> None:
    """The report on stdout, or in OUTPUT with only its verdict line on stdout."""
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
    click.echo(verdict)


def _targets_table(state: Any, missing: list[str]) -> str:
    rows = [("target", "kind", "status", "error", "hint")]
    for name, target in sorted(state.targets.items()):
        status = "ok" if target.up else ("FAIL" if name in missing else "pending")
        rows.append((name, target.kind, status, target.error, "; ".join(target.hints)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("more_logs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--headless", is_flag=True, help="No screen: replay everything, then print the summary.")
@click.option(
    "--speed", default=1.0, show_default=True, type=click.FloatRange(0.25, 16), help="Replay speed factor."
)
@click.option("--follow", is_flag=True, help="A log: read it to its end, then keep reading it as it grows.")
def replay(file: Path, more_logs: tuple[Path, ...], headless: bool, speed: float, follow: bool) -> None:
    """Step through a recorded session in the dashboard, at recorded pace.

    FILE may be a server's saved log (plain or gzip, JSON lines or text; more logs after it are merged
    by time): it is replayed on its own timestamps, and ends at its end unless --follow.
    """
    from wsmon.core.report import render_text
    from wsmon.store.format import RecordingError

    if _saved_logs(file, more_logs):
        _replay_log([file, *more_logs], headless=headless, speed=speed, follow=follow)
        return
    if follow:
        fail(f"{file}: --follow follows a log, and this is a recording")
    try:
        if headless:
            from wsmon.store.reader import RecordingReader
            from wsmon.store.replay import ReplayEngine

            reader = RecordingReader(file)
            engine = ReplayEngine(reader)
            engine.seek_seq(reader.event_count)
            _damaged_batches_warning(reader)
            _print_warnings(reader.warnings)
            limits = tuple(reader.header.limits) or _settings(()).limits
            report = _report_of(reader, engine.state, limits, source=str(file))
            report.warnings = [w for w in reader.warnings if w.startswith(_UNREADABLE_BATCHES)]
            click.echo(render_text(report))
            sys.exit(report.exit_code)
        from wsmon.replay_feed import ReplayFeed

        feed = ReplayFeed(file, speed=speed)
    except RecordingError as exc:
        fail(str(exc))
    _print_warnings(feed.reader.warnings)
    _run_dashboard(feed)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("more_logs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown", "junit"]),
    default="text",
    show_default=True,
    help="markdown is also appended to $GITHUB_STEP_SUMMARY when that is set; junit: a test case per limit.",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    help="An earlier recording to compare with, figure by figure; a regression exits 1.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
@limit_option
def report(
    file: Path,
    more_logs: tuple[Path, ...],
    fmt: str,
    baseline: Path | None,
    output: Path | None,
    limit_flags: tuple[str, ...],
) -> None:
    """Judge a recording against the limits. Exit 0 when every limit holds, 1 when any is breached.

    FILE may be a server's saved log (plain or gzip, JSON lines or text; more logs after it are merged
    by time): it is judged on its own timestamps. With --baseline OLD, also compare with OLD (a
    recording or a log; tolerances: [baseline] in wsmon.toml, default 10 %) and exit 1 on a
    regression too.
    """
    import os

    from wsmon.core import baseline as baselines
    from wsmon.core.report import build_report, render, verdict_line
    from wsmon.store.format import RecordingError
    from wsmon.store.reader import RecordingReader

    settings = _settings_when_needed(limit_flags)

    def load(path: Path, more: tuple[Path, ...] = ()) -> tuple[Any, Any]:
        if _saved_logs(path, more):
            saved = _read_logs([path, *more], settings(), "report")
            _print_warnings(saved.warnings)
            return saved, saved.state
        try:
            reader = RecordingReader(path)
            state = reader.state_at_seq(reader.event_count)
        except RecordingError as exc:
            fail(str(exc))
        _damaged_batches_warning(reader)
        _print_warnings(reader.warnings)
        return reader, state

    reader, state = load(file, more_logs)
    limits = settings().limits if limit_flags else (tuple(reader.header.limits) or settings().limits)
    result = _report_of(reader, state, limits, source=str(file))
    result.warnings = [w for w in reader.warnings if w.startswith(_UNREADABLE_BATCHES)]
    text, code = render(result, fmt), result.exit_code
    if baseline is not None:
        try:
            default_tolerance, tolerances = settings().baseline_tolerances()
        except baselines.ToleranceError as exc:
            fail(str(exc))
        old_reader, old_state = load(baseline)
        old = build_report(old_state, limits, source=str(baseline), header=_header(old_reader))
        comparison = baselines.compare(result, old, tolerances, default_tolerance)
        text, code = baselines.render_with_report(result, comparison, fmt), max(code, comparison.exit_code)
    _emit_report(text, output, verdict_line(result))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == "markdown" and summary:
        try:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(text + "\n")
        except OSError as exc:
            click.echo(
                f"wsmon: warning: GITHUB_STEP_SUMMARY {summary}: cannot append: {exc.strerror}", err=True
            )
    sys.exit(code)


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


@main.group()
def logs() -> None:
    """How wsmon reads a server's log."""


@logs.command("explain")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--examples", default=3, type=click.IntRange(min=1), help="Lines shown of each kind (default 3)."
)
@click.option("--all", "every", is_flag=True, help="Explain every line, not a few of each kind.")
def logs_explain(file: Path, examples: int, every: bool) -> None:
    """Show what each line of a saved log is recognised as, and by which rule ([[log.rules]] too)."""
    from wsmon.sources.logexplain import explain_lines, report

    try:
        rules = log_rules(_settings(()))
    except ConfigError as exc:
        fail(str(exc))
    try:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for text in report(explain_lines(lines, rules), per_kind=examples, every=every):
                click.echo(text)
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")
    sys.exit(EXIT_OK)


@main.command("import")
@click.argument("logs_in", metavar="LOG...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The recording to write (never overwritten).",
)
@limit_option
def import_log(logs_in: tuple[Path, ...], output: Path, limit_flags: tuple[str, ...]) -> None:
    """Convert a server's saved log into a recording, on the log's own timestamps.

    LOG is plain or gzip, JSON lines or text; several logs (instances of one server) are merged by time.
    `wsmon report` and `wsmon replay` of the recording then equal those of the log.
    """
    settings = _settings(limit_flags)
    if not _saved_logs(logs_in[0], logs_in[1:]):
        fail(f"{logs_in[0]}: not a log (a recording, or not readable as text)")
    _check_record_path(output)
    count = _write_logs(list(logs_in), output, settings, "wsmon import " + " ".join(map(str, logs_in)))
    click.echo(f"imported {count:,} events into {output}", err=True)
    sys.exit(EXIT_OK)


# --- saved logs as sessions (report, replay, import) ----------------------------------------------


def _end_with_finite_logs(session: Any, options: Any, headless: bool) -> None:
    """`--log -` (or --no-follow) without --follow ends at the end of input: headless, so does the session."""
    from wsmon.attach import reads_finite_logs_only

    session.end_with_sources = headless and reads_finite_logs_only(options)


class _SavedLogs:
    """Saved logs read as a session: what `report` needs of a recording's reader."""

    def __init__(self, header: Any, state: Any, warnings: list[str]) -> None:
        self.header = header
        self.state = state
        self.warnings = warnings

    def check_batches(self) -> int:
        return 0

    def iter_events(self) -> Any:
        return iter(())  # a saved log has no test runner's events: no failed tests' windows to fill


def _saved_logs(first: Path, more: tuple[Path, ...]) -> bool:
    """Whether the input is saved logs (told by content, not name); more than one input must all be."""
    from wsmon.sources.logreplay import is_log_file

    if not is_log_file(first):
        if more:
            fail(f"{first}: only logs can be merged, and this is not one (a recording?)")
        return False
    for path in more:
        if not is_log_file(path):
            fail(f"{path}: not a log (a recording, or not readable as text); only logs can be merged")
    return True


def _log_session(paths: list[Path], settings: Settings) -> Any:
    from wsmon.logsession import LogSession
    from wsmon.sources.logreplay import check_readable

    for path in paths:
        problem = check_readable(path)
        if problem:
            fail(problem)
    try:
        rules = log_rules(settings)
    except ConfigError as exc:
        fail(str(exc))
    return LogSession(paths, settings.limits, rules)


def _log_failure(paths: list[Path], exc: BaseException) -> NoReturn:
    names = ", ".join(map(str, paths))
    fail(f"{names}: cannot read: {getattr(exc, 'strerror', None) or exc}")


def _read_logs(paths: list[Path], settings: Settings, verb: str) -> _SavedLogs:
    import gzip

    session = _log_session(paths, settings)
    try:
        state = session.run()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        _log_failure(paths, exc)
    header = session.header(f"wsmon {verb} " + " ".join(map(str, paths)))
    return _SavedLogs(header, state, session.undated_warnings())


def _write_logs(paths: list[Path], output: Path, settings: Settings, command: str) -> int:
    import gzip

    from wsmon.store.format import RecordingError

    session = _log_session(paths, settings)
    try:
        count = session.write(output, command)
    except (OSError, EOFError, gzip.BadGzipFile, RecordingError) as exc:
        for suffix in ("", "-wal", "-shm"):  # a half-written import is no recording
            Path(f"{output}{suffix}").unlink(missing_ok=True)
        if isinstance(exc, RecordingError):
            fail(str(exc))
        _log_failure(paths, exc)
    _print_warnings(session.undated_warnings())
    return int(count)


def _replay_log(paths: list[Path], *, headless: bool, speed: float, follow: bool) -> None:
    """A saved log in the dashboard: recorded into a temporary recording first, then replayed; or, with
    --follow, read on its own clock to its end and then as it grows, like a live session."""
    import tempfile

    from wsmon.core.report import render_text

    settings = _settings(())
    if follow:
        from wsmon.logsession import LogFollowFeed

        if headless or len(paths) > 1:
            fail("--follow follows one log, in the dashboard (not with --headless)")
        _run_dashboard(LogFollowFeed(_log_session(paths, settings)))
        sys.exit(EXIT_OK)
    if headless:
        saved = _read_logs(paths, settings, "replay")
        _print_warnings(saved.warnings)
        report = _report_of(saved, saved.state, settings.limits, source=str(paths[0]))
        click.echo(render_text(report))
        sys.exit(report.exit_code)
    from wsmon.replay_feed import ReplayFeed

    with tempfile.TemporaryDirectory(prefix="wsmon-replay-") as folder:
        recording = Path(folder) / "log.wsmon"
        _write_logs(paths, recording, settings, "wsmon replay " + " ".join(map(str, paths)))
        feed = ReplayFeed(recording, speed=speed)
        _run_dashboard(feed)
        feed.reader.close()


# --- helpers ---------------------------------------------------------------------------------------


def _check_record_path(record: Path | None) -> None:
    if record is None:
        return
    if record.exists():
        fail(f"{record}: already exists; wsmon never overwrites a recording (choose another name)")
    if not record.parent.exists():
        fail(f"{record}: directory {record.parent} does not exist")
    if not os.access(record.parent, os.W_OK):
        read_only = os.statvfs(record.parent).f_flag & os.ST_RDONLY
        fail(f"{record}: cannot write ({'read-only file system' if read_only else 'permission denied'})")


_UNREADABLE_BATCHES = "unreadable batches:"


def _damaged_batches_warning(reader: Any) -> None:
    """Read every batch (the State comes from a keyframe, which would hide damage) and sum up the loss."""
    unreadable = reader.check_batches()
    if unreadable:
        reader.warnings.append(
            f"{_UNREADABLE_BATCHES} {unreadable} of {reader.batch_count} batches in {reader.path} could not"
            " be read; their events cannot be replayed or exported"
        )


def _recording_exit(session: Any, record: Path | None) -> int:
    """Exit 2 with one line when the session's recording could not be written, else 0."""
    if session.recording_error:
        click.echo(f"wsmon: error: {session.recording_error}", err=True)
        return EXIT_USAGE
    if record is not None:
        click.echo(f"recorded to {record}", err=True)
    return EXIT_OK


def _run_recording(session: Any, record: Path) -> Any:
    """The run's recording for the report; None when it could not be written at all."""
    from wsmon.store.format import RecordingError
    from wsmon.store.reader import RecordingReader

    try:
        return RecordingReader(record)
    except RecordingError as exc:
        if session.recording_error:
            return None
        fail(str(exc))


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
