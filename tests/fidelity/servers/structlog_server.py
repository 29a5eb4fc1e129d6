"""The device router on the `websockets` package, logging through structlog as JSON (its production
recipe: level, ISO timestamp, exception info, JSONRenderer). Usage: structlog_server.py PORT"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import structlog
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

structlog.configure(
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ],
    logger_factory=structlog.PrintLoggerFactory(sys.stdout),
)
log = structlog.get_logger()
devices: dict[str, tuple[str, ServerConnection]] = {}


async def deliver_later(payload: dict, conn_id: str, ws: ServerConnection, received: float) -> None:
    await asyncio.sleep(payload.get("delayMs", 0) / 1000)
    await deliver(payload, conn_id, ws, received)


async def deliver(payload: dict, conn_id: str, ws: ServerConnection, received: float) -> None:
    try:
        await ws.send(json.dumps({"type": "message", "payload": payload}))
    except ConnectionClosed:
        log.exception("failed to deliver message", message_id=payload["messageId"], conn_id=conn_id)
    else:
        latency = (time.perf_counter() - received) * 1000
        log.info("message relayed", message_id=payload["messageId"], conn_id=conn_id, latency_ms=latency)


async def route(sender: str, ws: ServerConnection, raw: str | bytes) -> None:
    received = time.perf_counter()
    msg = json.loads(raw)
    payload = msg.get("payload", {})
    if msg["type"] == "register":
        devices[payload["deviceId"]] = (sender, ws)
        log.info("device registered", conn_id=sender, device=payload["deviceId"])
        await ws.send(json.dumps({"type": "registered", "payload": payload}))
        return
    target = devices.get(payload["to"])
    if target is None:
        log.warning("unknown recipient", message_id=payload["messageId"], recipient=payload["to"])
        await ws.send(json.dumps({"type": "error", "payload": {"messageId": payload["messageId"]}}))
        return
    if payload.get("delayMs"):
        asyncio.get_running_loop().create_task(deliver_later(payload, *target, received))
    else:
        await deliver(payload, *target, received)


async def handler(ws: ServerConnection) -> None:
    conn_id = uuid.uuid4().hex[:12]
    log.info("client connected", conn_id=conn_id, peer=f"{ws.remote_address[0]}:{ws.remote_address[1]}")
    try:
        async for raw in ws:
            await route(conn_id, ws, raw)
    except ConnectionClosed:
        pass
    finally:
        for device, (owner, _) in list(devices.items()):
            if owner == conn_id:
                del devices[device]
        await ws.wait_closed()
        log.info("client disconnected", conn_id=conn_id, code=ws.close_code, reason=ws.close_reason)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port) as server:
        log.info("listening", port=port)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
