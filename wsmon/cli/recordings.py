"""`wsmon replay`, `wsmon report`, `wsmon export` and `wsmon import`: recordings, and saved server logs read
as if they were recordings (told by content, not name)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from wsmon.cli.common import (
    EXIT_OK,
    UNREADABLE_BATCHES,
    check_record_path,
    damaged_batches_warning,
    emit_report,
    fail,
    header_of,
    limit_option,
    main,
    print_warnings,
    report_of,
    run_dashboard,
    settings_or_fail,
    settings_when_needed,
    theme_choice,
    theme_option,
)
from wsmon.config import ConfigError, Settings, baseline_tolerances, log_rules


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("more_logs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--headless", is_flag=True, help="No screen: replay everything, then print the summary.")
@click.option(
    "--speed", default=1.0, show_default=True, type=click.FloatRange(0.25, 16), help="Replay speed factor."
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep reading FILE as it grows: a recording another wsmon is writing (from its latest state), "
    "or a log (from its start).",
)
@theme_option
def replay(
    file: Path, more_logs: tuple[Path, ...], headless: bool, speed: float, follow: bool, theme: str | None
) -> None:
    """Step through a recorded session in the dashboard, at recorded pace.

    FILE may be a server's saved log (plain or gzip, JSON lines or text; more logs after it are merged
    by time): it is replayed on its own timestamps, and ends at its end unless --follow.

    With --follow, FILE may be a recording that another wsmon is still writing (`wsmon attach --headless
    --record FILE`): the dashboard starts at its latest state and shows each batch as it is committed;
    going back (space, ←, n, :) replays, and space again returns to the live edge.
    """
    from wsmon.store.format import RecordingError

    if _saved_logs(file, more_logs):
        _replay_log([file, *more_logs], headless=headless, speed=speed, follow=follow, theme=theme)
        return
    if follow and headless:
        fail("--follow follows a recording in the dashboard (not with --headless)")
    try:
        if headless:
            from wsmon.store.reader import RecordingReader
            from wsmon.store.replay import ReplayEngine

            reader = RecordingReader(file)
            engine = ReplayEngine(reader)
            engine.seek_seq(reader.event_count)
            damaged_batches_warning(reader)
            print_warnings(reader.warnings)
            limits = tuple(reader.header.limits) or settings_or_fail(()).limits
            report = report_of(reader, engine.state, limits, source=str(file))
            report.warnings = [w for w in reader.warnings if w.startswith(UNREADABLE_BATCHES)]
            text, code = rendered_with_nodes(reader, engine.state, report, limits, "text")
            click.echo(text)
            sys.exit(code)
        from wsmon.follow_feed import FollowFeed
        from wsmon.replay_feed import ReplayFeed

        feed = FollowFeed(file) if follow else ReplayFeed(file, speed=speed)
    except RecordingError as exc:
        fail(str(exc))
    print_warnings(feed.reader.warnings)
    run_dashboard(feed, theme_choice(theme, settings_when_needed(())))


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

    from wsmon.core import baseline as baselines
    from wsmon.core.report import build_report
    from wsmon.render.baseline import render_with_report
    from wsmon.render.report import verdict_line
    from wsmon.store.format import RecordingError
    from wsmon.store.reader import RecordingReader

    settings = settings_when_needed(limit_flags)

    def load(path: Path, more: tuple[Path, ...] = ()) -> tuple[Any, Any]:
        if _saved_logs(path, more):
            saved = _read_logs([path, *more], settings(), "report")
            print_warnings(saved.warnings)
            return saved, saved.state
        try:
            reader = RecordingReader(path)
            state = reader.state_at_seq(reader.event_count)
        except RecordingError as exc:
            fail(str(exc))
        damaged_batches_warning(reader)
        print_warnings(reader.warnings)
        return reader, state

    reader, state = load(file, more_logs)
    limits = settings().limits if limit_flags else (tuple(reader.header.limits) or settings().limits)
    result = report_of(reader, state, limits, source=str(file))
    result.warnings = [w for w in reader.warnings if w.startswith(UNREADABLE_BATCHES)]
    text, code = rendered_with_nodes(reader, state, result, limits, fmt)
    if baseline is not None:
        try:
            default_tolerance, tolerances = baseline_tolerances(settings())
        except baselines.ToleranceError as exc:
            fail(str(exc))
        old_reader, old_state = load(baseline)
        old = build_report(old_state, limits, source=str(baseline), header=header_of(old_reader))
        comparison = baselines.compare(result, old, tolerances, default_tolerance)
        text, code = render_with_report(result, comparison, fmt), max(code, comparison.exit_code)
    emit_report(text, output, verdict_line(result))
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
    print_warnings(reader.warnings)


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
    settings = settings_or_fail(limit_flags)
    if not _saved_logs(logs_in[0], logs_in[1:]):
        fail(f"{logs_in[0]}: not a log (a recording, or not readable as text)")
    check_record_path(output)
    count = _write_logs(list(logs_in), output, settings, "wsmon import " + " ".join(map(str, logs_in)))
    click.echo(f"imported {count:,} events into {output}", err=True)
    sys.exit(EXIT_OK)


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
    from wsmon.sources.logs.replay import is_log_file

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
    from wsmon.sources.logs.replay import check_readable

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
    print_warnings(session.undated_warnings())
    return int(count)


def _replay_log(paths: list[Path], *, headless: bool, speed: float, follow: bool, theme: str | None) -> None:
    """A saved log in the dashboard: recorded into a temporary recording first, then replayed; or, with
    --follow, read on its own clock to its end and then as it grows, like a live session."""
    import tempfile

    from wsmon.render.report import render_text

    settings = settings_or_fail(())
    if follow:
        from wsmon.logsession import LogFollowFeed

        if headless or len(paths) > 1:
            fail("--follow follows one log, in the dashboard (not with --headless)")
        run_dashboard(LogFollowFeed(_log_session(paths, settings)), theme_choice(theme, lambda: settings))
        sys.exit(EXIT_OK)
    if headless:
        saved = _read_logs(paths, settings, "replay")
        print_warnings(saved.warnings)
        report = report_of(saved, saved.state, settings.limits, source=str(paths[0]))
        click.echo(render_text(report))
        sys.exit(report.exit_code)
    from wsmon.replay_feed import ReplayFeed

    with tempfile.TemporaryDirectory(prefix="wsmon-replay-") as folder:
        recording = Path(folder) / "log.wsmon"
        _write_logs(paths, recording, settings, "wsmon replay " + " ".join(map(str, paths)))
        feed = ReplayFeed(recording, speed=speed)
        run_dashboard(feed, theme_choice(theme, lambda: settings))
        feed.reader.close()


def rendered_with_nodes(reader: Any, state: Any, report: Any, limits: Any, fmt: str) -> tuple[str, int]:
    """The report as ``fmt`` and its exit code; for a fleet's recording (a node target in its State)
    each node judged on its own too (core/fleetreport.py), and a breach on any node is the run's."""
    from wsmon.core.fleet import NODE_KIND
    from wsmon.render.report import render

    if not any(target.kind == NODE_KIND for target in state.targets.values()):
        return render(report, fmt), report.exit_code
    from wsmon.core.fleetreport import node_reports
    from wsmon.render.fleet import fleet_exit_code, render_fleet

    nodes = node_reports(reader.iter_events(), limits, source=report.session.source, header=header_of(reader))
    return render_fleet(report, nodes, fmt), fleet_exit_code(report, nodes)
