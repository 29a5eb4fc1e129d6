"""The client that drives a fidelity server and keeps its own tally of what happened.

Devices register, send messages to each other, to recipients that do not exist, and to a device that
has just closed (the server writes to a closed socket); then they leave every way a client can: close
codes 1000 and 1001, a close frame with no status (the server sees 1005), and an abrupt end with no
close frame at all (1006). With ``crash=True`` the last delivery is one the server cannot survive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

REPLY_TIMEOUT_S = 10.0
DELAY_MS = 400  # the server holds a delayed delivery this long: time enough for its recipient to leave


@dataclass
class Tally:
    opened: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    delivered: int = 0
    failures: int = 0
    failed_ids: list[str] = field(default_factory=list)


class Driver:
    def __init__(self, url: str) -> None:
        self.url = url
        self.tally = Tally()
        self.devices: dict[str, ClientConnection] = {}
        self._ids = itertools.count(1)

    def message_id(self) -> str:
        return f"{uuid.uuid4().hex[:8]}{next(self._ids)}"

    async def join(self, name: str) -> ClientConnection:
        ws = await connect(self.url, max_size=None)
        self.tally.opened += 1
        await ws.send(json.dumps({"type": "register", "payload": {"deviceId": name}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S))
        assert reply["type"] == "registered", reply
        self.devices[name] = ws
        return ws

    async def send(self, sender: str, to: str, **extra: object) -> str:
        message_id = self.message_id()
        payload = {"messageId": message_id, "to": to, "body": {"text": "hello", "n": 1}, **extra}
        await self.devices[sender].send(json.dumps({"type": "send", "payload": payload}))
        return message_id

    async def receive(self, name: str) -> dict[str, object]:
        return json.loads(await asyncio.wait_for(self.devices[name].recv(), REPLY_TIMEOUT_S))

    async def delivered(self, sender: str, to: str) -> None:
        message_id = await self.send(sender, to)
        got = await self.receive(to)
        assert got["type"] == "message" and got["payload"]["messageId"] == message_id, got  # type: ignore[index]
        self.tally.delivered += 1

    async def to_unknown_recipient(self, sender: str) -> None:
        message_id = await self.send(sender, f"ghost-{next(self._ids)}")
        got = await self.receive(sender)
        assert got["type"] == "error", got
        self.failure(message_id)

    def failure(self, message_id: str) -> None:
        self.tally.failures += 1
        self.tally.failed_ids.append(message_id)

    async def close(self, name: str, code: int | None) -> None:
        """Leave with ``code``; None sends a close frame without a status, which the server sees as 1005."""
        ws = self.devices.pop(name)
        if code is None:
            await ws.close(code=None)  # type: ignore[arg-type]
            self.tally.closes[1005] += 1
        else:
            await ws.close(code=code)
            self.tally.closes[code] += 1

    def vanish(self, name: str) -> None:
        ws = self.devices.pop(name)
        ws.transport.abort()  # no close frame, the TCP connection just ends
        self.tally.closes[1006] += 1

    async def write_to_just_closed(self, sender: str, recipient: str, *, strict: bool = False) -> None:
        """The server is told to deliver to ``recipient`` a moment from now; the recipient leaves first."""
        message_id = await self.send(sender, recipient, delayMs=DELAY_MS, strict=strict)
        await self.close(recipient, 1000)
        await asyncio.sleep(DELAY_MS / 1000 + 0.5)
        self.failure(message_id)


async def drive(url: str, *, crash: bool) -> Tally:
    driver = Driver(url)
    for name in ("d1", "d2", "d3", "d4", "d5", "d6"):
        await driver.join(name)
    for _ in range(5):
        await driver.delivered("d1", "d2")
    for _ in range(3):
        await driver.delivered("d3", "d4")
    for _ in range(2):
        await driver.to_unknown_recipient("d1")
    await driver.write_to_just_closed("d5", "d6")
    await driver.close("d2", 1000)
    await driver.close("d3", 1001)
    await driver.close("d4", None)
    driver.vanish("d5")
    if crash:
        await driver.join("d7")
        await driver.write_to_just_closed("d1", "d7", strict=True)  # the server throws, and dies
        survivor = driver.devices.pop("d1")
        try:
            await asyncio.wait_for(survivor.wait_closed(), REPLY_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError("the server did not crash") from None
        assert survivor.close_code == 1006, survivor.close_code
        driver.tally.closes[1006] += 1
    else:
        await driver.close("d1", 1000)
    await asyncio.sleep(0.3)  # the server logs the last close
    return driver.tally


__all__ = ["Tally", "drive"]
