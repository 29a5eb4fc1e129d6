"""The probe source: ``count`` connections, each opened, pinged every interval and reopened, with
every failure an event and the target's up/down through its TargetStatus."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import ssl
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from wsmon.core import events as ev
from wsmon.core.closecodes import close_code_label
from wsmon.core.redact import redact_url
from wsmon.sources.base import Backoff, CheckResult, Emit, Retell, Source, now, retry_backoff
from wsmon.sources.probe.config import (
    CLOSE_TIMEOUT_S,
    ExchangeStep,
    ProbeConfig,
    fill,
    reply_matches,
    scrub_secrets,
    secret_words,
    tls_context,
)
from wsmon.sources.probe.connection import (
    as_text,
    close_quietly,
    drain_messages,
    host_port,
    marking,
    redacted_path,
    retrieve,
)
from wsmon.sources.probe.failures import (
    HandshakeTimeout,
    StepFailed,
    classify_failure,
    close_details,
    hint_for,
)
from wsmon.sources.probe.thread import LoopThread, thread_safe


class ProbeSource(Source):
    """``config.count`` probe connections to one server, on a thread of their own; never raises."""

    retell = Retell.ERROR  # down again with another error (a 401, then a failed first exchange) is said

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config.target)
        self.config = config
        self._tls = tls_context(config)
        self._request_ids = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._secrets = secret_words(config.headers)

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        address = self.config.display_url or redact_url(self.config.url)
        emit(
            ev.TargetAdded(wall=wall, mono=mono, target=self.config.target, kind="websocket", address=address)
        )
        forward = thread_safe(asyncio.get_running_loop(), emit)
        await LoopThread("wsmon-probes").run(lambda: self._run_probes(forward))

    async def _run_probes(self, emit: Emit) -> None:
        async with asyncio.TaskGroup() as group:
            for index in range(1, self.config.count + 1):
                group.create_task(self._probe(index, emit))

    async def check(self) -> CheckResult:
        """One connect, one ping and (when configured) one request/reply: for `wsmon check`."""
        cfg = self.config
        started = time.perf_counter()
        try:
            ws = await self._connect()
        except Exception as exc:
            kind, status, error = classify_failure(exc, secure=cfg.secure)
            error = self._scrub(error)
            return CheckResult(ok=False, error=error, hint=hint_for(kind, status, error), kind=kind)
        handshake_ms = (time.perf_counter() - started) * 1000.0
        try:
            await self._open_steps(ws, 1)
        except StepFailed as exc:
            await close_quietly(ws, reason=f"wsmon probe: {exc.step} failed")
            error = self._scrub(str(exc))
            return CheckResult(ok=False, latency_ms=handshake_ms, error=error, hint=exc.hint, kind=exc.kind)
        try:
            async with asyncio.timeout(cfg.wait_s):
                pong = await ws.ping()
                await pong
                if cfg.request is not None:
                    request_id, expected = self._next_request()
                    await ws.send(cfg.request.replace("{id}", request_id))
                    while expected not in as_text(await ws.recv()):
                        pass
        except TimeoutError:
            await close_quietly(ws)
            what = "reply" if cfg.request is not None else "pong"
            return CheckResult(
                ok=False,
                latency_ms=handshake_ms,
                error=f"no {what} within {cfg.wait_s:g} s",
                kind="timeout",
                hint="the server accepted the connection but did not answer",
            )
        except ConnectionClosed as exc:
            code, reason, _ = close_details(exc.rcvd, exc.sent, exc.rcvd_then_sent)
            return CheckResult(
                ok=False,
                latency_ms=handshake_ms,
                kind="closed",
                error=self._scrub(f"closed: {close_code_label(code)}" + (f" ({reason})" if reason else "")),
            )
        except Exception as exc:
            await close_quietly(ws)
            return CheckResult(ok=False, latency_ms=handshake_ms, kind="error", error=self._scrub(repr(exc)))
        await close_quietly(ws)
        return CheckResult(ok=True, latency_ms=handshake_ms)

    async def _connect(self) -> ClientConnection:
        # websockets rejects ssl=None for wss:// and any ssl for ws://: pass it only when there is one.
        tls: dict[str, ssl.SSLContext] = {"ssl": self._tls} if self._tls is not None else {}
        cfg = self.config
        reached: list[bool] = []
        try:
            return await connect(
                cfg.url,
                proxy=None,
                open_timeout=cfg.open_timeout,
                close_timeout=CLOSE_TIMEOUT_S,
                ping_interval=None,
                max_size=None,
                additional_headers=list(cfg.headers) or None,
                subprotocols=[Subprotocol(name) for name in cfg.subprotocols] or None,
                origin=Origin(cfg.origin) if cfg.origin else None,
                create_connection=marking(reached),
                **tls,
            )
        except TimeoutError:
            if reached:  # TCP and TLS were done: it is the HTTP upgrade that got no answer
                raise HandshakeTimeout(cfg.open_timeout) from None
            raise

    async def _open_steps(self, ws: ClientConnection, index: int) -> float:
        """The steps after the HTTP handshake: the subprotocol, then the first exchange (its ms)."""
        cfg = self.config
        if cfg.subprotocols and ws.subprotocol is None:
            offered = ", ".join(cfg.subprotocols)
            raise StepFailed(
                "subprotocol",
                "rejected",
                f"the server accepted none of the subprotocols offered ({offered})",
                "the server does not speak this subprotocol: check --subprotocol",
            )
        started = time.perf_counter()
        for number, step in enumerate(cfg.first_exchange, 1):
            await self._exchange_step(ws, index, number, step)
        return (time.perf_counter() - started) * 1000.0

    async def _exchange_step(self, ws: ClientConnection, index: int, number: int, step: ExchangeStep) -> None:
        total = len(self.config.first_exchange)
        name = "first exchange" + (f" (step {number} of {total})" if total > 1 else "")
        hint = "compare [[probe.first_exchange]] in wsmon.toml with what the server expects and replies"
        values = {"id": f"wsmon-{next(self._request_ids)}", "probe": str(index)}
        expect = fill(step.expect, values)
        others, last = 0, ""  # the messages that did not match: only their count and the last is told
        try:
            if step.send is not None:
                await ws.send(fill(step.send, values))
            if expect is None:
                return
            async with asyncio.timeout(step.timeout):
                while not reply_matches(expect, text := as_text(await ws.recv())):
                    others, last = others + 1, text
        except TimeoutError:
            error = f"no reply matching {_shown(expect)} within {step.timeout:g} s{_unmatched(others, last)}"
            raise StepFailed(name, "timeout", error, hint) from None
        except ConnectionClosed as exc:
            code, reason, _ = close_details(exc.rcvd, exc.sent, exc.rcvd_then_sent)
            error = f"the server closed the connection: {close_code_label(code)}" + (
                f" ({reason})" if reason else ""
            )
            raise StepFailed(name, "rejected", error, hint) from None

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, self._secrets)

    def _failed(
        self, emit: Emit, backoff: Backoff, kind: ev.FailKind, status: int | None, error: str
    ) -> float:
        """A connection attempt that failed at some step: say so, mark the target down, back off."""
        error = self._scrub(error)
        wall, mono = now()
        emit(
            ev.ConnectFailed(
                wall=wall,
                mono=mono,
                target=self.config.target,
                kind=kind,
                error=error,
                status=status,
                source="probe",
                own=True,
            )
        )
        self.status.mark_down(emit, error, kind)
        return backoff.next()

    def _next_request(self) -> tuple[str, str]:
        request_id = f"wsmon-{next(self._request_ids)}"
        expected = (self.config.reply_contains or "{id}").replace("{id}", request_id)
        return request_id, expected

    async def _probe(self, index: int, emit: Emit) -> None:
        cfg = self.config
        backoff = retry_backoff(cfg.interval)
        while True:
            try:
                delay = await self._attempt(index, emit, backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not take the other probes down with it
                wall, mono = now()
                text = self._scrub(f"probe {index}: {exc!r}")
                emit(ev.LogLine(wall=wall, mono=mono, level="error", text=text, source="probe"))
                delay = backoff.next()
            await asyncio.sleep(delay)

    async def _attempt(self, index: int, emit: Emit, backoff: Backoff) -> float:
        """One connection from open to close; returns how long to wait before the next one."""
        cfg = self.config
        started = time.perf_counter()
        try:
            ws = await self._connect()
        except Exception as exc:
            return self._failed(emit, backoff, *classify_failure(exc, secure=cfg.secure))
        handshake_ms = (time.perf_counter() - started) * 1000.0
        try:
            exchange_ms = await self._open_steps(ws, index)
        except StepFailed as exc:
            await close_quietly(ws, reason=f"wsmon probe: {exc.step} failed")
            return self._failed(emit, backoff, exc.kind, None, str(exc))
        except BaseException:
            await close_quietly(ws, reason="wsmon stopping")
            raise
        backoff.reset()
        conn_id = f"probe{index}#{next(self._conn_ids)}"
        wall, mono = now()
        emit(
            ev.LatencySample(
                wall=wall, mono=mono, kind="connect", ms=handshake_ms, target=cfg.target, own=True
            )
        )
        emit(
            ev.ConnectionOpened(
                wall=wall,
                mono=mono,
                conn=conn_id,
                peer=host_port(ws.remote_address),
                path=redacted_path(ws),
                handshake_ms=handshake_ms,
                source="probe",
                own=True,
                local=host_port(ws.local_address),
            )
        )
        detail = f"handshake {handshake_ms:.1f} ms"
        if cfg.first_exchange:
            detail += f", first exchange {exchange_ms:.1f} ms"
        self.status.mark_up(emit, detail)
        opened = mono
        planned = False
        try:
            planned = await self._exchange(ws, emit)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            await close_quietly(ws, reason="wsmon stopping")
            self._emit_closed(ws, emit, conn_id, opened)
            raise
        except Exception as exc:
            wall, mono = now()
            text = self._scrub(f"probe {index}: {exc!r}")
            emit(ev.LogLine(wall=wall, mono=mono, level="error", text=text, source="probe"))
            await close_quietly(ws, code=1011, reason="wsmon probe error")
        code = self._emit_closed(ws, emit, conn_id, opened)
        if code == 1006:
            self.status.mark_down(emit, "connection dropped without a close frame", "dropped")
        return 0.0 if planned else backoff.next()

    def _emit_closed(self, ws: ClientConnection, emit: Emit, conn_id: str, opened: float) -> int:
        protocol = ws.protocol
        code, reason, closed_by = close_details(
            protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent
        )
        wall, mono = now()
        emit(
            ev.ConnectionClosed(
                wall=wall,
                mono=mono,
                conn=conn_id,
                code=code,
                reason=self._scrub(reason),  # a server may echo what it was sent
                closed_by=closed_by,
                duration_s=mono - opened,
                source="probe",
                own=True,
            )
        )
        return code

    async def _exchange(self, ws: ClientConnection, emit: Emit) -> bool:
        """Ping (and round-trip) every interval until the connection closes, which raises ConnectionClosed,
        or until it is time to reconnect: then close it normally and return True.

        A reader drains every message the whole time: left unread, websockets stops reading the socket
        once its queue fills, and then even pongs would go unseen.
        """
        cfg = self.config
        reconnect_at = time.monotonic() + cfg.reconnect_every if cfg.reconnect_every > 0 else math.inf
        waiting: dict[str, asyncio.Future[None]] = {}
        reader = asyncio.create_task(drain_messages(ws, waiting))
        try:
            while True:
                if not await self._ping(ws, emit, reader):
                    await self._give_up(ws, emit, "pong")
                    await reader  # raises ConnectionClosed
                if cfg.request is not None and not await self._round_trip(ws, emit, waiting, reader):
                    wall, mono = now()
                    emit(
                        ev.LogLine(
                            wall=wall, mono=mono, level="warn", text="probe reply timed out", source="probe"
                        )
                    )
                await asyncio.wait({reader}, timeout=min(cfg.interval, reconnect_at - time.monotonic()))
                if reader.done():
                    await reader
                    return False
                if time.monotonic() >= reconnect_at:
                    await close_quietly(ws, reason="wsmon probe reconnecting")
                    return True
        finally:
            # Not awaited: awaiting here could swallow a cancellation meant for this task.
            reader.cancel()
            reader.add_done_callback(retrieve)

    async def _ping(self, ws: ClientConnection, emit: Emit, reader: asyncio.Task[None]) -> bool:
        pong = await ws.ping()
        done, _ = await asyncio.wait(
            {pong, reader}, timeout=self.config.wait_s, return_when=asyncio.FIRST_COMPLETED
        )
        if pong not in done:
            if reader in done:
                await reader
            pong.cancel()
            return False
        latency_s = pong.result()  # measured by websockets from the ping frame to its pong
        wall, mono = now()
        emit(
            ev.LatencySample(
                wall=wall, mono=mono, kind="ping", ms=latency_s * 1000.0, target=self.config.target, own=True
            )
        )
        return True

    async def _round_trip(
        self,
        ws: ClientConnection,
        emit: Emit,
        waiting: dict[str, asyncio.Future[None]],
        reader: asyncio.Task[None],
    ) -> bool:
        cfg = self.config
        assert cfg.request is not None
        request_id, expected = self._next_request()
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting[expected] = arrived
        try:
            started = time.perf_counter()
            await ws.send(cfg.request.replace("{id}", request_id))
            done, _ = await asyncio.wait(
                {arrived, reader}, timeout=cfg.wait_s, return_when=asyncio.FIRST_COMPLETED
            )
            if arrived not in done:
                if reader in done:
                    await reader
                return False
            ms = (time.perf_counter() - started) * 1000.0
        finally:
            waiting.pop(expected, None)
        wall, mono = now()
        emit(ev.LatencySample(wall=wall, mono=mono, kind="roundtrip", ms=ms, target=cfg.target, own=True))
        return True

    async def _give_up(self, ws: ClientConnection, emit: Emit, what: str) -> None:
        error = f"no {what} within {self.config.wait_s:g} s"
        self.status.mark_down(emit, error, "timeout")
        # 1011 is what websockets' own keepalive sends when a pong never comes.
        await close_quietly(ws, code=1011, reason=f"wsmon: {error}")


def _shown(expect: str | dict[str, Any]) -> str:
    text = expect if isinstance(expect, str) else json.dumps(expect, ensure_ascii=False)
    return repr(text[:77] + "…" if len(text) > 80 else text)


def _unmatched(count: int, last_text: str) -> str:
    """What came instead, without its content (a reply may carry a session token): how many, and the
    last one's "type" when it is a short JSON string."""
    if not count:
        return " (no message came)"
    last = ""
    with contextlib.suppress(ValueError):
        value = json.loads(last_text)
        kind = value.get("type") if isinstance(value, dict) else None
        if isinstance(kind, str) and len(kind) <= 40:
            last = f", the last of type {kind!r}"
    return f" ({count} other message{'s' if count != 1 else ''} came{last})"
