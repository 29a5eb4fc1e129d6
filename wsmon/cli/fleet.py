"""`wsmon fleet redis://…`: every node that `wsmon attach --publish` feeds, in one session (one screen,
one recording, one report) with a node dimension (sources/fleet.py, core/fleet.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from wsmon.cli.common import (
    add_outputs,
    check_record_path,
    command_line,
    fail,
    limit_option,
    main,
    output_options,
    recording_exit,
    run_headless,
    settings_or_fail,
    theme_choice,
    theme_option,
    watch_live,
)


@main.command()
@click.argument("url")
@click.option(
    "--group",
    metavar="NAME",
    help="Read with this consumer group, kept in Redis to resume later (default: one of this viewer's "
    "own, removed when it ends).",
)
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Record the session to FILE.")
@click.option("--headless", is_flag=True, help="No screen: watch, then print the report.")
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds.")
@limit_option
@output_options
@theme_option
def fleet(
    url: str,
    group: str | None,
    record: Path | None,
    headless: bool,
    duration: float | None,
    limit_flags: tuple[str, ...],
    alert_cmd: str | None,
    alert_webhook: str | None,
    prometheus: str | None,
    theme: str | None,
) -> None:
    """Watch a fleet: every node publishing to URL (`wsmon attach … --publish URL --node NAME`).

    Connections, targets and log lines carry their node (NODE/ID); a node whose heartbeat stops is
    DOWN. The report judges the fleet and each node.
    """
    from wsmon.config import ConfigError
    from wsmon.config import values as v
    from wsmon.core.redact import redact_url
    from wsmon.session import Session
    from wsmon.sources.fleet import FleetSource

    try:
        url = v.urls("redis", "rediss", "unix")(url, "the URL argument")
    except ConfigError as exc:
        fail(str(exc))
    settings = settings_or_fail(limit_flags)
    check_record_path(record)
    session = Session(
        [FleetSource(url, group=group)],
        title=f"fleet · {redact_url(url)}",
        limits=settings.limits,
        record=record,
        command=command_line(),
        targets=[{"name": "fleet", "kind": "fleet", "address": redact_url(url)}],
        duration=duration,
    )
    add_outputs(session, alert_cmd, alert_webhook, prometheus)
    if headless:
        sys.exit(_headless(session, record))
    chosen = theme_choice(theme, lambda: settings)
    sys.exit(watch_live(session, headless, record, source="fleet", theme=chosen))


def _headless(session: Any, record: Path | None) -> int:
    """Watch until stopped, then print the fleet's report with each node judged on its own."""
    from wsmon.core.fleetreport import NodeSplit
    from wsmon.core.report import build_report
    from wsmon.core.sink import Sink
    from wsmon.render.fleet import fleet_exit_code, render_fleet

    split = NodeSplit()

    class _Split(Sink):
        def on_event(self, event: Any) -> None:
            split.apply(event)

    session.sinks.append(_Split())
    run_headless(session.run, session.stop)
    report = build_report(session.state, session.limits, source="fleet")
    nodes = split.reports(session.limits, source="fleet")
    click.echo(render_fleet(report, nodes, "text"))
    return recording_exit(session, record) or fleet_exit_code(report, nodes)
