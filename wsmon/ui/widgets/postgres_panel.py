"""PostgreSQL: up or down, SELECT 1 latency against the db limit, connection slots, sessions by state,
the longest query and transaction, who blocks whom, commits and rollbacks, deadlocks, NOTIFY queue.
"""

from __future__ import annotations

import math
from typing import Any

from textual.content import Content

from wsmon.core.events import PostgresSample
from wsmon.core.limits import DEFAULT_LIMITS, Limit
from wsmon.core.state import State, TargetState
from wsmon.ui.format import LEVEL_STYLES, count
from wsmon.ui.widgets.resources import current_level
from wsmon.ui.widgets.target_panel import (
    Part,
    TargetPanel,
    fill_style,
    hint_lines,
    ms,
    one_line,
    rate,
    seconds,
    status_key,
    status_parts,
    window_ms,
)

QUERY_SHOWN = 60
PAIRS_SHOWN = 3
# Sessions by state: the work first, then the states that hold locks or wait on them.
SESSION_ROWS: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (("active", "sessions active", ""), ("idle", "idle", ""), ("hidden", "hidden", "$text-muted")),
    (
        ("idle_in_transaction", "idle in txn", "$warning"),
        ("idle_in_transaction_aborted", "aborted txn", "$warning"),
        ("waiting", "waiting on lock", "$error"),
    ),
)
ALWAYS_SHOWN = frozenset({"active", "idle", "idle_in_transaction", "waiting"})


def db_limit(limits: tuple[Limit, ...]) -> Limit:
    for limit in (*limits, *DEFAULT_LIMITS):
        if limit.figure == "db_ms":
            return limit
    raise LookupError("db_ms")  # DEFAULT_LIMITS always has it


class PostgresPanel(TargetPanel):
    KINDS = frozenset({"postgres"})
    TITLE = "PostgreSQL"

    def update_from(self, state: State, limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> bool:
        targets = self.targets_of(state)
        if not self.show_if(bool(targets)):
            return False
        sample = state.postgres
        now = state.last_mono
        alert = state.alerts.get("db_ms")
        statuses = tuple(status_key(t, now) for t in targets)
        key = (sample, state.pg_deadlocks, statuses, alert.level if alert else None)
        return self.show(key, lambda: self._build(state, targets, sample, db_limit(limits)))

    def _build(
        self, state: State, targets: list[TargetState], sample: PostgresSample | None, limit: Limit
    ) -> Content:
        now = state.last_mono
        lines: list[Content] = []
        for target in targets:
            head: list[Part] = [(f"{target.name} ", "bold"), *status_parts(target, now)]
            if target.up and sample is not None and sample.target == target.name:
                database, role = sample.extra.get("database"), sample.extra.get("role")
                if database:
                    head.append(f" · {database}" + (f" as {role}" if role else ""))
            if target.address:
                head.append((f" · {target.address}", "$text-muted"))
            lines.append(Content.assemble(*head))
        if not any(target.up for target in targets) or sample is None:
            lines.extend(hint_lines(targets))
            if sample is None and any(target.up for target in targets):
                lines.append(Content.styled("waiting for the first sample", "$text-muted"))
            return Content("\n").join(lines)
        lines.append(_select1_line(state, sample, limit))
        lines.append(_connections_line(sample))
        lines.extend(_sessions_lines(sample.sessions))
        lines.extend(_blocked_lines(sample.extra.get("blocked") or ()))
        lines.extend(_longest_lines(sample))
        lines.extend(_counter_lines(sample, state.pg_deadlocks))
        lines.extend(hint_lines(targets))
        return Content("\n").join(lines)


def _counter_lines(sample: PostgresSample, deadlocks_total: int) -> list[Content]:
    """``deadlocks_total`` is the session's (State's); the sample's own interval adds the "+n"."""
    usage = sample.notify_queue_usage
    notify = "—" if usage is None else f"{usage * 100:.1f} %"
    deadlocks: Part = f"deadlocks {count(deadlocks_total)}"
    if sample.deadlocks:
        deadlocks = (f"deadlocks {count(deadlocks_total)} (+{sample.deadlocks})", "bold $error")
    return [
        Content.assemble(
            f"commits {rate(sample.commits_per_s)}/s · ",
            (f"rollbacks {rate(sample.rollbacks_per_s)}/s", "$warning" if sample.rollbacks_per_s else ""),
        ),
        Content.assemble(deadlocks, " · NOTIFY queue ", (notify, fill_style(usage) if usage else "")),
    ]


def _select1_line(state: State, sample: PostgresSample, limit: Limit) -> Content:
    p50, p95 = window_ms(state, "db")
    if math.isnan(p95) and sample.select1_ms is not None:
        p50 = p95 = sample.select1_ms
    level = "" if math.isnan(p95) else current_level(state, limit, p95)
    return Content.assemble(f"SELECT 1 p50 {ms(p50)} · p95 ", (ms(p95), LEVEL_STYLES.get(level, "")))


def _connections_line(sample: PostgresSample) -> Content:
    used, slots = sample.connections, sample.max_connections
    if used is None:
        return Content("connections —")
    if not slots:
        return Content(f"connections {count(used)}")
    ratio = used / slots
    return Content.assemble(
        "connections ", (f"{count(used)} / {count(slots)} ({ratio * 100:.0f} %)", fill_style(ratio))
    )


def _sessions_lines(sessions: dict[str, int]) -> list[Content]:
    """Two short lines, so a narrow panel still shows the states that hold or wait on locks."""
    lines = []
    for row in SESSION_ROWS:
        parts: list[Part] = []
        for name, label, style in row:
            n = sessions.get(name, 0)
            if n or name in ALWAYS_SHOWN:
                parts.extend([(f"{label} {count(n)}", style if n else ""), " · "])
        lines.append(Content.assemble(*parts[:-1]))
    return lines


def _longest_lines(sample: PostgresSample) -> list[Content]:
    lines = []
    for label, value, detail in (
        ("longest query", sample.longest_query_s, sample.extra.get("longest_query")),
        ("longest txn", sample.longest_xact_s, sample.extra.get("longest_xact")),
    ):
        if value is None:
            lines.append(Content.styled(f"{label} —", "$text-muted"))
            continue
        text = ""
        if isinstance(detail, dict):
            state = detail.get("state", "")
            prefix = f"{state}: " if state and state != "active" else ""
            query = one_line(str(detail.get("query", "")), QUERY_SHOWN)
            text = f"  pid {detail.get('pid', '?')} {prefix}{query}"
        lines.append(Content.assemble(f"{label} {seconds(value)}", (text, "$text-muted")))
    return lines


def _blocked_lines(pairs: Any) -> list[Content]:
    if not pairs:
        return []
    lines = [Content.styled(f"waiting on a lock ({len(pairs)}):", "bold $error")]
    for pair in list(pairs)[:PAIRS_SHOWN]:
        state = pair.get("blocking_state", "")
        lines.append(
            Content.assemble(
                (f"  pid {pair.get('blocked_pid')} waits {seconds(pair.get('wait_s'))}", "$error"),
                f" on pid {pair.get('blocking_pid')}" + (f" ({state})" if state else ""),
            )
        )
        lines.append(
            Content.styled(
                f"    {one_line(str(pair.get('blocked_query', '')), QUERY_SHOWN)}"
                f"  blocked by  {one_line(str(pair.get('blocking_query', '')), QUERY_SHOWN)}",
                "$text-muted",
            )
        )
    return lines
