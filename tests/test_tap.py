"""The tap between real websockets clients and servers: byte integrity, close codes, abnormal ends,
rejected handshakes, refusals, wss:// upstreams and delivery figures from real traffic."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import random
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsmon.core import events as ev
from wsmon.core import story
from wsmon.core.reducer import fold
from wsmon.sources.tap import TapSource

needs_uvloop = pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed (pip install wsmon[fast])"
)
SENDABLE_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 4000, 4999]
Events = list[ev.Event]


class Recorder:
    """The emit callback: keeps every event and wakes whoever waits for a condition on them."""

    def __init__(self) -> None:
        self.events: Events = []
        self._changed = asyncio.Event()

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, condition: Callable[[Recorder], bool], timeout: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition(self):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"condition not reached in {timeout} s; events: {self.events[-20:]}"
            ) from None


@contextlib.asynccontextmanager
async def tapped(upstream: str, **options: Any) -> AsyncIterator[tuple[TapSource, Recorder]]:
    options.setdefault("interval", 0.1)
    tap = TapSource("127.0.0.1", 0, upstream, **options)
    recorder = Recorder()
    task = asyncio.create_task(tap.run(recorder))
    try:
        async with asyncio.timeout(5):
            await tap.listening.wait()
        yield tap, recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def ws_server(handler: Callable[[ServerConnection], Any], **options: Any) -> AsyncIterator[int]:
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        yield server.sockets[0].getsockname()[1]


# --- byte integrity ----------------------------------------------------------------------------------


class _HashingTransport:
    """Wraps a transport so that every byte a websockets connection writes is hashed on its way out."""

    def __init__(self, transport: asyncio.Transport, digest: Any) -> None:
        self._transport = transport
        self._digest = digest

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._transport.write(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Hashing:
    """sha256 of the raw bytes this end sent and received: the stream as the TCP socket carried it."""

    sent: Any
    rcvd: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sent, self.rcvd = hashlib.sha256(), hashlib.sha256()
        super().connection_made(_HashingTransport(transport, self.sent))  # type: ignore[misc, arg-type]

    def data_received(self, data: bytes) -> None:
        self.rcvd.update(data)
        super().data_received(data)  # type: ignore[misc]


class HashingClient(_Hashing, ClientConnection):
    pass


class HashingServer(_Hashing, ServerConnection):
    pass


Message = str | bytes | list[str] | list[bytes]  # a list is sent fragmented


def random_messages(rng: random.Random, count: int) -> list[Message]:
    out: list[Message] = []
    for _ in range(count):
        shape = rng.choice(["text", "binary", "fragmented-text", "fragmented-binary", "compressible"])
        if shape == "text":
            out.append(
                "".join(
                    chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x400, 0x4FF)]))
                    for _ in range(rng.randrange(0, 2000))
                )
            )
        elif shape == "binary":
            out.append(rng.randbytes(rng.randrange(0, 6000)))
        elif shape == "fragmented-text":
            out.append([f"part{i}-" + "é" * rng.randrange(0, 300) for i in range(rng.randrange(2, 5))])
        elif shape == "fragmented-binary":
            out.append([rng.randbytes(rng.randrange(1, 3000)) for _ in range(rng.randrange(2, 5))])
        else:
            out.append(json.dumps({"n": rng.random(), "fill": "abc" * rng.randrange(100, 5000)}))
    return out


def joined(message: Message) -> str | bytes:
    if isinstance(message, list):
        return "".join(message) if isinstance(message[0], str) else b"".join(message)  # type: ignore[arg-type]
    return message


def payload_size(message: Message) -> int:
    whole = joined(message)
    return len(whole.encode() if isinstance(whole, str) else whole)


async def send_all(ws: ClientConnection | ServerConnection, messages: list[Message]) -> None:
    for message in messages:
        await ws.send(message)  # type: ignore[arg-type]


@pytest.mark.parametrize("uvloop", [False, pytest.param(True, marks=needs_uvloop)], ids=["asyncio", "uvloop"])
async def test_100_connections_pass_byte_for_byte_in_order_both_ways(uvloop: bool) -> None:
    connections, per_direction = 100, 8
    rng = random.Random(6455)
    to_server = [random_messages(rng, per_direction) for _ in range(connections)]
    to_client = [random_messages(rng, per_direction) for _ in range(connections)]
    # Frames over 1 MiB are counted from their header and skipped; a text message that inflates past
    # the pairing limit turns inflating off for its direction. Neither may change a byte.
    to_server[0][3] = rng.randbytes(1_500_000)  # uncompressed connection: a 1.5 MiB frame
    to_client[1][2] = rng.randbytes(1_200_000)  # compressed, but random bytes stay large
    to_server[2][5] = "x" * 1_300_000  # compresses to a few KiB, inflates past 256 KiB
    server_ends: dict[int, HashingServer] = {}
    server_got: dict[int, list[str | bytes]] = {}

    async def handler(ws: ServerConnection) -> None:
        index = int(ws.request.path.strip("/"))  # type: ignore[union-attr]
        server_ends[index] = ws  # type: ignore[assignment]
        sender = asyncio.create_task(send_all(ws, to_client[index]))
        server_got[index] = [message async for message in ws]
        await sender

    async def client(port: int, index: int) -> tuple[HashingClient, list[str | bytes]]:
        compression = None if index % 4 == 0 else "deflate"  # most compressed, some not
        async with connect(
            f"ws://127.0.0.1:{port}/{index}",
            create_connection=HashingClient,
            compression=compression,
            max_size=None,
        ) as ws:
            sender = asyncio.create_task(send_all(ws, to_server[index]))
            got = [await ws.recv() for _ in to_client[index]]
            await sender
            await (await ws.ping())
        return ws, got  # type: ignore[return-value]

    async with (
        ws_server(handler, create_connection=HashingServer, max_size=None) as upstream,
        tapped(f"ws://127.0.0.1:{upstream}", uvloop=uvloop) as (tap, recorder),
    ):
        assert tap.uses_uvloop == uvloop
        results = await asyncio.gather(*(client(tap.port, i) for i in range(connections)))
        await asyncio.gather(*(ws.wait_closed() for ws in server_ends.values()))
        await recorder.until(lambda r: len(r.of(ev.ConnectionClosed)) == connections)

    for index, (client_end, client_got) in enumerate(results):
        server_end = server_ends[index]
        assert client_end.sent.digest() == server_end.rcvd.digest(), f"client→server bytes differ on {index}"
        assert server_end.sent.digest() == client_end.rcvd.digest(), f"server→client bytes differ on {index}"
        assert server_got[index] == [joined(m) for m in to_server[index]]
        assert client_got == [joined(m) for m in to_client[index]]

    opened = {e.conn: e for e in recorder.of(ev.ConnectionOpened)}
    assert len(opened) == connections
    index_of = {conn: int(e.path.strip("/")) for conn, e in opened.items()}
    compressed = [e for e in opened.values() if "permessage-deflate" in e.extensions]
    assert len(compressed) == connections * 3 // 4
    assert all(e.handshake_ms is not None and e.handshake_ms >= 0 and e.peer for e in opened.values())
    totals: dict[str, dict[str, int]] = {conn: {} for conn in opened}
    wire: dict[int, list[int]] = {index: [0, 0] for index in range(connections)}
    for traffic in recorder.of(ev.Traffic):
        wire[index_of[traffic.conn]][0] += traffic.bytes_in
        wire[index_of[traffic.conn]][1] += traffic.bytes_out
        for key, count in traffic.by_type.items():
            totals[traffic.conn][key] = totals[traffic.conn].get(key, 0) + count
    for conn, counts in totals.items():
        index = index_of[conn]
        for direction, sent in (("in", to_server[index]), ("out", to_client[index])):
            texts = sum(isinstance(joined(m), str) for m in sent)
            assert counts.get(f"text_{direction}", 0) == texts, (conn, counts)
            assert counts.get(f"binary_{direction}", 0) == len(sent) - texts, (conn, counts)
        assert counts["ping_in"] == 1 and counts["pong_out"] == 1
    for closed in recorder.of(ev.ConnectionClosed):
        assert (closed.code, closed.closed_by, closed.answered) == (1000, "client", True), closed
    assert wire[0][0] > 1_500_000 and wire[1][1] > 1_200_000  # the skipped big frames were counted
    # Payload bytes exactly, on a connection without compression.
    assert wire[4][0] == sum(payload_size(m) for m in to_server[4])

    state = fold(recorder.events)
    assert state.open_count == 0 and state.opened_total == connections
    assert state.close_codes == {1000: connections}
    assert state.msgs_in == state.msgs_out == connections * per_direction


# --- close codes ---------------------------------------------------------------------------------------


async def test_every_sendable_close_code_passes_unchanged_with_the_right_side() -> None:
    server_saw: dict[str, tuple[int | None, str | None]] = {}

    async def handler(ws: ServerConnection) -> None:
        side, code = ws.request.path.strip("/").split("/")  # type: ignore[union-attr]
        if side == "server":
            await ws.close(int(code), f"server says {code}")
        else:
            await ws.wait_closed()
            server_saw[code] = (ws.close_code, ws.close_reason)

    async def by_server(port: int, code: int) -> tuple[int | None, str | None]:
        async with connect(f"ws://127.0.0.1:{port}/server/{code}") as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        return ws.close_code, ws.close_reason

    async def by_client(port: int, code: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/client/{code}") as ws:
            await ws.close(code, f"client says {code}")

    async with ws_server(handler) as upstream, tapped(f"ws://127.0.0.1:{upstream}") as (tap, recorder):
        client_saw = await asyncio.gather(*(by_server(tap.port, code) for code in SENDABLE_CODES))
        await asyncio.gather(*(by_client(tap.port, code) for code in SENDABLE_CODES))
        await recorder.until(lambda r: len(r.of(ev.ConnectionClosed)) == 2 * len(SENDABLE_CODES))

    assert client_saw == [(code, f"server says {code}") for code in SENDABLE_CODES]
    assert server_saw == {str(code): (code, f"client says {code}") for code in SENDABLE_CODES}
    paths = {e.conn: e.path for e in recorder.of(ev.ConnectionOpened)}
    reported = {
        paths[e.conn]: (e.code, e.reason, e.closed_by, e.answered) for e in recorder.of(ev.ConnectionClosed)
    }
    for code in SENDABLE_CODES:
        assert reported[f"/server/{code}"] == (code, f"server says {code}", "server", True)
        assert reported[f"/client/{code}"] == (code, f"client says {code}", "client", True)
    closing = {paths[e.conn]: e.by for e in recorder.of(ev.ConnectionClosing)}
    assert closing["/server/1011"] == "server" and closing["/client/4999"] == "client"


# --- abnormal ends, refusals, rejections -----------------------------------------------------------------

ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


@contextlib.asynccontextmanager
async def echo_process(port: int = 0) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO_SERVER, str(port), stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(10):
            line = await process.stdout.readline()
        yield process, int(line)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_upstream_killed_mid_stream_is_1006_and_upstream_down_then_up_again() -> None:
    async with echo_process() as (server, upstream), tapped(f"ws://127.0.0.1:{upstream}") as (tap, recorder):
        clients = [await connect(f"ws://127.0.0.1:{tap.port}/") for _ in range(3)]
        for ws in clients:
            await ws.send("before the crash")
            assert await ws.recv() == "before the crash"
        await recorder.until(lambda r: bool(r.of(ev.TargetUp)) and len(r.of(ev.ConnectionOpened)) == 3)
        server.kill()
        for ws in clients:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1006  # the client saw an abnormal close: no close frame came
        await recorder.until(
            lambda r: (
                len(r.of(ev.ConnectionClosed)) == 3 and any(d.kind == "refused" for d in r.of(ev.TargetDown))
            )
        )
        for closed in recorder.of(ev.ConnectionClosed):
            assert (closed.code, closed.closed_by, closed.answered) == (1006, "neither", None)
            assert closed.reason.startswith("server") and "without a close frame" in closed.reason
        down = recorder.of(ev.TargetDown)[-1]
        assert down.target == "tap" and "refused" in down.error

        ups_before = len(recorder.of(ev.TargetUp))
        async with echo_process(upstream):
            await recorder.until(lambda r: len(r.of(ev.TargetUp)) > ups_before)
            async with connect(f"ws://127.0.0.1:{tap.port}/") as ws:
                await ws.send("after")
                assert await ws.recv() == "after"


async def test_upstream_refused_is_a_failed_connection_and_target_down() -> None:
    async with echo_process() as (server, upstream):
        server.kill()
        await server.wait()
    async with tapped(f"ws://127.0.0.1:{upstream}") as (tap, recorder):
        with pytest.raises((OSError, ConnectionClosed, EOFError, Exception)):
            async with connect(f"ws://127.0.0.1:{tap.port}/", open_timeout=5):
                pass
        await recorder.until(lambda r: bool(r.of(ev.ConnectFailed)) and bool(r.of(ev.TargetDown)))
    (failed,) = recorder.of(ev.ConnectFailed)
    assert (failed.kind, failed.source, failed.target) == ("refused", "tap", "tap")
    assert recorder.of(ev.TargetDown)[0].kind == "refused"
    assert not recorder.of(ev.ConnectionOpened)


async def test_rejected_handshake_is_reported_with_its_status() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/private":
            return connection.respond(HTTPStatus.FORBIDDEN, "no entry\n")
        return None

    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with (
        ws_server(hold, process_request=refuse) as upstream,
        tapped(f"ws://127.0.0.1:{upstream}") as (tap, recorder),
    ):
        with pytest.raises(InvalidStatus) as rejected:
            await connect(f"ws://127.0.0.1:{tap.port}/private")
        assert rejected.value.response.status_code == 403  # the client saw the server's own answer
        await recorder.until(lambda r: bool(r.of(ev.ConnectFailed)))
        async with connect(f"ws://127.0.0.1:{tap.port}/public?token=s3cret"):
            await recorder.until(lambda r: bool(r.of(ev.ConnectionOpened)))
    (failed,) = recorder.of(ev.ConnectFailed)
    assert (failed.kind, failed.status, failed.source) == ("rejected", 403, "tap")
    assert "403 Forbidden" in failed.error
    (opened,) = recorder.of(ev.ConnectionOpened)
    assert opened.path == "/public?token=%2A%2A%2A" or "s3cret" not in opened.path
    state = fold(recorder.events)
    assert state.connect_failed == 1 and state.opened_total == 1


# --- wss:// upstreams ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=wsmon-test"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_wss_upstream_is_tapped_from_a_plain_listener(certificate: tuple[Path, Path]) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*certificate)

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with (
        ws_server(echo, ssl=server_tls) as upstream,
        tapped(f"wss://127.0.0.1:{upstream}", ca_file=str(certificate[0])) as (tap, recorder),
    ):
        async with connect(f"ws://127.0.0.1:{tap.port}/secure") as ws:
            for text in ("one", "two", "three"):
                await ws.send(text)
                assert await ws.recv() == text
        await recorder.until(lambda r: bool(r.of(ev.ConnectionClosed)))
    (closed,) = recorder.of(ev.ConnectionClosed)
    assert (closed.code, closed.closed_by, closed.answered) == (1000, "client", True)
    traffic = recorder.of(ev.Traffic)
    assert sum(t.msgs_in for t in traffic) == 3 and sum(t.msgs_out for t in traffic) == 3


# --- delivery figures from real traffic -------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
async def test_delivery_pairs_acks_across_connections_and_reports_failures(workers: int) -> None:
    """A routing server: devices send messages to each other, the recipient acks through the server.
    With two workers the session pairs (the two devices' connections may be in different workers)."""
    devices: dict[str, ServerConnection] = {}

    async def router(ws: ServerConnection) -> None:
        name = ws.request.path.strip("/")  # type: ignore[union-attr]
        devices[name] = ws
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "ack" or message["id"].startswith("route"):
                await devices[message["to"]].send(raw)
            elif message["id"].startswith("fail"):
                reply = {"type": "ack", "originalMessageId": message["id"], "status": "failed"}
                await ws.send(json.dumps(reply | {"error": "Connection not open"}))
            elif message["id"].startswith("ok"):
                await ws.send(json.dumps({"type": "ack", "id": "a1", "correlationId": message["id"]}))
            # "lost…" messages get no answer at all

    async def device_b(ws: ClientConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") != "ack":
                await ws.send(json.dumps({"type": "ack", "to": "a", "originalMessageId": message["id"]}))

    async with (
        ws_server(router) as upstream,
        tapped(f"ws://127.0.0.1:{upstream}", delivery_timeout_s=0.3, workers=workers) as (tap, recorder),
        connect(f"ws://127.0.0.1:{tap.port}/a") as a,
        connect(f"ws://127.0.0.1:{tap.port}/b") as b,
    ):
        responder = asyncio.create_task(device_b(b))
        await a.send(json.dumps({"id": "route-1", "to": "b", "body": "secret-payload-XYZ"}))
        assert json.loads(await a.recv())["originalMessageId"] == "route-1"
        big = json.dumps({"id": "ok-1", "fill": "x" * 50_000})  # compressed, and fragmented below
        await a.send([big[:20_000], big[20_000:]])
        assert json.loads(await a.recv())["correlationId"] == "ok-1"
        await a.send(json.dumps({"id": "fail-1"}))
        assert json.loads(await a.recv())["status"] == "failed"
        await a.send(json.dumps({"id": "lost-1"}))
        await recorder.until(lambda r: len(r.of(ev.DeliveryFailed)) == 2)
        responder.cancel()

    samples = [e for e in recorder.of(ev.LatencySample) if e.kind == "delivery"]
    assert len(samples) == 2 and all(0 <= s.ms < 1000 for s in samples)
    failures = {e.message_id: e.reason for e in recorder.of(ev.DeliveryFailed)}
    assert failures == {"fail-1": "Connection not open", "lost-1": "no acknowledgement within 0.3 s"}
    assert all(e.source == "tap" and e.conn for e in recorder.of(ev.DeliveryFailed))
    assert "secret-payload-XYZ" not in repr(recorder.events)  # payloads are read, never kept
    state = fold(recorder.events)
    assert (state.delivered, state.delivery_failed) == (2, 2)
    assert (tap.matcher is not None) == (workers > 1)


async def test_a_connections_story_counts_the_deliveries_its_client_saw_acked() -> None:
    """Device a sends messages: some acked by the server on a's own connection, some routed to b and
    acked by b (the ack crosses b's connection first), some refused. a tallies the acks it gets back;
    a's story in the folded State must count as many deliveries, and name b's connection."""
    devices: dict[str, ServerConnection] = {}
    rng = random.Random(12)

    async def router(ws: ServerConnection) -> None:
        devices[ws.request.path.strip("/") if ws.request else ""] = ws
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "ack" or message["id"].startswith("route"):
                await devices[message["to"]].send(raw)
            else:
                status = "failed" if message["id"].startswith("fail") else "delivered"
                ack = {"type": "ack", "originalMessageId": message["id"], "status": status}
                await ws.send(json.dumps(ack))

    async def device_b(ws: ClientConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            await ws.send(json.dumps({"type": "ack", "to": "a", "originalMessageId": message["id"]}))

    tally = {"own": 0, "routed": 0, "failed": 0}
    async with (
        ws_server(router) as upstream,
        tapped(f"ws://127.0.0.1:{upstream}") as (tap, recorder),
        connect(f"ws://127.0.0.1:{tap.port}/a") as a,
        connect(f"ws://127.0.0.1:{tap.port}/b") as b,
    ):
        responder = asyncio.create_task(device_b(b))
        for i in range(60):
            kind = rng.choice(["own", "route", "route", "fail"])
            await a.send(json.dumps({"id": f"{kind}-{i}", "to": "b"}))
            ack = json.loads(await a.recv())
            assert ack["originalMessageId"] == f"{kind}-{i}"
            tally["failed" if ack.get("status") == "failed" else "routed" if kind == "route" else "own"] += 1
        acked = tally["own"] + tally["routed"]
        await recorder.until(
            lambda r: (
                sum(e.kind == "delivery" for e in r.of(ev.LatencySample)) == acked
                and len(r.of(ev.DeliveryFailed)) == tally["failed"]
            )
        )
        responder.cancel()

    conn_of = {e.path: e.conn for e in recorder.of(ev.ConnectionOpened)}
    state = fold(recorder.events)
    entries = state.timelines[conn_of["/a"]]
    summed = [story.facts(entry) for entry in entries if entry.kind == "deliveries"]
    assert sum(d["count"] for d in summed) == tally["own"] + tally["routed"] == state.delivered
    assert sum(d["acked_elsewhere"] for d in summed) == tally["routed"] > 0
    assert {d["ack_conn"] for d in summed if d["ack_conn"]} == {conn_of["/b"]}
    assert sum(entry.kind == "delivery_failed" for entry in entries) == tally["failed"] > 0
    assert all(0 <= d["min_ms"] <= d["max_ms"] < 1000 for d in summed)
    assert not any(entry.kind == "deliveries" for entry in state.timelines[conn_of["/b"]])


async def test_plain_http_passes_through_and_is_not_a_websocket_failure() -> None:
    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(hold) as upstream, tapped(f"ws://127.0.0.1:{upstream}") as (tap, recorder):
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status_line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        async with connect(f"ws://127.0.0.1:{tap.port}/after"):
            await recorder.until(lambda r: bool(r.of(ev.ConnectionOpened)))
    assert status_line.startswith(b"HTTP/1.1 4")  # the server's own answer, untouched
    assert not recorder.of(ev.ConnectFailed)
    assert [e.path for e in recorder.of(ev.ConnectionOpened)] == ["/after"]


# --- the source's own controls: stop and check ---------------------------------------------------------


async def test_stop_ends_run_and_cuts_the_connections_through_the_tap() -> None:
    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(hold) as upstream:
        tap = TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{upstream}", interval=0.1)
        recorder = Recorder()
        task = asyncio.create_task(tap.run(recorder))
        await tap.listening.wait()
        async with connect(f"ws://127.0.0.1:{tap.port}") as client:
            await recorder.until(lambda r: bool(r.of(ev.ConnectionOpened)))
            await tap.stop()
            async with asyncio.timeout(2):
                await task  # returns by itself: the session need not cancel it
            with pytest.raises(ConnectionClosed):
                await client.recv()
        await recorder.until(lambda r: bool(r.of(ev.ConnectionClosed)))
    (closed,) = recorder.of(ev.ConnectionClosed)
    assert (closed.code, closed.reason) == (1006, "cut by the tap: wsmon stopped")
    assert TapSource.stop_order == 1


async def test_check_says_whether_the_upstream_holds_a_connection() -> None:
    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(hold) as upstream:
        result = await TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{upstream}").check()
    assert result.ok and result.latency_ms is not None
    refused = await TapSource("127.0.0.1", 0, f"ws://127.0.0.1:{upstream}").check()  # closed by now
    assert (refused.ok, refused.kind) == (False, "refused")
    assert refused.error.startswith(f"upstream ws://127.0.0.1:{upstream}: ")
