"""PostgreSQL through asyncpg: ``SELECT 1`` latency (the "database query response" figure), sessions by
state, connections against max_connections, the longest query and transaction, blocked/blocking pairs,
commits, rollbacks and deadlocks from pg_stat_database, and the NOTIFY queue's fill.

One dedicated connection named ``wsmon``, read-only (default_transaction_read_only) with a statement
timeout, so wsmon can neither change nor hold up the database. A role with ``pg_monitor`` sees
everything; where a role's privileges hide other sessions, a hint says so once.
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from wsmon.core import events as ev
from wsmon.core.redact import MASK, redact_text, redact_url
from wsmon.sources.base import CheckResult, Down, Emit, PolledSource, Up, now
from wsmon.sources.scrub import scrub

QUERY_CHARS = 120
MAX_PAIRS = 20
_FLUSH_LAG_S = 12.0  # an idle backend's statistics reach pg_stat_database within about 10 s

# Sessions of others (client backends only: no autovacuum, WAL senders or wsmon itself), the
# longest active query and open transaction among them, and this database's counters: one round trip.
# Where the role may not see a session, even its backend_type is NULL; one with a database is taken
# for a client (it may rarely be an autovacuum worker).
STATS_SQL = f"""
WITH others AS (
    SELECT pid, state, wait_event_type, query_start, xact_start, query
    FROM pg_stat_activity
    WHERE (backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL))
      AND pid <> pg_backend_pid()
), states AS (
    SELECT CASE
        WHEN state IS NULL THEN 'hidden'
        WHEN wait_event_type = 'Lock' THEN 'waiting'
        WHEN state = 'idle in transaction (aborted)' THEN 'idle_in_transaction_aborted'
        ELSE replace(state, ' ', '_')
    END AS name, count(*)::int AS n
    FROM others GROUP BY 1
), longest_query AS (
    SELECT pid, extract(epoch FROM clock_timestamp() - query_start)::float8 AS s,
           left(query, {QUERY_CHARS}) AS q
    FROM others WHERE state = 'active' AND query_start IS NOT NULL ORDER BY query_start LIMIT 1
), longest_xact AS (
    SELECT pid, extract(epoch FROM clock_timestamp() - xact_start)::float8 AS s,
           left(query, {QUERY_CHARS}) AS q, state
    FROM others WHERE xact_start IS NOT NULL ORDER BY xact_start LIMIT 1
), db AS (
    SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = current_database()
)
SELECT
    (SELECT count(*) FROM others)::int + 1 AS connections,
    current_setting('max_connections')::int AS max_connections,
    (SELECT array_agg(name ORDER BY name) FROM states) AS state_names,
    (SELECT array_agg(n ORDER BY name) FROM states) AS state_counts,
    (SELECT pid FROM longest_query) AS query_pid,
    (SELECT s FROM longest_query) AS query_s,
    (SELECT q FROM longest_query) AS query_text,
    (SELECT pid FROM longest_xact) AS xact_pid,
    (SELECT s FROM longest_xact) AS xact_s,
    (SELECT q FROM longest_xact) AS xact_query,
    (SELECT state FROM longest_xact) AS xact_state,
    (SELECT xact_commit FROM db) AS commits,
    (SELECT xact_rollback FROM db) AS rollbacks,
    (SELECT deadlocks FROM db) AS deadlocks,
    pg_notification_queue_usage()::float8 AS notify_usage,
    current_database() AS database,
    current_user AS role
"""


def blocked_pairs_sql(server_version_num: int) -> str:
    """Who waits on whom; pg_locks.waitstart (PostgreSQL 14+) says since when, else the query's start."""
    since = "coalesce(w.since, a.query_start)" if server_version_num >= 140000 else "a.query_start"
    lateral = (
        "LEFT JOIN LATERAL (SELECT min(l.waitstart) AS since FROM pg_locks l "
        "WHERE l.pid = a.pid AND NOT l.granted) w ON true"
        if server_version_num >= 140000
        else ""
    )
    return f"""
SELECT a.pid AS blocked_pid, b.pid AS blocking_pid,
       extract(epoch FROM clock_timestamp() - {since})::float8 AS wait_s,
       left(a.query, {QUERY_CHARS}) AS blocked_query, left(b.query, {QUERY_CHARS}) AS blocking_query,
       b.state AS blocking_state
FROM pg_stat_activity a
CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS blocker(pid)
LEFT JOIN pg_stat_activity b ON b.pid = blocker.pid
{lateral}
WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
ORDER BY wait_s DESC NULLS LAST
LIMIT {MAX_PAIRS}
"""


# Settings for wsmon's own session, sent as SET after connecting: a pooler such as PgBouncer rejects
# unknown startup parameters, but passes SET through.
def _session_settings(timeout: float) -> list[str]:
    statement_ms = max(int(timeout * 1000), 100)
    return [
        f"SET statement_timeout = {statement_ms}",
        f"SET lock_timeout = {statement_ms}",
        "SET default_transaction_read_only = on",
    ]


def classify_postgres_error(exc: BaseException) -> tuple[str, str]:
    """(kind, one-line error) for a failed connection or query."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "auth", f"authentication failed: {text}"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return "auth", text  # unknown role, or no pg_hba.conf entry
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return "denied", text
    if isinstance(exc, asyncpg.InvalidCatalogNameError | asyncpg.TooManyConnectionsError):
        return "rejected", text
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return "unavailable", text  # starting up, shutting down, in recovery
    if isinstance(exc, asyncpg.QueryCanceledError):
        return "timeout", f"statement timeout: {text}"
    if isinstance(exc, TimeoutError):
        return "timeout", "timed out"
    if isinstance(exc, ConnectionRefusedError) or "Errno 111" in text or "refused" in text.lower():
        return "refused", "connection refused (ECONNREFUSED)"
    if isinstance(exc, socket.gaierror):
        return "dns", "name not resolved"
    if isinstance(exc, asyncpg.AdminShutdownError | asyncpg.PostgresConnectionError | ConnectionError):
        return "dropped", text
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in text:
        return "dropped", text
    if "password" in text.lower() and isinstance(exc, asyncpg.InterfaceError | asyncpg.PostgresError):
        return "auth", text  # e.g. the server asked for a password and the DSN has none
    if isinstance(exc, OSError):
        return "error", exc.strerror or text
    return "error", text if isinstance(exc, asyncpg.PostgresError) else f"{type(exc).__name__}: {text}"


@dataclass
class _Baseline:
    mono: float
    commits: int
    rollbacks: int
    deadlocks: int
    own_statements: int


@dataclass
class _Poll:
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    hints: list[tuple[str, str]] = field(default_factory=list)  # (key, text)


class PostgresSource(PolledSource):
    """Samples one PostgreSQL database every ``interval`` on one dedicated connection; never raises."""

    kind = "postgres"

    def __init__(
        self, dsn: str, *, target: str = "postgres", interval: float = 1.0, timeout: float = 2.0
    ) -> None:
        super().__init__(target, interval)
        self.dsn = dsn
        self.timeout = timeout
        self._conn: asyncpg.Connection | None = None
        self._version = 0
        self._hinted: set[str] = set()
        self._baseline: _Baseline | None = None
        # wsmon's own statements: each is a transaction that pg_stat_database counts as a commit.
        self._own_statements = 0
        self._prepared: set[str] = set()
        self._owed = 0

    @property
    def address(self) -> str:
        return redact_url(self.dsn)

    async def check(self) -> CheckResult:
        """Connect, time SELECT 1, read the statistics once: hidden sessions are the hint."""
        try:
            await self._connect()
            poll = await self._poll()
        except Exception as exc:
            kind, error = classify_postgres_error(exc)
            return CheckResult(ok=False, error=scrub(error, self.dsn), kind=kind, hint=_failure_hint(kind))
        finally:
            await self.close()
        return CheckResult(
            ok=True, latency_ms=poll.fields.get("select1_ms"), hint="; ".join(text for _, text in poll.hints)
        )

    async def poll_once(self, emit: Emit) -> Up | Down:
        try:
            await self._connect()
            poll = await self._poll()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            kind, error = classify_postgres_error(exc)
            if kind == "error":
                wall, mono = now()
                text = scrub(f"postgres sample failed: {error}", self.dsn)
                emit(ev.LogLine(wall=wall, mono=mono, level="error", text=text, source=self.target))
            await self.close()
            return Down(scrub(error, self.dsn), kind)
        wall, mono = now()
        version = f"PostgreSQL {self._version // 10000}.{self._version % 10000}" if self._version else ""
        read: list[ev.Event] = []
        for key, text in poll.hints:
            if key not in self._hinted:
                self._hinted.add(key)
                read.append(ev.Hint(wall=wall, mono=mono, target=self.target, text=text))
        read.append(
            ev.PostgresSample(wall=wall, mono=mono, target=self.target, extra=poll.extra, **poll.fields)
        )
        select1_ms = poll.fields.get("select1_ms")
        if select1_ms is not None:
            read.append(ev.LatencySample(wall=wall, mono=mono, kind="db", ms=select1_ms, target=self.target))
        return Up(version, then=read)

    async def _connect(self) -> None:
        if self._conn is not None:
            return
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.timeout,
            command_timeout=self.timeout + 1.0,
            server_settings={"application_name": "wsmon"},
        )
        try:
            for statement in _session_settings(self.timeout):
                await conn.execute(statement)
            self._version = int(await conn.fetchval("SELECT current_setting('server_version_num')::int"))
            # Prepared now so the first SELECT 1 times a round trip, not a prepare.
            await conn.fetchval("SELECT 1")
            # SETs run as simple queries; the others were prepared, then run: two transactions each.
            self._own_statements = len(_session_settings(self.timeout)) + 4
            self._prepared = {"SELECT 1"}
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self._baseline = None
        self._owed = 0

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # terminate(): no goodbye round trip to a server that may be gone or frozen.
            conn.terminate()

    async def _poll(self) -> _Poll:
        conn = self._conn
        assert conn is not None
        poll = _Poll()
        started = time.perf_counter()
        self._count_own("SELECT 1")
        await conn.fetchval("SELECT 1")
        poll.fields["select1_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        own_before = self._count_own(STATS_SQL)
        try:
            row = await conn.fetchrow(STATS_SQL)
        except asyncpg.InsufficientPrivilegeError as exc:
            poll.hints.append(("stats", f"PostgreSQL denied the statistics views to this role: {exc}"))
            return poll
        assert row is not None
        self._read_stats(poll, row, own_before)
        if poll.fields["sessions"].get("waiting"):
            pairs_sql = blocked_pairs_sql(self._version)
            self._count_own(pairs_sql)
            pairs = await conn.fetch(pairs_sql)
            poll.extra["blocked"] = [
                {
                    "blocked_pid": r["blocked_pid"],
                    "blocking_pid": r["blocking_pid"],
                    "wait_s": _round(r["wait_s"]),
                    "blocked_query": shown_query(r["blocked_query"]),
                    "blocking_query": shown_query(r["blocking_query"]),
                    "blocking_state": r["blocking_state"] or "",
                }
                for r in pairs
            ]
        return poll

    def _count_own(self, sql: str) -> int:
        """Count a statement about to run; returns the count before it, the baseline for deltas.

        asyncpg prepares a statement the first time it runs on a connection, and the prepare is a
        transaction of its own, so it counts as a commit too.
        """
        before = self._own_statements
        self._own_statements += 1 if sql in self._prepared else 2
        self._prepared.add(sql)
        return before

    def _read_stats(self, poll: _Poll, row: asyncpg.Record, own_before: int) -> None:
        fields, extra = poll.fields, poll.extra
        sessions = {"active": 0, "idle": 0, "idle_in_transaction": 0, "waiting": 0}
        sessions.update(zip(row["state_names"] or [], row["state_counts"] or [], strict=True))
        fields["sessions"] = sessions
        fields["connections"] = row["connections"]
        fields["max_connections"] = row["max_connections"]
        fields["longest_query_s"] = _round(row["query_s"])
        fields["longest_xact_s"] = _round(row["xact_s"])
        fields["notify_queue_usage"] = row["notify_usage"]
        extra["database"] = row["database"]
        extra["role"] = row["role"]
        if row["query_pid"] is not None:
            extra["longest_query"] = {
                "pid": row["query_pid"],
                "seconds": _round(row["query_s"]),
                "query": shown_query(row["query_text"]),
            }
        if row["xact_pid"] is not None:
            extra["longest_xact"] = {
                "pid": row["xact_pid"],
                "seconds": _round(row["xact_s"]),
                "state": row["xact_state"] or "",
                "query": shown_query(row["xact_query"]),
            }
        hidden = sessions.get("hidden", 0)
        if hidden:
            role = row["role"]
            text = (
                f'PostgreSQL hides other roles\' sessions from role "{role}": {hidden} shown as hidden, '
                f"their state, queries and locks unknown (GRANT pg_monitor TO {role})"
            )
            poll.hints.append(("hidden", text))
        self._read_counters(poll, row, own_before)

    def _read_counters(self, poll: _Poll, row: asyncpg.Record, own_before: int) -> None:
        if row["commits"] is None:
            return
        mono = time.monotonic()
        current = _Baseline(
            mono, int(row["commits"]), int(row["rollbacks"]), int(row["deadlocks"]), own_before
        )
        base, self._baseline = self._baseline, current
        if base is None:
            self._owed = own_before  # the session's first statements may not be counted yet either
            return
        if mono <= base.mono:
            return
        commits = current.commits - base.commits
        rollbacks = current.rollbacks - base.rollbacks
        deadlocks = current.deadlocks - base.deadlocks
        if min(commits, rollbacks, deadlocks) < 0:
            return  # statistics were reset: no honest delta this time
        # A backend flushes its statistics about once a second, not per statement: our own
        # statements show up late and in bursts, so they are owed and paid off as they appear.
        own = current.own_statements - base.own_statements
        elapsed = mono - base.mono
        self._owed = min(self._owed + own, own * math.ceil(_FLUSH_LAG_S / elapsed))
        paid = min(commits, self._owed)
        self._owed -= paid
        others = commits - paid
        poll.fields["commits_per_s"] = round(others / elapsed, 2)
        poll.fields["rollbacks_per_s"] = round(rollbacks / elapsed, 2)
        poll.fields["deadlocks"] = deadlocks
        poll.extra["commits"] = others
        poll.extra["rollbacks"] = rollbacks


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _failure_hint(kind: str) -> str:
    return {
        "refused": "is PostgreSQL running, and listening on this host and port (listen_addresses)?",
        "auth": "check the role and password in the DSN, and pg_hba.conf",
        "timeout": "the server did not answer in time: overloaded, or a firewall dropping packets",
        "dns": "check the host name in the DSN",
        "rejected": "check the database name, and whether max_connections is reached",
    }.get(kind, "")


_PASSWORD_LITERAL = re.compile(r"(\bpassword\s+)'(?:[^']|'')*'?", re.IGNORECASE)


def shown_query(query: str | None) -> str:
    """Another session's SQL as wsmon keeps it: ``PASSWORD '…'`` (CREATE/ALTER ROLE) and values given
    to secret-named columns or parameters (``token = '…'``, ``password=…``) masked."""
    if not query:
        return ""
    return redact_text(_PASSWORD_LITERAL.sub(lambda m: f"{m.group(1)}'{MASK}'", query))
