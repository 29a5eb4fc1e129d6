"""The device router as a FastAPI WebSocket endpoint under uvicorn, logging through the standard
library's logging with a plain text format. Usage: fastapi_server.py PORT"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
logger = logging.getLogger("router")
app = FastAPI()
devices: dict[str, tuple[str, WebSocket]] = {}


async def deliver(payload: dict, client_id: str, ws: WebSocket, received: float) -> None:
    await asyncio.sleep(payload.get("delayMs", 0) / 1000)
    try:
        await ws.send_text(json.dumps({"type": "message", "payload": payload}))
    except Exception:
        logger.exception("could not deliver message %s to client %s", payload["messageId"], client_id)
    else:
        took = (time.perf_counter() - received) * 1000
        logger.info("message %s delivered to client %s in %.2f ms", payload["messageId"], client_id, took)


@app.websocket("/ws")
async def router(ws: WebSocket) -> None:
    await ws.accept()
    client_id = uuid.uuid4().hex[:10]
    logger.info("client %s connected from %s:%s", client_id, ws.client.host, ws.client.port)
    try:
        while True:
            msg = json.loads(await ws.receive_text())
            received = time.perf_counter()
            payload = msg.get("payload", {})
            if msg["type"] == "register":
                devices[payload["deviceId"]] = (client_id, ws)
                logger.info("client %s registered device %s", client_id, payload["deviceId"])
                await ws.send_text(json.dumps({"type": "registered", "payload": payload}))
                continue
            target = devices.get(payload["to"])
            if target is None:
                logger.warning(
                    "dropping message %s: recipient %s is not connected", payload["messageId"], payload["to"]
                )
                await ws.send_text(
                    json.dumps({"type": "error", "payload": {"messageId": payload["messageId"]}})
                )
                continue
            task = deliver(payload, *target, received)
            if payload.get("delayMs"):
                asyncio.get_running_loop().create_task(task)
            else:
                await task
    except WebSocketDisconnect as gone:
        logger.info("client %s disconnected (code %s)", client_id, gone.code)
    finally:
        for device, (owner, _) in list(devices.items()):
            if owner == client_id:
                del devices[device]


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", ws="websockets")
