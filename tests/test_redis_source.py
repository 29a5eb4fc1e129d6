"""The Redis source against real servers: the machine's Redis (read-only) and private instances.

Tests marked ``private_instance`` start their own redis-server on a free port; only those kill,
restart or configure a server.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from services import REDIS_URL, SHOWN_REDIS_URL, Collector, PrivateRedis, private_redis, running, unavailable

from wsmon.core import events as ev
from wsmon.sources.redis_source import ACL_RULE, RedisSource, slowlog_entry

INTERVAL = 0.2


def _redis_sample(e: ev.Event) -> ev.RedisSample:
    assert isinstance(e, ev.RedisSample)
    return e


def _evicted_total(e: ev.Event) -> int:
    total = _redis_sample(e).extra.evicted_keys_total
    return -1 if total is None else total


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with private_redis() as instance:
        yield instance


@pytest.fixture
async def admin(server: PrivateRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(server.url, decode_responses=True, protocol=2)
    yield client
    await client.aclose()


async def test_machine_redis_is_sampled() -> None:
    probe = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await probe.ping()
    except Exception as exc:
        unavailable(f"the machine's Redis at {SHOWN_REDIS_URL} is not answering: {exc}")
    finally:
        await probe.aclose()
    collector = Collector()
    async with running(RedisSource(REDIS_URL, interval=INTERVAL), collector):
        first = _redis_sample(await collector.wait_for(ev.RedisSample))
        latency = await collector.wait_for(ev.LatencySample)
        second = _redis_sample(
            await collector.wait_for(ev.RedisSample, after=collector.events.index(first) + 1)
        )
    added = collector.events[0]
    assert isinstance(added, ev.TargetAdded) and added.kind == "redis"
    assert collector.of(ev.TargetUp) and not collector.of(ev.TargetDown)
    assert first.ping_ms is not None and 0 < first.ping_ms < 1000
    assert first.connected_clients is not None and first.connected_clients >= 1
    assert first.used_memory is not None and first.used_memory > 0
    assert first.maxmemory is not None
    assert second.evicted_keys is not None and second.rejected_connections is not None
    assert isinstance(latency, ev.LatencySample) and latency.kind == "redis" and latency.ms == first.ping_ms


@pytest.mark.private_instance
async def test_hit_ratio_ops_and_pubsub_from_a_private_redis(
    server: PrivateRedis, admin: aioredis.Redis
) -> None:
    await admin.set("present", "1")
    subscriber = admin.pubsub()
    await subscriber.subscribe("wsmon-test-channel")
    collector = Collector()
    async with running(RedisSource(server.url, interval=INTERVAL), collector):
        await collector.wait_for(ev.RedisSample)
        mark = len(collector.events)
        # One transaction, so all 40 lookups land between the same two samples: 30 hits, 10 misses.
        async with admin.pipeline(transaction=True) as pipe:
            for _ in range(30):
                pipe.get("present")
            for _ in range(10):
                pipe.get("absent")
            await pipe.execute()
        sample = _redis_sample(
            await collector.wait_for(ev.RedisSample, lambda e: e.hit_ratio is not None, after=mark)  # type: ignore[attr-defined]
        )
    await subscriber.aclose()
    assert sample.hit_ratio == 0.75
    # The 40 GETs plus MULTI/EXEC, spread over one interval, with wsmon's own commands left out.
    assert sample.ops_per_sec is not None and 42 / (INTERVAL * 3) < sample.ops_per_sec < 42 / (INTERVAL * 0.5)
    assert sample.extra.pubsub_channels == 1
    assert sample.extra.pubsub_top == [ev.PubsubChannel(channel="wsmon-test-channel", subscribers=1)]
    assert sample.extra.pubsub_clients == 1
    idle = [s for s in collector.of(ev.RedisSample) if s.hit_ratio is None]  # type: ignore[attr-defined]
    assert all(s.ops_per_sec is not None and s.ops_per_sec < 5 for s in idle[1:]), "wsmon counted itself"


@pytest.mark.private_instance
async def test_evicted_keys_are_deltas_that_add_up(server: PrivateRedis, admin: aioredis.Redis) -> None:
    await admin.config_set("maxmemory", str(2 * 1024 * 1024))
    await admin.config_set("maxmemory-policy", "allkeys-random")
    collector = Collector()
    async with running(RedisSource(server.url, interval=INTERVAL), collector):
        await collector.wait_for(ev.RedisSample)
        for batch in range(6):
            async with admin.pipeline(transaction=False) as pipe:
                for i in range(500):
                    pipe.set(f"k{batch}:{i}", "x" * 1000)
                await pipe.execute()
            # Redis may go on evicting in the background, so "at least": then the next batch.
            total = int((await admin.info("stats"))["evicted_keys"])
            await collector.wait_for(
                ev.RedisSample,
                lambda e, total=total: _evicted_total(e) >= total,
            )
    samples = [_redis_sample(e) for e in collector.of(ev.RedisSample)]
    assert samples[0].maxmemory == 2 * 1024 * 1024 and samples[0].evicted_keys is None  # no baseline yet
    first, last = samples[0].extra.evicted_keys_total, samples[-1].extra.evicted_keys_total
    assert first is not None and last is not None
    grown = last - first
    assert grown > 0
    assert sum(s.evicted_keys or 0 for s in samples[1:]) == grown
    assert sum(1 for s in samples if s.evicted_keys) >= 2, "evictions in separate batches, separate samples"


@pytest.mark.private_instance
async def test_new_slowlog_entries_carry_no_argument_values(
    server: PrivateRedis, admin: aioredis.Redis
) -> None:
    await admin.config_set("slowlog-log-slower-than", "0")
    await admin.set("before", "old-secret")  # logged before wsmon starts: not new
    collector = Collector()
    async with running(RedisSource(server.url, interval=INTERVAL), collector):
        await collector.wait_for(ev.RedisSample)
        await admin.set("session:42", "s3cret-value", ex=60)
        sample = await collector.wait_for(
            ev.RedisSample,
            lambda e: any(x.command == "SET" for x in e.extra.slowlog),  # type: ignore[attr-defined]
        )
    entries = [x for s in collector.of(ev.RedisSample) for x in s.extra.slowlog]  # type: ignore[attr-defined]
    sets = [x for x in entries if x.command == "SET"]
    assert len(sets) == 1 and sets[0].args == 4 and sets[0].duration_us >= 0
    assert "s3cret-value" not in repr(sample) and "session:42" not in repr(sample)
    assert "old-secret" not in repr(collector.events)
    ids = [x.id for x in entries]
    assert len(ids) == len(set(ids)), "an entry was reported twice"


def test_slowlog_entry_counts_arguments_redis_left_out() -> None:
    raw = [7, 0, 120, ["MSET", *(["k", "v"] * 15), "k", "... (10 more arguments)"], "127.0.0.1:5000", ""]
    assert slowlog_entry(raw) == {
        "id": 7,
        "duration_us": 120,
        "command": "MSET",
        "args": 41,
        "client": "127.0.0.1:5000",
    }
    assert slowlog_entry([1, 0, 5, ["config", "set", "requirepass", "x"]])["command"] == "CONFIG SET"


@pytest.mark.private_instance
async def test_subscriber_near_the_output_buffer_limit_is_reported() -> None:
    with private_redis("--client-output-buffer-limit", "pubsub 64mb 8mb 60") as server:
        # A subscriber that never reads, with a tiny receive buffer: Redis queues what it cannot send.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(b"CLIENT SETNAME slow-reader\r\nSUBSCRIBE firehose\r\n")
        publisher = aioredis.Redis.from_url(server.url)
        collector = Collector()
        try:
            async with running(RedisSource(server.url, interval=INTERVAL), collector):
                await collector.wait_for(ev.RedisSample)
                payload = b"x" * 65536
                for _ in range(200):  # 12.5 MiB, far more than the kernel's socket buffers hold
                    await publisher.publish("firehose", payload)
                sample = await collector.wait_for(
                    ev.RedisSample,
                    lambda e: bool(e.extra.pubsub_near_limit),  # type: ignore[attr-defined]
                )
        finally:
            await publisher.aclose()
            slow.close()
    near = sample.extra.pubsub_near_limit  # type: ignore[attr-defined]
    assert [c.client for c in near] == ["slow-reader"]
    assert near[0].limit == 8 * 1024 * 1024 and near[0].omem >= 4 * 1024 * 1024
    assert sample.extra.pubsub_limit == ev.PubsubLimit(hard=64 << 20, soft=8 << 20, soft_seconds=60)  # type: ignore[attr-defined]


@pytest.mark.private_instance
async def test_acl_user_with_only_the_needed_commands_gets_every_figure(
    server: PrivateRedis, admin: aioredis.Redis
) -> None:
    await admin.execute_command("ACL", "SETUSER", "monitor", "on", ">mon-pass", "-@all", *ACL_RULE.split())
    collector = Collector()
    url = f"redis://monitor:mon-pass@127.0.0.1:{server.port}/0"
    async with running(RedisSource(url, interval=INTERVAL), collector):
        await collector.wait_for(ev.RedisSample, lambda e: e.evicted_keys is not None)  # type: ignore[attr-defined]
        sample = _redis_sample(await collector.wait_for(ev.RedisSample, after=len(collector.events)))
    assert not collector.of(ev.Hint), collector.of(ev.Hint)
    assert sample.ping_ms is not None and sample.connected_clients is not None
    extra = sample.extra
    assert None not in (extra.pubsub_channels, extra.pubsub_clients, extra.pubsub_limit)


@pytest.mark.private_instance
async def test_denied_command_is_a_hint_naming_it_and_the_rest_keeps_working(
    server: PrivateRedis, admin: aioredis.Redis
) -> None:
    rule = [r for r in ACL_RULE.split() if r != "+slowlog|get"]
    await admin.execute_command("ACL", "SETUSER", "partial", "on", ">pw", "-@all", *rule)
    collector = Collector()
    url = f"redis://partial:pw@127.0.0.1:{server.port}/0"
    async with running(RedisSource(url, interval=INTERVAL), collector):
        hint = await collector.wait_for(ev.Hint)
        mark = len(collector.events)
        for _ in range(3):
            sample = _redis_sample(await collector.wait_for(ev.RedisSample, after=mark))
            mark = collector.events.index(sample) + 1
    assert "SLOWLOG GET" in hint.text and "+slowlog|get" in hint.text  # type: ignore[attr-defined]
    assert len(collector.of(ev.Hint)) == 1, "the hint is given once"
    assert sample.ping_ms is not None and sample.used_memory is not None
    assert sample.extra.pubsub_clients is not None
    assert not collector.of(ev.TargetDown)


@pytest.mark.private_instance
async def test_wrong_password_is_down_with_kind_auth_and_the_password_never_shows() -> None:
    with private_redis("--requirepass", "right-horse") as server:
        url = f"redis://:wrong-battery@127.0.0.1:{server.port}/0"
        collector = Collector()
        async with running(RedisSource(url, interval=INTERVAL), collector):
            down = await collector.wait_for(ev.TargetDown)
        result = await RedisSource(url).check()
    assert down.kind == "auth", down  # type: ignore[attr-defined]
    added = collector.events[0]
    assert isinstance(added, ev.TargetAdded) and added.address == f"redis://:***@127.0.0.1:{server.port}/0"
    assert "wrong-battery" not in repr(collector.events)
    assert not result.ok and result.kind == "auth" and "wrong-battery" not in result.error


@pytest.mark.private_instance
async def test_kill_9_is_down_then_up_again_on_restart(server: PrivateRedis) -> None:
    collector = Collector()
    async with running(RedisSource(server.url, interval=INTERVAL), collector) as task:
        await collector.wait_for(ev.RedisSample)
        server.kill()
        down = await collector.wait_for(ev.TargetDown)
        assert down.kind in {"refused", "dropped"}, down  # type: ignore[attr-defined]
        assert down.error  # type: ignore[attr-defined]
        mark = len(collector.events)
        server.start()
        # Backoff is capped at 1.5 intervals: recovery is quick.
        up = await collector.wait_for(ev.TargetUp, after=mark, timeout=5)
        await collector.wait_for(ev.RedisSample, after=collector.events.index(up))
        assert not task.done()
    # Down again only if the kind changed while it was down (dropped, then refused until restarted).
    downs = collector.of(ev.TargetDown)
    assert len(collector.of(ev.TargetUp)) == 2 and 1 <= len(downs) <= 2
    assert len({d.kind for d in downs}) == len(downs)  # type: ignore[attr-defined]


@pytest.mark.private_instance
async def test_down_at_start_then_up_when_the_server_starts() -> None:
    server = PrivateRedis()
    try:
        collector = Collector()
        async with running(RedisSource(server.url, interval=INTERVAL), collector):
            down = await collector.wait_for(ev.TargetDown)
            assert down.kind == "refused" and "refused" in down.error  # type: ignore[attr-defined]
            assert not (await RedisSource(server.url).check()).ok
            server.start()
            await collector.wait_for(ev.TargetUp)
            await collector.wait_for(ev.RedisSample)
        check = await RedisSource(server.url).check()
    finally:
        server.close()
    assert [type(e) for e in collector.events[:3]] == [ev.TargetAdded, ev.TargetDown, ev.TargetUp]
    assert check.ok and check.latency_ms is not None and check.hint == ""


@pytest.mark.private_instance
async def test_a_hung_server_is_down_with_kind_timeout_well_before_redis_pys_5_seconds(
    server: PrivateRedis,
) -> None:
    collector = Collector()
    async with running(RedisSource(server.url, interval=INTERVAL, timeout=0.5), collector):
        await collector.wait_for(ev.RedisSample)
        server.pause()
        try:
            down = await collector.wait_for(ev.TargetDown, timeout=3)
        finally:
            server.resume()
        up = await collector.wait_for(ev.TargetUp, after=collector.events.index(down), timeout=5)
    assert down.kind == "timeout", down  # type: ignore[attr-defined]
    assert up.mono - down.mono < 3  # type: ignore[attr-defined]
