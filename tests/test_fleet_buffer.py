"""The publisher's outage buffer is bounded, and what it drops is said: a private Redis that is down
while events are emitted, then started; the fleet's reader, in process, reads the stream over a real
socket and says how many events the node lost. Also: a stream entry this wsmon cannot read is a
warning, never a crash."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from services import Collector, PrivateRedis, running

from wsmon.core import events as ev
from wsmon.core.fleet import LOST_EVENTS, REGISTRY, stream_key
from wsmon.outputs.publish import Publisher
from wsmon.sources.fleet import FleetSource

pytestmark = pytest.mark.private_instance


def _marker(number: int) -> ev.Marker:
    return ev.Marker(wall=1_800_000_000.0 + number, mono=float(number), text=f"m{number}")


async def test_an_outage_past_the_buffer_drops_and_counts_what_did_not_fit() -> None:
    server = PrivateRedis()  # not started yet: the agent begins in an outage
    errors: list[str] = []
    publisher = Publisher(server.url, "node-x", on_error=errors.append, max_events=100)
    task = asyncio.create_task(publisher.run())
    try:
        for number in range(250):
            publisher.on_event(_marker(number))
        assert publisher.dropped_total == 150
        await asyncio.sleep(0.3)
        assert errors and "buffering events" in errors[0]
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(publisher.connected.wait(), 10)

        fleet = FleetSource(server.url)
        collector = Collector()
        async with running(fleet, collector):
            lost = await collector.wait_for(ev.LogLine, lambda e: LOST_EVENTS in e.fields)
            await collector.wait_for(ev.Marker, lambda e: e.text == "node-x: m99")
        assert isinstance(lost, ev.LogLine)
        assert lost.fields[LOST_EVENTS] == "150"
        assert lost.text.startswith("node node-x lost 150 events")
        markers = [e.text for e in collector.of(ev.Marker)]
        assert markers == [f"node-x: m{n}" for n in range(100)]  # the first 100 kept, in order
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()


async def test_an_unreadable_entry_is_a_warning_and_the_stream_goes_on() -> None:
    server = PrivateRedis()
    await asyncio.to_thread(server.start)
    client = aioredis.Redis.from_url(server.url)
    try:
        await client.sadd(REGISTRY, "node-y")
        await client.xadd(
            stream_key("node-y"), {"v": "1", "hb": "1.0", "mono": "1", "run": "r", "seq": "1", "ev": "junk"}
        )
        await client.xadd(stream_key("node-y"), {"v": "9", "hb": "1.0"})
        publisher = Publisher(server.url, "node-y")
        publisher.on_event(_marker(1))
        task = asyncio.create_task(publisher.run())
        collector = Collector()
        async with running(FleetSource(server.url), collector):
            await collector.wait_for(ev.Marker, lambda e: e.text == "node-y: m1")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        warnings = [e.text for e in collector.of(ev.LogLine) if e.level == "warn"]
        assert any("unreadable entry from node node-y" in text for text in warnings), warnings
        assert any("entry format b'9'" in text for text in warnings), warnings
    finally:
        await client.aclose()
        server.close()


async def test_a_silent_node_is_down_and_up_again_when_its_heartbeat_returns() -> None:
    server = PrivateRedis()
    await asyncio.to_thread(server.start)
    try:
        publisher = Publisher(server.url, "node-z")
        task = asyncio.create_task(publisher.run())
        collector = Collector()
        async with running(FleetSource(server.url), collector):
            await collector.wait_for(ev.TargetUp, lambda e: e.target == "node-z")
            task.cancel()  # the agent goes silent without a goodbye, as a killed one does
            with contextlib.suppress(asyncio.CancelledError):
                await task
            down = await collector.wait_for(ev.TargetDown, lambda e: e.target == "node-z", timeout=5)
            mark = len(collector.events)
            task = asyncio.create_task(Publisher(server.url, "node-z").run())
            await collector.wait_for(ev.TargetUp, lambda e: e.target == "node-z", after=mark)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert isinstance(down, ev.TargetDown)
        assert down.kind == "heartbeat" and down.error.startswith("no heartbeat for")
    finally:
        server.close()


async def test_two_viewers_of_one_fleet_each_see_every_event() -> None:
    server = PrivateRedis()
    await asyncio.to_thread(server.start)
    try:
        publisher = Publisher(server.url, "node-w")
        for number in range(300):
            publisher.on_event(_marker(number))
        task = asyncio.create_task(publisher.run())
        first, second = Collector(), Collector()
        async with running(FleetSource(server.url), first), running(FleetSource(server.url), second):
            for viewer in (first, second):
                await viewer.wait_for(ev.Marker, lambda e: e.text == "node-w: m299")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        expected = [f"node-w: m{n}" for n in range(300)]
        assert [e.text for e in first.of(ev.Marker)] == expected
        assert [e.text for e in second.of(ev.Marker)] == expected
    finally:
        server.close()
