"""wsmon's own WebSocket connections to the server: handshake time, ping and request/reply round trips.

Every way a probe fails is an event: refused, timeout, rejected handshake (with its HTTP status), TLS,
and every close code the server sends, with its reason. Probe connections and their latencies are
marked ``own`` so they stay out of the users' figures. A probe reconnects with capped exponential
backoff after a failure, reconnects every ``reconnect_every`` seconds on purpose (so its handshake time
is a figure of now, not of start-up), and never raises out of ``run()`` except when cancelled.

A probe can open like a real client: extra handshake headers (``Authorization`` …), subprotocols, an
``Origin``, and a scripted first exchange (send this, expect a reply matching that) before it counts
as open. A failure names its step: connect, TLS, handshake, subprotocol or first exchange. Header
values never appear in an event: every error text is scrubbed of them.

The probes run on a thread with its own event loop: the timestamps around the handshake and the ping
are taken where the session's loop (the dashboard starting, a slow frame) cannot delay them. Events
are handed to the session's loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.typing import Origin, Subprotocol

from wsmon.core import events as ev
from wsmon.core.closecodes import close_code_label
from wsmon.core.redact import MASK, redact_url
from wsmon.sources.base import Backoff, CheckResult, Emit, now, retry_backoff

# websockets' own keepalive is off: the probe pings on its own schedule to measure the round trip.
CLOSE_TIMEOUT_S = 2.0
MIN_REPLY_TIMEOUT_S = 5.0
DEFAULT_RECONNECT_S = 30.0
# How long stopping waits for the probe thread to close its connections (a close frame each).
STOP_TIMEOUT_S = CLOSE_TIMEOUT_S + 3.0


@dataclass(frozen=True)
class ExchangeStep:
    """One step of the first exchange: send ``send`` (if any), then wait up to ``timeout`` seconds for a
    message matching ``expect`` (if any), reading past others. ``{id}`` and ``{probe}`` in ``send`` and
    ``expect`` become a fresh id and the probe's number (1, 2, …), e.g. for a device id per probe.

    ``expect`` is a substring of the reply, or a JSON value (a dict) the reply, parsed as JSON, must
    contain: every key of it with the same value, nested dicts compared the same way.
    """

    send: str | None = None
    expect: str | dict[str, Any] | None = None
    timeout: float = 5.0


@dataclass(frozen=True)
class ProbeConfig:
    url: str
    target: str = "websocket"
    count: int = 2
    interval: float = 1.0
    open_timeout: float = 5.0
    # Optional request/reply round trip: the text to send ("{id}" is replaced by a fresh id) and a
    # substring ("{id}" replaced too) that marks its reply; without it the reply must carry the id.
    request: str | None = None
    reply_contains: str | None = None
    ssl_context: ssl.SSLContext | None = None
    display_url: str = ""  # the URL as shown; by default the URL with its secrets masked
    ca_file: str | None = None  # a private CA for wss:// (PEM)
    insecure: bool = False  # wss:// without verifying the certificate: only when asked explicitly
    reply_timeout: float = field(default=0.0)  # 0: five intervals, at least 5 s
    # Close and reopen each probe connection this often (seconds), so the handshake is measured again;
    # 0 keeps a connection open for as long as the server does.
    reconnect_every: float = DEFAULT_RECONNECT_S
    # How the probe opens like a real client. Header values are secrets as far as wsmon is concerned.
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    first_exchange: tuple[ExchangeStep, ...] = ()

    @property
    def secure(self) -> bool:
        return self.url.lower().startswith("wss://")

    @property
    def wait_s(self) -> float:
        """How long a pong or a reply may take before the probe calls it a timeout."""
        return self.reply_timeout or max(self.interval * 5, MIN_REPLY_TIMEOUT_S)


def tls_context(config: ProbeConfig) -> ssl.SSLContext | None:
    """The TLS context for a wss:// probe; None lets websockets use the system's default trust store.

    Raises OSError/ssl.SSLError when the CA file cannot be read: that is a usage error, found at start.
    """
    if not config.secure:
        return None  # websockets refuses an ssl argument for ws://
    if config.ssl_context is not None:
        return config.ssl_context
    if config.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return None


NOT_TLS = "TLS handshake failed"


def classify_failure(exc: BaseException, *, secure: bool = False) -> tuple[ev.FailKind, int | None, str]:
    """(kind, HTTP status, one-line error) for a failed connection attempt; never an empty error.

    ``secure``: the URL is wss://, so a reset or an early end is most likely a server without TLS there.
    """
    if secure and (not_tls := _not_tls(exc)):
        return "tls", None, f"{NOT_TLS}: {not_tls}; is the server plain ws:// on that port?"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return "rejected", status, f"handshake rejected: HTTP {status} {exc.response.reason_phrase}".rstrip()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls", None, f"TLS: {exc.verify_message or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls", None, f"TLS: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, ConnectionRefusedError) or _all_refused(exc):
        return "refused", None, "connection refused (ECONNREFUSED)"
    if isinstance(exc, HandshakeTimeout):
        return "timeout", None, str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", None, "timed out opening the connection"
    if isinstance(exc, socket.gaierror):
        return "dns", None, f"name not resolved: {exc.strerror or exc}"
    if isinstance(exc, InvalidHandshake | InvalidURI):
        return "rejected", None, f"handshake failed: {exc}"
    if isinstance(exc, OSError):
        return "error", None, exc.strerror or str(exc) or type(exc).__name__
    return "error", None, str(exc) or type(exc).__name__


def _not_tls(exc: BaseException) -> str:
    """What a TLS handshake with a server that does not speak TLS ends in; '' for anything else."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason in (
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "RECORD_LAYER_FAILURE",
    ):
        return f"wrong protocol ({reason})"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | EOFError | asyncio.IncompleteReadError):
        return "the server ended the connection"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "the server reset the connection"
    return ""


def _all_refused(exc: BaseException) -> bool:
    """asyncio joins the errors of every address it tried (localhost is ::1 and 127.0.0.1) into one."""
    if (
        not isinstance(exc, OSError)
        or exc.errno is not None
        or not str(exc).startswith("Multiple exceptions:")
    ):
        return False
    errnos = _ERRNO.findall(str(exc))
    return bool(errnos) and all(int(n) == errno.ECONNREFUSED for n in errnos)


_ERRNO = re.compile(r"\[Errno (\d+)\]")


def hint_for(kind: str, status: int | None, error: str = "") -> str:
    """What the user can do about a failure of this kind."""
    if kind == "refused":
        return "nothing listens there: is the server running, on this host and port?"
    if kind == "timeout" and error.startswith("handshake:"):
        return "it accepts connections but does not answer: is the server stopped (SIGSTOP) or stuck?"
    if kind == "timeout":
        return "no answer in time: check the host, a firewall, or an overloaded server"
    if kind == "tls" and error.startswith(NOT_TLS):
        return "use ws://, or the port where the server (or its proxy) speaks TLS"
    if kind == "tls":
        return "pass --ca FILE for a private CA, or --insecure to skip verification"
    if kind == "dns":
        return "check the host name in the URL"
    if kind == "rejected" and status in (401, 403):
        return (
            "the server refused the handshake: check the path, --origin and credentials "
            "(--header 'Authorization: env:TOKEN')"
        )
    if kind == "rejected" and status == 426:
        return "the server wants another protocol or version (is this a WebSocket endpoint?)"
    if kind == "rejected" and status == 404:
        return "no WebSocket endpoint at that path"
    if kind == "rejected":
        return "the server did not complete the WebSocket handshake"
    return ""


class HandshakeTimeout(TimeoutError):
    """The TCP (and TLS) connection was made but the HTTP upgrade got no answer in time: the server
    accepts (or its kernel does, for a stopped process) and does not speak."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"handshake: no answer to the upgrade request within {timeout:g} s (the connection was accepted)"
        )


def _marking(reached: list[bool]) -> type[ClientConnection]:
    """A ClientConnection that notes when its transport is up (TCP and TLS done, HTTP not yet)."""

    class Marking(ClientConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            reached.append(True)
            super().connection_made(transport)

    return Marking


class StepFailed(Exception):
    """A step after the HTTP handshake failed (subprotocol, first exchange): which one and how."""

    def __init__(self, step: str, kind: ev.FailKind, error: str, hint: str = "") -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.kind: ev.FailKind = kind
        self.hint = hint


def reply_matches(expect: str | dict[str, Any], text: str) -> bool:
    """A substring, or a JSON object the reply must contain (see ExchangeStep)."""
    if isinstance(expect, str):
        return expect in text
    try:
        reply = json.loads(text)
    except ValueError:
        return False
    return _contains(reply, expect)


def _contains(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _contains(value[key], wanted) for key, wanted in pattern.items()
        )
    return bool(value == pattern)


def fill(template: Any, values: dict[str, str]) -> Any:
    """``template`` with each ``{name}`` of ``values`` replaced, in every string of a JSON value."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template


_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate"})


def secret_words(headers: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """What to mask in any text: each header value, its credential alone ("Bearer X" → also X), and
    each longer word of it. Values shorter than 3 characters are not looked for (they would mask
    half of every message)."""
    words: set[str] = set()
    for _, value in headers:
        value = value.strip()
        scheme, _, credential = value.partition(" ")
        if scheme.lower() in _AUTH_SCHEMES:
            words.add(credential.strip())
        words.add(value)
        words.update(part for part in value.split() if len(part) >= 6 and part.lower() not in _AUTH_SCHEMES)
    kept = (word for word in words if len(word) >= 3)
    return tuple(sorted(kept, key=len, reverse=True))  # longest first: a value before its parts


def scrub_secrets(text: str, words: tuple[str, ...]) -> str:
    for word in words:
        text = text.replace(word, MASK)
    return text


class ProbeSource:
    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        self._tls = tls_context(config)
        self._request_ids = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._up: bool | None = None
        self._secrets = secret_words(config.headers)
        self._down_error = ""

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        address = self.config.display_url or redact_url(self.config.url)
        emit(
            ev.TargetAdded(wall=wall, mono=mono, target=self.config.target, kind="websocket", address=address)
        )
        forward = _thread_safe(asyncio.get_running_loop(), emit)
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
            await _close_quietly(ws, reason=f"wsmon probe: {exc.step} failed")
            error = self._scrub(str(exc))
            return CheckResult(ok=False, latency_ms=handshake_ms, error=error, hint=exc.hint, kind=exc.kind)
        try:
            async with asyncio.timeout(cfg.wait_s):
                pong = await ws.ping()
                await pong
                if cfg.request is not None:
                    request_id, expected = self._next_request()
                    await ws.send(cfg.request.replace("{id}", request_id))
                    while expected not in _text(await ws.recv()):
                        pass
        except TimeoutError:
            await _close_quietly(ws)
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
            await _close_quietly(ws)
            return CheckResult(ok=False, latency_ms=handshake_ms, kind="error", error=self._scrub(repr(exc)))
        await _close_quietly(ws)
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
                create_connection=_marking(reached),
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
                while not reply_matches(expect, text := _text(await ws.recv())):
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
        self._set_up(emit, False, error, kind)
        return backoff.next()

    def _next_request(self) -> tuple[str, str]:
        request_id = f"wsmon-{next(self._request_ids)}"
        expected = (self.config.reply_contains or "{id}").replace("{id}", request_id)
        return request_id, expected

    def _set_up(self, emit: Emit, up: bool, error: str = "", kind: str = "", detail: str = "") -> None:
        # Down again with another error (a 401, then a failed first exchange) is said again.
        if self._up is up and (up or error == self._down_error):
            return
        self._up = up
        self._down_error = "" if up else error
        wall, mono = now()
        if up:
            emit(ev.TargetUp(wall=wall, mono=mono, target=self.config.target, detail=detail))
        else:
            emit(ev.TargetDown(wall=wall, mono=mono, target=self.config.target, error=error, kind=kind))

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
            await _close_quietly(ws, reason=f"wsmon probe: {exc.step} failed")
            return self._failed(emit, backoff, exc.kind, None, str(exc))
        except BaseException:
            await _close_quietly(ws, reason="wsmon stopping")
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
                peer=_host_port(ws.remote_address),
                path=_redacted_path(ws),
                handshake_ms=handshake_ms,
                source="probe",
                own=True,
                local=_host_port(ws.local_address),
            )
        )
        detail = f"handshake {handshake_ms:.1f} ms"
        if cfg.first_exchange:
            detail += f", first exchange {exchange_ms:.1f} ms"
        self._set_up(emit, True, detail=detail)
        opened = mono
        planned = False
        try:
            planned = await self._exchange(ws, emit)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            await _close_quietly(ws, reason="wsmon stopping")
            self._emit_closed(ws, emit, conn_id, opened)
            raise
        except Exception as exc:
            wall, mono = now()
            text = self._scrub(f"probe {index}: {exc!r}")
            emit(ev.LogLine(wall=wall, mono=mono, level="error", text=text, source="probe"))
            await _close_quietly(ws, code=1011, reason="wsmon probe error")
        code = self._emit_closed(ws, emit, conn_id, opened)
        if code == 1006:
            self._set_up(emit, False, "connection dropped without a close frame", "dropped")
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
        reader = asyncio.create_task(_drain(ws, waiting))
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
                    await _close_quietly(ws, reason="wsmon probe reconnecting")
                    return True
        finally:
            # Not awaited: awaiting here could swallow a cancellation meant for this task.
            reader.cancel()
            reader.add_done_callback(_retrieve)

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
        self._set_up(emit, False, error, "timeout")
        # 1011 is what websockets' own keepalive sends when a pong never comes.
        await _close_quietly(ws, code=1011, reason=f"wsmon: {error}")


def _thread_safe(loop: asyncio.AbstractEventLoop, emit: Emit) -> Emit:
    """An emit callable from another thread: the event is applied on ``loop``, in order."""

    def forward(event: ev.Event) -> None:
        with contextlib.suppress(RuntimeError):  # the session's loop has closed: nobody to tell
            loop.call_soon_threadsafe(emit, event)

    return forward


class LoopThread:
    """Runs one coroutine on a thread with its own event loop, for as long as the awaiting task runs.

    Cancelling the awaiting task cancels the coroutine on its thread and waits (up to STOP_TIMEOUT_S)
    for it to finish cleaning up, so what it emits while closing still arrives before ``run`` returns.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._ready = threading.Event()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    async def run(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        session_loop = asyncio.get_running_loop()
        finished: asyncio.Future[BaseException | None] = session_loop.create_future()

        def report(outcome: BaseException | None) -> None:
            if not finished.done():
                finished.set_result(outcome)

        def main() -> None:
            outcome: BaseException | None = None
            try:
                asyncio.run(self._main(make))
            except BaseException as exc:  # handed to the awaiting task, which raises it there
                outcome = exc
            with contextlib.suppress(RuntimeError):
                session_loop.call_soon_threadsafe(report, outcome)

        threading.Thread(target=main, name=self.name, daemon=True).start()
        try:
            outcome = await asyncio.shield(finished)
        except asyncio.CancelledError:
            self._stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(finished), STOP_TIMEOUT_S)
            raise
        if outcome is not None and not isinstance(outcome, asyncio.CancelledError):
            raise outcome

    async def _main(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._ready.set()
        if self._stop_requested:  # stopped before this thread got going
            return
        await make()

    def _stop(self) -> None:
        self._stop_requested = True
        if self._ready.is_set() and self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._task.cancel)


async def _drain(ws: ClientConnection, waiting: dict[str, asyncio.Future[None]]) -> None:
    """Read every message; mark the round trip whose reply it is. Ends with ConnectionClosed."""
    while True:
        text = _text(await ws.recv())
        for expected, arrived in list(waiting.items()):
            if expected in text and not arrived.done():
                arrived.set_result(None)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


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


def _text(message: str | bytes) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", "replace")


def close_details(
    rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None
) -> tuple[int, str, ev.Closer]:
    """(code, reason, who closed first) seen from the probe: the server is the other end.

    1006 when no close frame went either way (the TCP connection just ended); 1005 when the server's
    frame carried no status code, exactly as websockets parses it.
    """
    if rcvd is None and sent is None:
        return 1006, "", "neither"
    if rcvd is not None and (sent is None or rcvd_then_sent):
        return int(rcvd.code), rcvd.reason, "server"
    assert sent is not None
    return int(sent.code), sent.reason, "client"


def _host_port(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address or "")


def _redacted_path(ws: ClientConnection) -> str:
    path = ws.request.path if ws.request is not None else ""
    if "?" not in path:
        return path
    return redact_url("ws://h" + path).removeprefix("ws://h")


async def _close_quietly(ws: ClientConnection, code: int = 1000, reason: str = "") -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason), timeout=CLOSE_TIMEOUT_S + 1.0)
