"""The tap's worker processes (issue 13 item 2): a worker killed with SIGKILL is restarted, the tap shows
the outage, and the connections it carried are counted as cut by wsmon, not by the server."""

from __future__ import annotations

import asyncio
import os
import signal
import struct

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.test_tap import needs_uvloop, tapped, ws_server
from wsmon.core import events as ev
from wsmon.core.reducer import fold
from wsmon.sources.tap_ipc import BatchReader, SeenMessage, Sent, UpstreamNote, frame


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def up_after(events: list[ev.Event], down: ev.TargetDown) -> bool:
    return any(isinstance(e, ev.TargetUp) for e in events[events.index(down) :])


@pytest.mark.parametrize("uvloop", [False, pytest.param(True, marks=needs_uvloop)], ids=["asyncio", "uvloop"])
async def test_kill_9_of_the_tap_worker_cuts_its_connections_as_wsmon_and_the_tap_comes_back(
    uvloop: bool,
) -> None:
    async with ws_server(echo) as upstream, tapped(f"ws://127.0.0.1:{upstream}", uvloop=uvloop) as (tap, rec):
        clients = [await connect(f"ws://127.0.0.1:{tap.port}/{n}") for n in range(3)]
        for ws in clients:
            await ws.send("before")
            assert await ws.recv() == "before"
        await rec.until(lambda r: len(r.of(ev.ConnectionOpened)) == 3 and bool(r.of(ev.TargetUp)))
        worker = tap.running[0].process
        assert worker is not None and worker.pid != os.getpid()
        os.kill(worker.pid, signal.SIGKILL)

        def cut(r: object) -> list[ev.ConnectionClosed]:
            return [e for e in rec.of(ev.ConnectionClosed) if e.closed_by == "wsmon"]

        await rec.until(lambda r: len(cut(r)) == 3)
        for ws in clients:  # the kernel closed the dead worker's sockets: the clients see it too
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        [down] = rec.of(ev.TargetDown)
        assert down.target == "tap" and "tap worker 0 was killed by SIGKILL" in down.error
        await rec.until(lambda r: up_after(r.events, down))

        async with connect(f"ws://127.0.0.1:{tap.port}/after") as ws:  # the restarted worker relays
            await ws.send("after")
            assert await ws.recv() == "after"
        await rec.until(lambda r: len(r.of(ev.ConnectionClosed)) == 4)

    opened = [e.conn for e in rec.of(ev.ConnectionOpened)]
    assert len(set(opened)) == 4  # ids stay unique across the restart
    for closed in cut(rec):
        assert closed.code == 1006 and closed.reason.startswith("cut by wsmon: tap worker 0 was killed")
        assert closed.duration_s is not None and closed.duration_s >= 0
    [last] = [e for e in rec.of(ev.ConnectionClosed) if e.closed_by != "wsmon"]
    assert (last.code, last.closed_by) == (1000, "client")
    state = fold(rec.events)
    assert state.closed_by == {"wsmon": 3, "client": 1}
    assert state.close_codes == {1006: 3, 1000: 1}
    assert state.open_count == 0


async def test_a_worker_ended_from_outside_is_an_outage_and_restarted_too() -> None:
    """SIGTERM from someone else: the worker ends cleanly, but the session did not ask it to."""
    async with ws_server(echo) as upstream, tapped(f"ws://127.0.0.1:{upstream}") as (tap, rec):
        async with connect(f"ws://127.0.0.1:{tap.port}/") as ws:
            await ws.send("first")
            assert await ws.recv() == "first"
        worker = tap.running[0].process
        assert worker is not None
        worker.send_signal(signal.SIGTERM)
        await rec.until(lambda r: bool(r.of(ev.TargetDown)))
        [down] = rec.of(ev.TargetDown)
        assert "tap worker 0 exited with status 0" in down.error
        async with asyncio.timeout(10):
            while 0 not in tap.running:
                await asyncio.sleep(0.05)
        async with connect(f"ws://127.0.0.1:{tap.port}/") as ws:
            await ws.send("again")
            assert await ws.recv() == "again"


def test_batches_read_the_same_however_the_stream_is_split_and_garbage_is_refused() -> None:
    batches: list[list[Sent]] = [
        [ev.ConnectionOpened(wall=1.0, mono=2.0, conn="tap:w1.0.1", peer="127.0.0.1:5000")],
        [UpstreamNote("reached"), SeenMessage("in", "tap:2", b'{"id": "m1"}', 3.0)],
        [ev.Traffic(wall=1.0, mono=2.0, conn="tap:1", msgs_in=2, by_type={"text_in": 2})] * 700,
    ]
    stream = b"".join(frame(batch) for batch in batches)
    for cut in (1, 3, 4, 5, 17, len(stream) // 2, len(stream)):
        reader = BatchReader()
        got = [b for start in range(0, len(stream), cut) for b in reader.feed(stream[start : start + cut])]
        assert got == batches
    with pytest.raises(ValueError, match="unreadable batch"):
        BatchReader().feed(struct.pack("!I", 3) + b"\xc1\xc1\xc1")
    with pytest.raises(ValueError, match="a batch of 4294967295 bytes"):
        BatchReader().feed(b"\xff\xff\xff\xff")
