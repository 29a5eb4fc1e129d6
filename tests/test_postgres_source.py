"""The PostgreSQL source against real servers: the machine's PostgreSQL (advisory locks only, nothing
written) and a private cluster (initdb into a temp dir), which the ``private_instance`` tests may kill,
restart and create roles in.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from services import DATABASE_URL, SHOWN_DATABASE_URL, Collector, PrivatePostgres, running, unavailable

from wsmon.core import events as ev
from wsmon.sources.postgres import PostgresSource

INTERVAL = 0.2


def _pg_sample(e: ev.Event) -> ev.PostgresSample:
    assert isinstance(e, ev.PostgresSample)
    return e


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres("pg-Secr3t")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg(cluster: PrivatePostgres) -> PrivatePostgres:
    """The private cluster, running (a test before may have killed it)."""
    if not cluster.running:
        cluster.start()
    return cluster


@contextlib.asynccontextmanager
async def sessions(url: str, count: int) -> AsyncIterator[list[asyncpg.Connection]]:
    conns = [await asyncpg.connect(url) for _ in range(count)]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.terminate()


async def test_machine_postgres_shows_a_blocked_pair_and_an_open_transaction() -> None:
    try:
        (await asyncpg.connect(DATABASE_URL, timeout=3)).terminate()
    except Exception as exc:
        unavailable(f"the machine's PostgreSQL at {SHOWN_DATABASE_URL} is not answering: {exc}")
    key = uuid.uuid4().int % (2**62)  # an advisory lock nobody else uses; nothing is written
    collector = Collector()
    async with sessions(DATABASE_URL, 3) as (holder, waiter, in_xact):
        holder_pid, waiter_pid = holder.get_server_pid(), waiter.get_server_pid()
        await holder.execute(f"SELECT pg_advisory_lock({key})")
        waiting = asyncio.create_task(waiter.execute(f"SELECT pg_advisory_lock({key}) /* wsmon-test-wait */"))
        await in_xact.execute("BEGIN; SELECT 1")
        async with running(PostgresSource(DATABASE_URL, interval=INTERVAL), collector):
            sample = _pg_sample(
                await collector.wait_for(
                    ev.PostgresSample,
                    lambda e: any(p["blocked_pid"] == waiter_pid for p in e.extra.get("blocked", [])),  # type: ignore[attr-defined]
                )
            )
        waiting.cancel()
    pair = next(p for p in sample.extra["blocked"] if p["blocked_pid"] == waiter_pid)
    assert pair["blocking_pid"] == holder_pid
    assert "wsmon-test-wait" in pair["blocked_query"] and pair["wait_s"] >= 0
    assert sample.sessions["waiting"] >= 1 and sample.sessions["idle_in_transaction"] >= 1
    assert sample.select1_ms is not None and 0 < sample.select1_ms < 200
    assert sample.max_connections is not None and sample.connections is not None
    assert 4 <= sample.connections <= sample.max_connections
    assert sample.longest_xact_s is not None and sample.notify_queue_usage is not None
    assert sample.extra["database"] == "test"
    latency = collector.of(ev.LatencySample)
    assert latency and latency[0].kind == "db"  # type: ignore[attr-defined]


@pytest.mark.private_instance
async def test_pg_monitor_role_sees_every_session_by_state_without_its_own(pg: PrivatePostgres) -> None:
    admin = await asyncpg.connect(pg.url())
    await admin.execute("CREATE ROLE watcher LOGIN PASSWORD 'watch-pw' IN ROLE pg_monitor")
    admin.terminate()
    long_query = "SELECT pg_sleep(30) /* " + "x" * 200 + " */"
    collector = Collector()
    async with sessions(pg.url(), 4) as (holder, waiter, in_xact, busy):
        pids = {
            name: conn.get_server_pid()
            for name, conn in zip(
                ("holder", "waiter", "xact", "busy"), (holder, waiter, in_xact, busy), strict=True
            )
        }
        await in_xact.execute("BEGIN; SELECT 1")  # first, so it is the longest transaction
        await holder.execute("SELECT pg_advisory_lock(7)")
        waiting = asyncio.create_task(waiter.execute("SELECT pg_advisory_lock(7)"))
        sleeping = asyncio.create_task(busy.execute(long_query))
        source = PostgresSource(pg.url("watcher", "watch-pw"), interval=INTERVAL)
        async with running(source, collector):
            sample = _pg_sample(
                await collector.wait_for(ev.PostgresSample, lambda e: bool(e.extra.get("blocked")))  # type: ignore[attr-defined]
            )
        for task in (waiting, sleeping):
            task.cancel()
    assert sample.sessions == {"active": 1, "idle": 1, "idle_in_transaction": 1, "waiting": 1}
    assert sample.connections == 5 and sample.max_connections == 30
    assert sample.extra["blocked"] == [
        {
            "blocked_pid": pids["waiter"],
            "blocking_pid": pids["holder"],
            "wait_s": sample.extra["blocked"][0]["wait_s"],
            "blocked_query": "SELECT pg_advisory_lock(7)",
            "blocking_query": "SELECT pg_advisory_lock(7)",
            "blocking_state": "idle",
        }
    ]
    longest = sample.extra["longest_query"]
    assert longest["pid"] in {pids["busy"], pids["waiter"]}
    assert sample.longest_query_s is not None and sample.longest_query_s > 0
    query_texts = [sample.extra["longest_query"]["query"], sample.extra["longest_xact"]["query"]]
    assert all(len(q) <= 120 for q in query_texts)
    assert sample.extra["longest_xact"]["pid"] == pids["xact"]
    assert sample.extra["role"] == "watcher"
    assert not collector.of(ev.Hint), "pg_monitor sees everything: no hint"


@pytest.mark.private_instance
async def test_a_role_without_pg_monitor_gets_a_hint_about_hidden_sessions(pg: PrivatePostgres) -> None:
    admin = await asyncpg.connect(pg.url())
    await admin.execute("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
    collector = Collector()
    try:
        async with running(PostgresSource(pg.url("plain", "plain-pw"), interval=INTERVAL), collector):
            hint = await collector.wait_for(ev.Hint)
            sample = _pg_sample(await collector.wait_for(ev.PostgresSample))
        check = await PostgresSource(pg.url("plain", "plain-pw")).check()
    finally:
        admin.terminate()
    assert "GRANT pg_monitor TO plain" in hint.text  # type: ignore[attr-defined]
    assert sample.sessions.get("hidden", 0) >= 1
    assert check.ok and "pg_monitor" in check.hint


@pytest.mark.private_instance
async def test_commits_rollbacks_and_a_deadlock_are_counted_once(pg: PrivatePostgres) -> None:
    collector = Collector()

    def total(name: str) -> int:
        return sum(e.extra.get(name, 0) for e in collector.of(ev.PostgresSample))  # type: ignore[attr-defined]

    def deadlocks() -> int:
        return sum(e.deadlocks or 0 for e in collector.of(ev.PostgresSample))  # type: ignore[attr-defined]

    async with running(PostgresSource(pg.url(), interval=INTERVAL), collector):
        await collector.wait_for(ev.PostgresSample, lambda e: e.commits_per_s is not None)  # type: ignore[attr-defined]
        async with sessions(pg.url(), 2) as (first, second):
            for _ in range(25):
                await first.execute("SELECT 1")
            await first.execute("BEGIN; SELECT pg_advisory_xact_lock(1)")
            await second.execute("BEGIN; SELECT pg_advisory_xact_lock(2)")
            crossing = asyncio.create_task(first.execute("SELECT pg_advisory_xact_lock(2)"))
            with contextlib.suppress(asyncpg.DeadlockDetectedError):
                await second.execute("SELECT pg_advisory_xact_lock(1)")
            with contextlib.suppress(asyncpg.DeadlockDetectedError):
                await crossing
        # Closing the sessions flushes their statistics now rather than within the next seconds.
        await collector.wait_for(ev.PostgresSample, lambda e: deadlocks() >= 1 and total("commits") >= 25)
        await collector.wait_for(ev.PostgresSample, after=len(collector.events))
    assert deadlocks() == 1
    assert 25 <= total("commits") <= 30  # the 25, plus whatever transaction survived the deadlock
    assert total("rollbacks") >= 1  # the deadlock's victim
    assert any((e.commits_per_s or 0) > 0 for e in collector.of(ev.PostgresSample))  # type: ignore[attr-defined]


@pytest.mark.private_instance
async def test_kill_9_is_down_then_up_again_on_restart(pg: PrivatePostgres) -> None:
    collector = Collector()
    async with running(PostgresSource(pg.url(), interval=INTERVAL), collector) as task:
        await collector.wait_for(ev.PostgresSample)
        pg.kill()
        down = await collector.wait_for(ev.TargetDown)
        assert down.kind in {"dropped", "refused"}, down  # type: ignore[attr-defined]
        assert down.error  # type: ignore[attr-defined]
        mark = len(collector.events)
        await asyncio.to_thread(pg.start)
        up = await collector.wait_for(ev.TargetUp, after=mark, timeout=10)
        await collector.wait_for(ev.PostgresSample, after=collector.events.index(up))
        assert not task.done()
    downs = collector.of(ev.TargetDown)
    assert len(collector.of(ev.TargetUp)) == 2 and 1 <= len(downs) <= 2
    assert len({d.kind for d in downs}) == len(downs)  # type: ignore[attr-defined]


@pytest.mark.private_instance
async def test_down_at_start_then_up_when_the_server_starts(pg: PrivatePostgres) -> None:
    pg.kill()
    collector = Collector()
    assert (await PostgresSource(pg.url()).check()).kind == "refused"
    async with running(PostgresSource(pg.url(), interval=INTERVAL), collector):
        down = await collector.wait_for(ev.TargetDown)
        assert down.kind == "refused" and "refused" in down.error  # type: ignore[attr-defined]
        await asyncio.to_thread(pg.start)
        await collector.wait_for(ev.TargetUp, timeout=10)
        await collector.wait_for(ev.PostgresSample)
    assert [type(e) for e in collector.events[:2]] == [ev.TargetAdded, ev.TargetDown]
    check = await PostgresSource(pg.url()).check()
    assert check.ok and check.latency_ms is not None and check.latency_ms < 200


@pytest.mark.private_instance
async def test_wrong_password_is_kind_auth_and_the_password_never_shows(pg: PrivatePostgres) -> None:
    url = pg.url(password="Wr0ng-Pa55")
    collector = Collector()
    async with running(PostgresSource(url, interval=INTERVAL), collector):
        down = await collector.wait_for(ev.TargetDown)
    added = collector.events[0]
    assert isinstance(added, ev.TargetAdded) and added.kind == "postgres"
    assert added.address == f"postgresql://postgres:***@127.0.0.1:{pg.port}/postgres"
    assert down.kind == "auth" and "password authentication failed" in down.error  # type: ignore[attr-defined]
    assert "Wr0ng-Pa55" not in repr(collector.events)
    result = await PostgresSource(url).check()
    assert not result.ok and result.kind == "auth" and "Wr0ng-Pa55" not in result.error


@pytest.mark.private_instance
async def test_a_hung_server_is_down_with_kind_timeout_and_recovers(pg: PrivatePostgres) -> None:
    collector = Collector()
    async with running(PostgresSource(pg.url(), interval=INTERVAL, timeout=0.5), collector) as task:
        await collector.wait_for(ev.PostgresSample)
        pg.pause()
        try:
            down = await collector.wait_for(ev.TargetDown, timeout=5)
        finally:
            pg.resume()
        await collector.wait_for(ev.TargetUp, after=collector.events.index(down), timeout=10)
        await collector.wait_for(ev.PostgresSample, after=len(collector.events))
        assert not task.done()
    assert down.kind == "timeout", down  # type: ignore[attr-defined]
