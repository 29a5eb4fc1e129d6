"""`wsmon run`: watch a test command, then print the report. Its exit code is the tests' own when they
failed, else --breach-exit-code on a breach (docs/exit-codes.md)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import click

from wsmon.cli.common import (
    EXIT_BREACH,
    EXIT_OK,
    add_outputs,
    check_record_path,
    command_line,
    emit_report,
    fail,
    main,
    output_options,
    recording_exit,
    report_of,
    run_dashboard,
    run_headless,
    settings_or_fail,
)
from wsmon.cli.live import announce_server, attach_options, target_options

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
    from wsmon.attach import add_publisher, build_sources, starting_targets, targets_of
    from wsmon.run import TestRun, default_record_path
    from wsmon.session import Session
    from wsmon.sources.markers import TestMarkerSource

    settings = settings_or_fail(limit_flags)
    options = attach_options(settings, flags)
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
    announce_server(options)
    record = record or default_record_path()
    if not record.parent.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
    check_record_path(record)
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
    add_outputs(session, flags.get("alert_cmd"), flags.get("alert_webhook"), flags.get("prometheus"))
    add_publisher(session, options)
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
        run_headless(test_run.run, test_run.stop)
    else:
        run_dashboard(test_run, options.theme)
    if test_output is not None:
        click.echo(f"test output: {test_output}", err=True)
    breach_code = EXIT_OK if no_fail_on_breach else breach_exit_code
    code = _finish_run(test_run, record, fmt, output, breach_code=breach_code)
    recording = recording_exit(session, None)
    # A recording that could not be written is exit 2, unless the tests' own failure says more.
    sys.exit(code if code > EXIT_BREACH else max(code, recording))


def _finish_run(test_run: Any, record: Path, fmt: str, output: Path | None, *, breach_code: int) -> int:
    from wsmon.render.report import render, verdict_line
    from wsmon.render.targets import readiness_table

    outcome = test_run.outcome
    reader = _run_recording(test_run.session, record)
    if reader is not None and not test_run.session.recording_error:
        state = reader.state_at_seq(reader.event_count)
    else:  # the recording stopped early (disk full): the live State holds the whole run
        state = test_run.session.state
    if outcome.missing:
        click.echo(readiness_table(state.targets, outcome.missing), err=True)
        click.echo(f"wsmon: tests not started: {', '.join(outcome.missing)} did not answer", err=True)
    report = report_of(reader, state, test_run.session.limits, source=str(record))
    emit_report(render(report, fmt), output, verdict_line(report))
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

