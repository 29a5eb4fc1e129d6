"""`wsmon logs`: how wsmon reads a server's log."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from wsmon.cli.common import EXIT_OK, fail, main, settings_or_fail
from wsmon.config import ConfigError, log_rules


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
    from wsmon.sources.logs.explain import explain_lines, report

    try:
        rules = log_rules(settings_or_fail(()))
    except ConfigError as exc:
        fail(str(exc))
    try:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for text in report(explain_lines(lines, rules), per_kind=examples, every=every):
                click.echo(text)
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")
    sys.exit(EXIT_OK)
