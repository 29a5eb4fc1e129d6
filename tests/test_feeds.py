"""Event feeds: spec parsing, message validation, and events over real Redis pub/sub, a real Redis
Stream and real PostgreSQL NOTIFY, with a reconnect after the Redis server is killed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from services import DATABASE_URL, REDIS_URL, Collector, private_postgres, private_redis, running, unavailable

from wsmon.core import events as ev
from wsmon.sources.feeds import FeedSource, FeedSpecError, decode_feed_message, parse_feed_spec


def _clock() -> tuple[float, float]:
    return 1_700_000_000.0, 42.0


def _unique(prefix: str) -> str:
    return f"wsmon-test-{prefix}-{uuid.uuid4().hex[:10]}"


# --- specs ----------------------------------------------------------------------------------------


def test_feed_specs() -> None:
    spec = parse_feed_spec("redis://:hunter2@cache:6380/2#fleet-events")
    assert (spec.kind, spec.url, spec.name) == (
        "redis-pubsub",
        "redis://:hunter2@cache:6380/2",
        "fleet-events",
    )
    assert spec.shown == "redis://:***@cache:6380/2#fleet-events"
    stream = parse_feed_spec("redis://localhost:6379/0#stream:wsmon:events")
    assert (stream.kind, stream.name, stream.shown) == (
        "redis-stream",
        "wsmon:events",
        "redis://localhost:6379/0#stream:wsmon:events",
    )
    pg = parse_feed_spec("postgresql://app:pw@db/app#wsmon_events")
    assert (pg.kind, pg.name, pg.shown) == (
        "postgres",
        "wsmon_events",
        "postgresql://app:***@db/app#wsmon_events",
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("redis://localhost:6379/0", "name the channel after '#'"),
        ("redis://localhost:6379/0#stream:", "name the stream key after '#stream:'"),
        ("postgresql://u:secret@db/app", "name the NOTIFY channel after '#'"),
        ("http://example.com#x", "expected redis://…#channel"),
    ],
)
def test_bad_feed_specs_say_what_to_write(spec: str, expected: str) -> None:
    with pytest.raises(FeedSpecError) as caught:
        parse_feed_spec(spec)
    assert expected in str(caught.value) and "secret" not in str(caught.value)


# --- messages -------------------------------------------------------------------------------------


def test_a_valid_message_keeps_its_wall_and_gets_wsmons_mono() -> None:
    raw = json.dumps(
        {"type": "conn.close", "wall": 1_699_999_999.5, "mono": 123456.0, "conn": "c17", "code": 1006}
    )
    event = decode_feed_message(raw, target="fleet", clock=_clock)
    assert event == ev.ConnectionClosed(
        wall=1_699_999_999.5, mono=42.0, conn="c17", code=1006, source="fleet"
    )


def test_instance_prefixes_connection_ids_and_names_the_source() -> None:
    raw = json.dumps({"type": "delivery.fail", "instance": "i1", "message_id": "m1", "conn": "c17"})
    event = decode_feed_message(raw.encode(), target="fleet", clock=_clock)
    assert isinstance(event, ev.DeliveryFailed)
    assert (event.conn, event.source, event.wall) == ("i1/c17", "i1", 1_700_000_000.0)


def test_a_stream_entry_as_flat_fields_or_one_json_value() -> None:
    flat = {b"type": b"conn.close", b"conn": b"c1", b"code": b"1001", b"wall": b"1699999999.25"}
    event = decode_feed_message(flat, target="fleet", clock=_clock)
    assert event == ev.ConnectionClosed(
        wall=1_699_999_999.25, mono=42.0, conn="c1", code=1001, source="fleet"
    )
    wrapped = {b"event": json.dumps({"type": "marker", "text": "deploy"}).encode()}
    assert decode_feed_message(wrapped, target="fleet", clock=_clock) == ev.Marker(
        wall=1_700_000_000.0, mono=42.0, text="deploy"
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"type": "conn.closd", "conn": "c1"}', "known `type`"),
        (
            '{"type": "conn.close", "conn": "c1", "code": "abnormal"}',
            "Expected `int`, got `str` - at `$.code`",
        ),
        ('{"type": "conn.close", "code": 1006}', "missing required field `conn`"),
        ('{"type": "marker", "text": "x", "wall": "yesterday"}', "`wall` must be a number"),
    ],
)
def test_invalid_messages_become_warnings(raw: str, why: str) -> None:
    event = decode_feed_message(raw, target="fleet", clock=_clock)
    assert isinstance(event, ev.LogLine) and event.level == "warn" and event.source == "fleet"
    assert event.text.startswith("feed message rejected: ") and why in event.text, event.text


# --- real servers ---------------------------------------------------------------------------------


async def _redis_client(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        unavailable(f"Redis at {url} is not reachable: {error}")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    async for client in _redis_client(REDIS_URL):
        yield client


async def _subscribed(source: FeedSource) -> None:
    await asyncio.wait_for(source.subscribed.wait(), 10)


async def test_event_over_real_redis_pubsub(redis_client: aioredis.Redis) -> None:
    channel = _unique("pubsub")
    source = FeedSource(f"{REDIS_URL}#{channel}", target="fleet")
    collector = Collector()
    async with running(source, collector):
        await _subscribed(source)
        event = {"type": "conn.close", "instance": "i2", "conn": "c5", "code": 1005, "closed_by": "client"}
        await redis_client.publish(channel, json.dumps(event))
        await redis_client.publish(channel, "{broken")
        closed = await collector.wait_for(ev.ConnectionClosed)
        warning = await collector.wait_for(ev.LogLine)
    assert isinstance(closed, ev.ConnectionClosed)
    assert (closed.conn, closed.code, closed.closed_by, closed.source) == ("i2/c5", 1005, "client", "i2")
    assert isinstance(warning, ev.LogLine) and "not JSON" in warning.text
    added = collector.of(ev.TargetAdded)[0]
    assert (
        isinstance(added, ev.TargetAdded) and added.kind == "feed" and added.address.endswith(f"#{channel}")
    )


async def test_events_from_a_real_redis_stream(redis_client: aioredis.Redis) -> None:
    key = _unique("stream")
    await redis_client.xadd(key, {"event": json.dumps({"type": "marker", "text": "before wsmon"})})
    try:
        source = FeedSource(f"{REDIS_URL}#stream:{key}", target="fleet")
        collector = Collector()
        async with running(source, collector):
            await _subscribed(source)
            await redis_client.xadd(key, {"type": "conn.open", "conn": "c1", "instance": "i3"})
            await redis_client.xadd(key, {"event": json.dumps({"type": "marker", "text": "after"})})
            await collector.wait_for(ev.Marker, lambda e: e.text == "after")  # type: ignore[attr-defined]
        opened = collector.of(ev.ConnectionOpened)
        assert len(opened) == 1 and opened[0].conn == "i3/c1"  # type: ignore[attr-defined]
        # Only what was added after wsmon started reading: the stream's history is not replayed.
        assert [e.text for e in collector.of(ev.Marker)] == ["after"]  # type: ignore[attr-defined]
        assert await redis_client.xlen(key) == 3  # read-only: nothing added, trimmed or acknowledged
    finally:
        await redis_client.delete(key)


async def test_event_over_real_postgres_notify() -> None:
    try:
        notifier = await asyncpg.connect(DATABASE_URL, timeout=5)
    except Exception as error:
        unavailable(f"PostgreSQL at {DATABASE_URL} is not reachable: {error}")
    channel = _unique("notify").replace("-", "_")
    try:
        source = FeedSource(f"{DATABASE_URL}#{channel}", target="fleet")
        collector = Collector()
        async with running(source, collector):
            await _subscribed(source)
            payload = {
                "type": "delivery.fail",
                "message_id": "msg_1",
                "conn": "c9",
                "reason": "Connection not open",
            }
            await notifier.execute("SELECT pg_notify($1, $2)", channel, json.dumps(payload))
            failed = await collector.wait_for(ev.DeliveryFailed)
        assert isinstance(failed, ev.DeliveryFailed)
        assert (failed.message_id, failed.conn, failed.reason, failed.source) == (
            "msg_1",
            "c9",
            "Connection not open",
            "fleet",
        )
        assert collector.of(ev.TargetUp) and not collector.of(ev.TargetDown)
    finally:
        await notifier.close()


async def test_redis_feed_reconnects_after_the_server_is_killed() -> None:
    with private_redis("--requirepass", "s3cret-pw") as server:
        url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
        source = FeedSource(f"{url}#events", target="fleet")
        collector = Collector()
        async with running(source, collector):
            await _subscribed(source)
            server.kill()
            down = await collector.wait_for(ev.TargetDown)
            server.start()
            await collector.wait_for(ev.TargetUp, after=collector.events.index(down))
            await _subscribed(source)
            async for client in _redis_client(url):
                await client.publish("events", json.dumps({"type": "marker", "text": "back"}))
            await collector.wait_for(ev.Marker)
        shown = " ".join(str(e) for e in collector.events)
        assert "s3cret-pw" not in shown
        assert isinstance(down, ev.TargetDown) and down.error


async def test_postgres_feed_reconnects_after_the_server_is_killed() -> None:
    with private_postgres() as server:
        url = server.url()
        source = FeedSource(f"{url}#wsmon_events", target="fleet")
        collector = Collector()
        async with running(source, collector):
            await _subscribed(source)
            server.kill()
            down = await collector.wait_for(ev.TargetDown, timeout=20)
            server.start()
            await collector.wait_for(ev.TargetUp, after=collector.events.index(down), timeout=20)
            await _subscribed(source)
            notifier = await asyncpg.connect(url, timeout=5)
            try:
                await notifier.execute(
                    "SELECT pg_notify('wsmon_events', $1)", '{"type": "marker", "text": "back"}'
                )
            finally:
                await notifier.close()
            await collector.wait_for(ev.Marker)
        assert server.password not in " ".join(str(e) for e in collector.events)
