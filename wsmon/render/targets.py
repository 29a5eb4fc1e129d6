"""Tables of targets, each answering "does it answer?": what ``wsmon check`` found (text, or the JSON
document of ``--format json``, docs/configuration.md) and which targets ``wsmon run`` waited for in
vain before the tests could start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from wsmon.core.sanitize import visible
from wsmon.core.state import TargetState
from wsmon.render.document import align


class CheckOutcome(Protocol):
    """One check's result (``wsmon.sources.base.CheckResult``), as far as the table reads it."""

    @property
    def ok(self) -> bool: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def error(self) -> str: ...
    @property
    def hint(self) -> str: ...
    @property
    def kind(self) -> str: ...


class CheckedTarget(Protocol):
    """A checked target (``wsmon.attach.CheckRow``): its name, where it is and what the check found."""

    @property
    def target(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def result(self) -> CheckOutcome: ...


def render_check_table(rows: Sequence[CheckedTarget]) -> str:
    table: list[list[str]] = [["target", "address", "status", "latency", "error", "hint"]]
    for row in rows:
        r = row.result
        latency = f"{r.latency_ms:.1f} ms" if r.latency_ms is not None else "—"
        # Errors quote servers and exceptions: shown, never obeyed, by the terminal.
        cells = (row.target, row.address, "ok" if r.ok else "FAIL", latency, r.error, r.hint)
        table.append([visible(cell) for cell in cells])
    return "\n".join([*align(table), "", check_summary(rows)])


def check_summary(rows: Sequence[CheckedTarget]) -> str:
    failed = sum(1 for row in rows if not row.result.ok)
    return f"{len(rows) - failed} of {len(rows)} targets answer" + (f"; {failed} failed" if failed else "")


def check_json(rows: Sequence[CheckedTarget]) -> dict[str, Any]:
    """`wsmon check --format json`: one document (docs/configuration.md)."""
    return {
        "verdict": "pass" if rows and all(row.result.ok for row in rows) else "fail",
        "summary": check_summary(rows),
        "targets": [
            {
                "target": row.target,
                "address": row.address,
                "ok": row.result.ok,
                "latency_ms": row.result.latency_ms,
                "error": row.result.error,
                "kind": row.result.kind,
                "hint": row.result.hint,
            }
            for row in rows
        ],
    }


def readiness_table(targets: Mapping[str, TargetState], missing: Sequence[str]) -> str:
    """The targets ``wsmon run`` waited for: ok, FAIL (named in ``missing``) or still pending."""
    rows = [["target", "kind", "status", "error", "hint"]]
    for name, target in sorted(targets.items()):
        status = "ok" if target.up else ("FAIL" if name in missing else "pending")
        rows.append([name, target.kind, status, target.error, "; ".join(target.hints)])
    return "\n".join(align(rows))
