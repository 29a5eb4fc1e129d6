"""Acks paired by value through the real tap: a routing server that acknowledges with nested payloads.

The server is shaped like the user's Node `ws` server: devices register, send each other messages,
and the server answers the sender with `{"type": "ack", "payload": {"originalMessageId": …, "status":
"delivered"}}` or `{"type": "error", "payload": {"originalMessageId": …, "error": "Recipient not
found"}}`. Every device keeps its own tally of what the server said; wsmon's counts must equal it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from wsmon.core import events as ev
from wsmon.core.reducer import fold
from wsmon.sources.tap import TapSource

DEVICES = ("d1", "d2", "d3", "d4")
MESSAGES_PER_DEVICE = 30
TIMEOUT_S = 2.0  # generous: a loaded machine must not turn a slow ack into a timeout


class RoutingServer:
    """Registers devices by name and routes their messages; acks the sender with nested payloads."""

    def __init__(self) -> None:
        self.devices: dict[str, ServerConnection] = {}

    async def handle(self, ws: ServerConnection) -> None:
        name = ""
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "register":
                name = message["deviceId"]
                self.devices[name] = ws
                await ws.send(json.dumps({"type": "registered", "payload": {"deviceId": name}}))
            elif message["type"] == "message":
                await self.route(ws, name, message)
            # receipts from recipients are read and dropped, as many servers do

    async def route(self, sender: ServerConnection, name: str, message: dict[str, Any]) -> None:
        message_id, to = message["id"], message["to"]
        recipient = self.devices.get(to)
        if recipient is None:
            reply: dict[str, Any] = {
                "type": "error",
                "payload": {"originalMessageId": message_id, "error": "Recipient not found"},
            }
        elif to == "d4" and message["payload"].get("urgent"):
            # A failure told by a status inside a batch-shaped payload, with its reason beside it.
            result = {"originalMessageId": message_id, "status": "failed", "reason": "Connection not open"}
            reply = {"type": "ack", "payload": {"results": [result]}}
        else:
            forwarded = {"messageId": message_id, "from": name, "body": message["payload"]}
            await recipient.send(json.dumps({"type": "message", "payload": forwarded}))
            reply = {
                "type": "ack",
                "payload": {"originalMessageId": message_id, "status": "delivered", "to": to},
            }
        await sender.send(json.dumps(reply))


class Device:
    """A client that sends messages and tallies the server's answers itself."""

    def __init__(self, name: str, ws: ClientConnection) -> None:
        self.name = name
        self.ws = ws
        self.tally: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.answered = asyncio.Event()
        self.expected = 0

    async def listen(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                payload = message.get("payload", {})
                if message["type"] == "message":
                    # The recipient's own receipt: nested, naming the message under `ref`.
                    receipt = {"type": "receipt", "payload": {"ref": payload["messageId"]}}
                    await self.ws.send(json.dumps(receipt))
                    continue
                if message["type"] == "error":
                    self.count("failed", payload["error"])
                elif message["type"] == "ack":
                    for result in payload.get("results", [payload]):
                        if result["status"] == "delivered":
                            self.count("delivered")
                        else:
                            self.count("failed", result["reason"])

    def count(self, outcome: str, reason: str = "") -> None:
        self.tally[outcome] += 1
        if reason:
            self.reasons[reason] += 1
        if sum(self.tally.values()) == self.expected:
            self.answered.set()

    async def send_all(self, rng: random.Random) -> None:
        self.expected = MESSAGES_PER_DEVICE
        for index in range(MESSAGES_PER_DEVICE):
            to = rng.choice([*DEVICES, "ghost"])
            body = {"text": f"hello {index}", "urgent": rng.random() < 0.2}
            message = {"type": "message", "id": f"msg_{self.name}_{index}", "to": to, "payload": body}
            await self.ws.send(json.dumps(message))
            await asyncio.sleep(rng.uniform(0, 0.005))


@contextlib.asynccontextmanager
async def tap_in_front_of(port: int, events: list[ev.Event]) -> AsyncIterator[TapSource]:
    tap = TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{port}", interval=0.1, delivery_timeout_s=TIMEOUT_S)
    task = asyncio.create_task(tap.run(events.append))
    try:
        async with asyncio.timeout(5):
            await tap.listening.wait()
        yield tap
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_nested_acks_through_the_tap_match_the_clients_own_tally() -> None:
    server = RoutingServer()
    events: list[ev.Event] = []
    rng = random.Random(9)
    async with (
        serve(server.handle, "127.0.0.1", 0) as upstream,
        tap_in_front_of(upstream.sockets[0].getsockname()[1], events) as tap,
        contextlib.AsyncExitStack() as stack,
    ):
        devices = []
        for name in DEVICES:
            ws = await stack.enter_async_context(connect(f"ws://127.0.0.1:{tap.port}"))
            await ws.send(json.dumps({"type": "register", "deviceId": name}))
            assert json.loads(await ws.recv())["type"] == "registered"
            devices.append(Device(name, ws))
        listeners = [asyncio.create_task(device.listen()) for device in devices]
        await asyncio.gather(*(device.send_all(rng) for device in devices))
        async with asyncio.timeout(20):
            await asyncio.gather(*(device.answered.wait() for device in devices))
        # Outlive the delivery timeout: an ack the tap missed would now turn into a false failure.
        await asyncio.sleep(TIMEOUT_S * 1.5)
        for listener in listeners:
            listener.cancel()

    tally = sum((device.tally for device in devices), Counter())
    reasons = sum((device.reasons for device in devices), Counter())
    assert tally["delivered"] + tally["failed"] == len(DEVICES) * MESSAGES_PER_DEVICE
    assert tally["delivered"] > 0
    assert reasons["Recipient not found"] > 0 and reasons["Connection not open"] > 0

    delivered = [e for e in events if isinstance(e, ev.LatencySample) and e.kind == "delivery"]
    failed = [e for e in events if isinstance(e, ev.DeliveryFailed)]
    assert len(delivered) == tally["delivered"]
    assert Counter(e.reason for e in failed) == reasons  # no "no acknowledgement within …" among them
    assert {e.ref for e in delivered}.isdisjoint(e.message_id for e in failed)
    state = fold(events)
    assert (state.delivered, state.delivery_failed) == (tally["delivered"], tally["failed"])
