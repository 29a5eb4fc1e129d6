"""The WebSocket probes against real websockets servers: every close code, rejections, refusals, TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from pathlib import Path

import pytest
from websockets.asyncio.server import Request, Response, Server, ServerConnection, serve

from wsmon.core import events as ev
from wsmon.sources.probe import ProbeConfig, ProbeSource, classify_failure

# Every code a server can put in a close frame; 1004, 1005, 1006 and 1015 can never be sent.
SENDABLE_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 4000, 4999]

Events = list[ev.Event]


async def run_until(source: ProbeSource, done: Callable[[Events], bool], timeout: float = 10.0) -> Events:
    """Run the source until ``done(events)`` holds, then cancel it as a session would."""
    events: Events = []
    reached = asyncio.Event()

    def emit(event: ev.Event) -> None:
        events.append(event)
        if done(events):
            reached.set()

    task = asyncio.create_task(source.run(emit))
    waiter = asyncio.create_task(reached.wait())
    try:
        finished, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in finished:
            raise AssertionError(f"the probe's run() ended on its own: {task.exception()!r}")
        assert waiter in finished, f"condition not reached in {timeout} s; events: {events}"
    finally:
        waiter.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return events


def of(events: Events, kind: type[ev.Event]) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


@contextlib.asynccontextmanager
async def ws_server(
    handler: Callable[[ServerConnection], Awaitable[None]], **kwargs: object
) -> AsyncIterator[tuple[Server, int]]:
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, **kwargs) as server:  # type: ignore[arg-type]
        port = server.sockets[0].getsockname()[1]
        yield server, port


async def test_every_sendable_close_code_arrives_exactly_with_its_reason() -> None:
    codes = iter(SENDABLE_CODES * 4)

    async def close_with_next_code(ws: ServerConnection) -> None:
        code = next(codes)
        await ws.close(code, f"bye ✓ {code}")

    async with ws_server(close_with_next_code) as (_, port):
        probe = ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=2))

        def seen_all(events: Events) -> bool:
            return {e.code for e in of(events, ev.ConnectionClosed)} >= set(SENDABLE_CODES)

        events = await run_until(probe, seen_all)

    closes = of(events, ev.ConnectionClosed)
    for close in closes:
        if close.reason == "wsmon stopping":  # the probe's own close when it was cancelled
            assert close.closed_by == "client"
            continue
        assert close.reason == f"bye ✓ {close.code}"
        assert close.closed_by == "server"
        assert close.own and close.source == "probe"
        assert close.duration_s is not None and close.duration_s >= 0
    opened = {e.conn for e in of(events, ev.ConnectionOpened)}
    assert {c.conn for c in closes} == opened, "every opened probe connection has its close"
    assert all(e.own and e.local.startswith("127.0.0.1:") for e in of(events, ev.ConnectionOpened))
    # The server accepted every handshake: the target never went down.
    assert of(events, ev.TargetDown) == []
    assert len(of(events, ev.TargetUp)) == 1


@pytest.mark.parametrize("status", [HTTPStatus.FORBIDDEN, HTTPStatus.UPGRADE_REQUIRED])
async def test_a_rejected_handshake_reports_its_http_status(status: HTTPStatus) -> None:
    def reject(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(status, "go away\n")

    async def never(ws: ServerConnection) -> None:
        raise AssertionError("the handshake should not have completed")

    async with ws_server(never, process_request=reject) as (_, port):
        probe = ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=2))
        events = await run_until(probe, lambda es: len(of(es, ev.ConnectFailed)) >= 4)

    failures = of(events, ev.ConnectFailed)
    assert {(f.kind, f.status) for f in failures} == {("rejected", int(status))}
    assert all(f.own and f.error.startswith(f"handshake rejected: HTTP {int(status)}") for f in failures)
    # Down once, on the transition, however many attempts failed.
    downs = of(events, ev.TargetDown)
    assert [(d.kind, d.target) for d in downs] == [("rejected", "websocket")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_closed_port_is_refused_and_retried_with_backoff_capped_at_one_and_a_half_intervals() -> None:
    probe = ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{closed_port()}/", interval=0.1, count=1))
    events = await run_until(probe, lambda es: len(of(es, ev.ConnectFailed)) >= 5)
    failures = of(events, ev.ConnectFailed)
    assert {f.kind for f in failures} == {"refused"}
    gaps = [b.mono - a.mono for a, b in itertools.pairwise(failures)]
    assert gaps[0] == pytest.approx(0.1, abs=0.08)
    assert all(gap < 0.15 + 0.1 for gap in gaps), gaps  # never more than 1.5 × interval (plus slack)
    assert gaps[-1] > 0.13, gaps  # it did back off
    assert len(of(events, ev.TargetDown)) == 1


def test_an_error_joined_over_several_addresses_is_still_a_refusal() -> None:
    joined = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 9)"
    )
    assert classify_failure(joined)[0] == "refused"
    mixed = OSError("Multiple exceptions: [Errno 111] refused, [Errno 99] Cannot assign requested address")
    assert classify_failure(mixed)[0] == "error"


async def test_a_server_that_never_answers_the_handshake_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the probe gives up

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        probe = ProbeSource(
            ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=1, open_timeout=0.2)
        )
        events = await run_until(probe, lambda es: len(of(es, ev.ConnectFailed)) >= 1)
    (failure,) = of(events, ev.ConnectFailed)
    assert failure.kind == "timeout"


async def test_a_request_reply_round_trip_is_matched_by_its_id_among_other_messages() -> None:
    async def ack_after_noise(ws: ServerConnection) -> None:
        async for message in ws:
            request = json.loads(message)
            await ws.send(json.dumps({"type": "broadcast", "text": "not yours"}))
            await ws.send(json.dumps({"type": "ack", "id": request["id"]}))

    async with ws_server(ack_after_noise) as (_, port):
        probe = ProbeSource(
            ProbeConfig(
                url=f"ws://127.0.0.1:{port}/chat?token=s3cret",
                interval=0.05,
                count=2,
                request='{"type": "send", "id": "{id}"}',
                reply_contains='"id": "{id}"',
            )
        )
        events = await run_until(probe, lambda es: len(of(es, ev.LatencySample)) >= 30)

    kinds = {s.kind for s in of(events, ev.LatencySample)}
    assert kinds == {"connect", "ping", "roundtrip"}
    assert all(0 < s.ms < 1000 and s.target == "websocket" for s in of(events, ev.LatencySample))
    assert not [line for line in of(events, ev.LogLine) if "timed out" in line.text]
    (opened, *_) = of(events, ev.ConnectionOpened)
    assert opened.path == "/chat?token=***"
    assert "s3cret" not in repr(events)


async def test_a_dropped_connection_is_1006_by_neither_and_the_target_goes_down() -> None:
    async def drop(ws: ServerConnection) -> None:
        ws.transport.abort()

    async with ws_server(drop) as (_, port):
        probe = ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=1))
        events = await run_until(probe, lambda es: len(of(es, ev.ConnectionClosed)) >= 2)
    assert {(c.code, c.closed_by) for c in of(events, ev.ConnectionClosed)[:2]} == {(1006, "neither")}
    assert [d.kind for d in of(events, ev.TargetDown)][:1] == ["dropped"]


async def test_a_server_that_never_pongs_is_closed_by_the_probe_with_1011() -> None:
    async def handshake_then_ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await reader.read()

    server = await asyncio.start_server(handshake_then_ignore, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        probe = ProbeSource(
            ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=1, reply_timeout=0.2)
        )
        events = await run_until(probe, lambda es: len(of(es, ev.ConnectionClosed)) >= 1)
    (closed,) = of(events, ev.ConnectionClosed)
    assert (closed.code, closed.closed_by) == (1011, "client")
    assert closed.reason == "wsmon: no pong within 0.2 s"
    assert [(d.kind, d.error) for d in of(events, ev.TargetDown)] == [("timeout", "no pong within 0.2 s")]


async def test_check_reports_success_and_a_refusal_with_a_hint() -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with ws_server(echo) as (_, port):
        result = await ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{port}/", request="ping {id}")).check()
    assert result.ok and result.latency_ms is not None and result.latency_ms > 0

    refused = await ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{closed_port()}/")).check()
    assert not refused.ok and refused.kind == "refused" and "server running" in refused.hint


# --- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl (no cryptography package here)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=wsmon-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.asynccontextmanager
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(hold, ssl=context) as (_, port):
        yield port


async def opened_or_failed(config: ProbeConfig) -> Events:
    return await run_until(
        ProbeSource(config), lambda es: bool(of(es, ev.ConnectionOpened) or of(es, ev.ConnectFailed))
    )


async def test_tls_without_the_ca_fails_as_tls(certificate: tuple[Path, Path]) -> None:
    async with tls_server(certificate) as port:
        events = await opened_or_failed(ProbeConfig(url=f"wss://127.0.0.1:{port}/", count=1))
        result = await ProbeSource(ProbeConfig(url=f"wss://127.0.0.1:{port}/")).check()
    (failure,) = of(events, ev.ConnectFailed)
    assert failure.kind == "tls" and "certificate" in failure.error, failure
    assert result.kind == "tls" and "--ca" in result.hint and "--insecure" in result.hint


async def test_tls_with_the_ca_file_opens(certificate: tuple[Path, Path]) -> None:
    async with tls_server(certificate) as port:
        config = ProbeConfig(url=f"wss://127.0.0.1:{port}/", count=1, ca_file=str(certificate[0]))
        events = await opened_or_failed(config)
        result = await ProbeSource(config).check()
    assert of(events, ev.ConnectFailed) == [] and len(of(events, ev.ConnectionOpened)) == 1
    assert result.ok


async def test_tls_insecure_opens_without_the_ca(certificate: tuple[Path, Path]) -> None:
    async with tls_server(certificate) as port:
        events = await opened_or_failed(ProbeConfig(url=f"wss://127.0.0.1:{port}/", count=1, insecure=True))
    assert of(events, ev.ConnectFailed) == [] and len(of(events, ev.ConnectionOpened)) == 1
