"""The tap: a transparent pass-through in front of the server that reads the frames as they pass.

Clients connect to the tap's listening address; for each one the tap opens a TCP (or TLS, for wss://)
connection to the upstream server and forwards exactly the bytes it reads, both ways, the moment it
reads them: no re-framing, no re-compression. Only then is a copy of the bytes fed to a parser per
direction: the HTTP upgrade (request line, path, status, subprotocol, extensions) by hand, then the
frames with websockets' own sans-I/O parser. From them come connections, messages and bytes per
interval, close frames with the side that sent first, abnormal ends, rejected handshakes, and
delivery figures (see ``delivery.py``). A parser that fails stops parsing; it never stops forwarding.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import itertools
import socket
import ssl
import struct
import time
from collections.abc import Generator, Sequence
from urllib.parse import urlsplit

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CTRL_OPCODES, Frame, Opcode
from websockets.headers import parse_extension
from websockets.streams import StreamReader
from websockets.typing import ExtensionName

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import Emit, now, retry_backoff
from wsmon.sources.delivery import Delivered, DeliveryMatcher, DeliveryResult, DeliveryRules
from wsmon.sources.probe import classify_failure

CONNECT_TIMEOUT_S = 5.0
MAX_HTTP_HEAD = 64 * 1024  # bytes up to \r\n\r\n; longer is not an upgrade the tap understands
MAX_PARSED_FRAME = 1024 * 1024  # larger frames are counted from their header and skipped, not buffered
MAX_PAIRED_MESSAGE = 256 * 1024  # larger text messages are not read for delivery pairing
MAX_EARLY_BYTES = 256 * 1024  # client bytes held while the upstream connection opens
# What one direction's passive parser may hold: a handshake head (and, on the client's side, whatever it
# sends before the server has answered), or an incomplete frame up to MAX_PARSED_FRAME. Past it the parser
# stops for that connection and says so; forwarding goes on. Without it a silent upstream made the tap
# keep every byte the client sent.
MAX_HELD_HANDSHAKE = MAX_HTTP_HEAD
MAX_HELD_FRAMES = MAX_PARSED_FRAME + 64 * 1024
UPSTREAM_CHECK_GRACE_S = 0.5  # after an abnormal end, before checking the upstream is still there
HOLD_CHECK_S = 0.1  # a live server keeps a fresh connection open at least this long
HALF_OPEN_TIMEOUT_S = 30.0  # one side ended and the other never did: close both after this
_SO_LINGER_RESET = struct.pack("ii", 1, 0)


def _upstream_address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    return parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80), secure


class TapSource:
    """One ``--tap LISTEN=UPSTREAM``: listens, forwards, and emits what it sees; run() never raises."""

    def __init__(
        self,
        listen_host: str,
        listen_port: int,
        upstream_url: str,
        *,
        target: str = "tap",
        interval: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
        rules: DeliveryRules | None = None,
        capture_payloads: bool = False,
        delivery_timeout_s: float = 5.0,
        covers: Sequence[str] = (),
        starting: bool = False,
    ) -> None:
        self.listen_host = listen_host
        # The log sources of the server behind this tap: the reducer folds their connection rows into
        # the tap's, which own the counts (one connection, one count).
        self.covers = list(covers)
        # wsmon starts the upstream server itself: listening is not "up"; the first answer is.
        self.starting = starting
        self.port = listen_port  # the real port once listening (tests listen on port 0)
        self.upstream_url = upstream_url
        self.target = target
        self.interval = interval
        host, port, secure = _upstream_address(upstream_url)
        self.upstream_host, self.upstream_port = host, port
        if secure and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self.ssl_context = ssl_context if secure else None
        self.rules = rules if rules is not None else DeliveryRules()
        self.matcher = DeliveryMatcher(self.rules, timeout_s=delivery_timeout_s)
        # Payload capture (with redaction) is planned; until then no payload ever leaves the parser.
        self.capture_payloads = capture_payloads
        self.listening = asyncio.Event()
        self._emit: Emit = _drop
        self._conn_ids = itertools.count(1)
        self._pairs: set[_Pair] = set()
        self._upstream_up: bool | None = None
        self._down_reason: tuple[str, str] = ("", "")
        self._watcher: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        listen = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{listen}:{self.port} → {redact_url(self.upstream_url)}"

    async def run(self, emit: Emit) -> None:
        self._emit = emit
        wall, mono = now()
        emit(self._added(wall, mono))
        loop = asyncio.get_running_loop()
        server = await self._listen(loop)
        try:
            self._watch_upstream()
            while True:
                await asyncio.sleep(self.interval)
                self._tick()
        finally:
            server.close()
            if self._watcher is not None:
                self._watcher.cancel()
            for pair in list(self._pairs):
                pair.abort("wsmon stopped")

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> asyncio.Server:
        backoff = retry_backoff(self.interval)
        while True:
            try:
                server = await loop.create_server(
                    lambda: _ClientSide(self), self.listen_host, self.port, reuse_address=True
                )
            except OSError as error:
                wall, mono = now()
                text = f"cannot listen on {self.listen_host}:{self.port}: {error.strerror or error}"
                self._emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=text, kind="error"))
                await asyncio.sleep(backoff.next())
                continue
            asked, self.port = self.port, server.sockets[0].getsockname()[1]
            self.listening.set()
            wall, mono = now()
            if asked != self.port:  # port 0: show the port it got
                self._emit(self._added(wall, mono))
            if not self.starting:
                detail = f"listening on {self.address}"
                self._emit(ev.TargetUp(wall=wall, mono=mono, target=self.target, detail=detail))
            return server

    def _added(self, wall: float, mono: float) -> ev.TargetAdded:
        return ev.TargetAdded(
            wall=wall, mono=mono, target=self.target, kind="tap", address=self.address, covers=self.covers
        )

    def _tick(self) -> None:
        for pair in list(self._pairs):
            pair.flush_traffic()
        self.deliver(self.matcher.expire(time.monotonic()))

    def deliver(self, results: list[DeliveryResult]) -> None:
        for result in results:
            wall, mono = now()
            if isinstance(result, Delivered):
                self._emit(
                    ev.LatencySample(
                        wall=wall,
                        mono=mono,
                        kind="delivery",
                        ms=result.ms,
                        target=self.target,
                        ref=result.message_id,
                    )
                )
            else:
                self._emit(
                    ev.DeliveryFailed(
                        wall=wall,
                        mono=mono,
                        message_id=result.message_id,
                        conn=result.conn,
                        reason=result.reason,
                        source="tap",
                    )
                )

    # --- the upstream's health ---------------------------------------------------------------------

    def upstream_reached(self) -> None:
        if self._upstream_up is not True:
            self._upstream_up = True
            self._down_reason = ("", "")
            wall, mono = now()
            detail = f"upstream {redact_url(self.upstream_url)} reachable"
            self._emit(ev.TargetUp(wall=wall, mono=mono, target=self.target, detail=detail))

    def upstream_unreachable(self, kind: str, error: str) -> None:
        self._upstream_down(kind, error)
        self._watch_upstream()

    def upstream_exited(self, how: str) -> None:
        """The --server process wsmon started is gone: the upstream is down now, not at the next client's
        failed connect. The watcher then sees it come back, if something restarts it."""
        self._upstream_down("exited", f"upstream server {how}")
        self._restart_watch()

    def upstream_reset(self) -> None:
        """The upstream reset a live connection: a dying server does that. Check it at once."""
        self._restart_watch()

    def _restart_watch(self, grace: float = 0.0) -> None:
        """A fresh check now: one already running may have connected before the server died (and would
        then say it holds), or be sleeping in a long backoff."""
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
        self._watcher = None
        self._watch_upstream(grace)

    def _watch_upstream(self, grace: float = 0.0) -> None:
        """Check the upstream with a bare TCP connection until it holds one: at start, after a refusal,
        and (after ``grace``) when the upstream dropped a connection without a close frame."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch(grace))

    async def _watch(self, grace: float) -> None:
        # A server being killed closes its connections before its listening socket, so a check made at
        # once can still be accepted: wait a moment, and count only a connection the server holds.
        await asyncio.sleep(grace)
        backoff = retry_backoff(self.interval)
        while True:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    reader, writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
                try:
                    held = await _holds(reader)
                finally:
                    writer.close()  # also when cancelled: a server may wait long for a request otherwise
            except Exception as exc:
                kind, _status, error = classify_failure(exc)
                self._upstream_down(kind, error)
            else:
                if held:
                    self.upstream_reached()
                    return
                self._upstream_down("error", "accepts connections but drops them at once")
            await asyncio.sleep(backoff.next())

    def _upstream_down(self, kind: str, error: str) -> None:
        """Down once per outage; again only when the reason changes (e.g. dropping, then refusing)."""
        if not error.startswith("upstream "):
            error = f"upstream {redact_url(self.upstream_url)}: {error}"
        if self._upstream_up is False and self._down_reason[0] == "exited" and kind in ("refused", "timeout"):
            return  # of course the exited server refuses: the exit stays the outage's cause
        if self._upstream_up is not False or self._down_reason != (kind, error):
            self._upstream_up = False
            self._down_reason = (kind, error)
            wall, mono = now()
            self._emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=error, kind=kind))

    # --- connections -------------------------------------------------------------------------------

    def new_pair(self, client: asyncio.Transport) -> _Pair:
        pair = _Pair(self, f"{self.target}:{next(self._conn_ids)}", client)
        self._pairs.add(pair)
        return pair

    def forget(self, pair: _Pair) -> None:
        self._pairs.discard(pair)

    def emit(self, event: ev.Event) -> None:
        self._emit(event)


def _drop(event: ev.Event) -> None:
    pass


async def _holds(reader: asyncio.StreamReader) -> bool:
    """Whether the server keeps a fresh connection open for a moment (it waits for our request)."""
    try:
        async with asyncio.timeout(HOLD_CHECK_S):
            await reader.read(1)
    except TimeoutError:
        return True
    except OSError:
        return False
    return False


class _ClientSide(asyncio.Protocol):
    def __init__(self, tap: TapSource) -> None:
        self.tap = tap
        self.pair: _Pair | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.pair = self.tap.new_pair(transport)
        self.pair.connect_upstream()

    def data_received(self, data: bytes) -> None:
        assert self.pair is not None
        self.pair.from_client(data)

    def eof_received(self) -> bool:
        assert self.pair is not None
        self.pair.client_eof()
        return True  # keep the other direction open: a half-close is forwarded, not acted on

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pair is not None:
            self.pair.client_lost(exc)

    def pause_writing(self) -> None:
        if self.pair is not None and self.pair.upstream is not None:
            self.pair.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.pair is not None and self.pair.upstream is not None:
            self.pair.upstream.resume_reading()


class _UpstreamSide(asyncio.Protocol):
    def __init__(self, pair: _Pair, tls: bool) -> None:
        self.pair = pair
        self.tls = tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.pair.upstream_made(transport)

    def data_received(self, data: bytes) -> None:
        self.pair.from_upstream(data)

    def eof_received(self) -> bool:
        self.pair.upstream_eof()
        return not self.tls  # asyncio's TLS transport always closes on EOF, and warns when asked not to

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.upstream_lost(exc)

    def pause_writing(self) -> None:
        self.pair.client.pause_reading()

    def resume_writing(self) -> None:
        self.pair.client.resume_reading()


def _reset(transport: asyncio.Transport) -> None:
    """Abort with a TCP RST, so a reset on one side reaches the other side as a reset."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _SO_LINGER_RESET)
    transport.abort()


def _host_port(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address or "")


class _Pair:
    """One client's connection through the tap: both transports, both parsers, what was seen."""

    def __init__(self, tap: TapSource, conn_id: str, client: asyncio.Transport) -> None:
        self.tap = tap
        self.conn_id = conn_id
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.peer = _host_port(client.get_extra_info("peername"))
        self.early: list[bytes] = []
        self.early_bytes = 0
        self.connecting: asyncio.Task[None] | None = None
        self.client_ended = self.upstream_ended = False  # EOF received
        self.client_gone = self.upstream_gone = False  # connection lost
        self.upstream_failed = False
        self.finished = False
        self.first_tcp_end: tuple[str, str] | None = None  # (side, "closed" | "reset")
        self.half_open_timer: asyncio.TimerHandle | None = None
        self.mono = time.monotonic()  # when the current chunk arrived
        # The handshake, as parsed.
        self.request_mono: float | None = None
        self.is_upgrade = False
        self.request_seen = False  # the client's request head has been read
        self.path = ""
        self.status: int | None = None
        self.extensions = ""
        self.opened_mono: float | None = None
        # Close frames: (side, code, reason) of the first, and whether the other side answered.
        self.first_close: tuple[ev.Closer, int, str] | None = None
        self.answered = False
        self.illegal_close = False  # the first close frame broke RFC 6455 §7.4
        # Traffic since the last flush.
        self.msgs = {"in": 0, "out": 0}
        self.bytes = {"in": 0, "out": 0}
        self.by_type: dict[str, int] = {}
        self.flushed_mono = self.mono
        pairing = tap.rules.enabled
        self.inbound = _Direction(self, "in", pairing)
        self.outbound = _Direction(self, "out", pairing)

    # --- forwarding: bytes go out first, the parser sees a copy after -------------------------------

    def connect_upstream(self) -> None:
        self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        tap = self.tap
        loop = asyncio.get_running_loop()
        tls = tap.ssl_context
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.create_connection(
                    lambda: _UpstreamSide(self, tls is not None),
                    tap.upstream_host,
                    tap.upstream_port,
                    ssl=tls,
                    server_hostname=tap.upstream_host if tls is not None else None,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._upstream_failed(exc)

    def _upstream_failed(self, exc: BaseException) -> None:
        self.upstream_failed = True
        kind, status, error = classify_failure(exc)
        text = f"upstream {redact_url(self.tap.upstream_url)}: {error}"
        self._emit_failed(kind, text, status)  # type: ignore[arg-type]
        if kind in ("refused", "timeout", "dns"):
            self.tap.upstream_unreachable(kind, text)
        # The closest a proxy can come to "connection refused" once it has accepted the connection.
        if not self.client_gone:
            _reset(self.client)

    def upstream_made(self, transport: asyncio.Transport) -> None:
        if self.client_gone:
            transport.abort()
            return
        self.upstream = transport
        self.tap.upstream_reached()
        if self.early:
            transport.writelines(self.early)
            self.early.clear()
            self.client.resume_reading()
        if self.client_ended:
            self._end_writing(transport)

    def from_client(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None:
            if not self.upstream_gone:
                upstream.write(data)
        else:
            self.early.append(data)
            self.early_bytes += len(data)
            if self.early_bytes > MAX_EARLY_BYTES:
                self.client.pause_reading()
        self.mono = time.monotonic()
        if self.request_mono is None:
            self.request_mono = self.mono
        self.inbound.feed(data)

    def from_upstream(self, data: bytes) -> None:
        if not self.client_gone:
            self.client.write(data)
        self.mono = time.monotonic()
        self.outbound.feed(data)

    # --- endings -----------------------------------------------------------------------------------

    def _tcp_end(self, side: str, how: str) -> None:
        if self.first_tcp_end is None:
            self.first_tcp_end = (side, how)
            self.half_open_timer = asyncio.get_running_loop().call_later(
                HALF_OPEN_TIMEOUT_S, self.abort, "half-open too long"
            )

    @staticmethod
    def _end_writing(transport: asyncio.Transport) -> None:
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()  # TLS has no half-close

    def client_eof(self) -> None:
        self.client_ended = True
        self._tcp_end("client", "closed")
        if self.upstream is not None and not self.upstream_gone:
            self._end_writing(self.upstream)
        self._close_when_both_ended()

    def upstream_eof(self) -> None:
        self.upstream_ended = True
        self._tcp_end("server", "closed")
        if not self.client_gone:
            self._end_writing(self.client)
        self._close_when_both_ended()

    def _close_when_both_ended(self) -> None:
        if self.client_ended and self.upstream_ended:
            self.client.close()
            if self.upstream is not None:
                self.upstream.close()

    def client_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        self._tcp_end("client", "reset" if exc is not None else "closed")
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        upstream = self.upstream
        if upstream is not None and not self.upstream_gone:
            if exc is not None:
                _reset(upstream)
            else:
                upstream.close()
        self._finish_when_both_gone()

    def upstream_lost(self, exc: Exception | None) -> None:
        self.upstream_gone = True
        self._tcp_end("server", "reset" if exc is not None else "closed")
        if exc is not None and self.opened_mono is not None and self.first_close is None:
            self.tap.upstream_reset()
        if not self.client_gone:
            if exc is not None:
                _reset(self.client)
            else:
                self.client.close()
        self._finish_when_both_gone()

    def _finish_when_both_gone(self) -> None:
        if self.client_gone and (self.upstream_gone or self.upstream is None):
            self._finish()

    def abort(self, why: str) -> None:
        """wsmon stops, or a side never ended: cut both connections now."""
        if self.first_tcp_end is None:
            self.first_tcp_end = ("wsmon", why)
        if self.upstream is not None and not self.upstream_gone:
            self.upstream.abort()
        if not self.client_gone:
            self.client.abort()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.half_open_timer is not None:
            self.half_open_timer.cancel()
        self.tap.forget(self)
        if self.opened_mono is not None:
            self.flush_traffic()
            self._emit_closed()
        elif self.is_upgrade and self.status is None and not self.upstream_failed:
            side, how = self.first_tcp_end or ("client", "closed")
            who = "the upstream" if side == "server" else "the client"
            self._emit_failed("error", f"{who} {how} the connection during the handshake")
        if self.first_close is None and self.first_tcp_end is not None and self.first_tcp_end[0] == "server":
            self.tap._watch_upstream(UPSTREAM_CHECK_GRACE_S)  # the server dropped a connection: still there?

    def _emit_closed(self) -> None:
        wall, mono = now()
        assert self.opened_mono is not None
        if self.first_close is not None:
            closed_by, code, reason = self.first_close
            answered: bool | None = self.answered
        else:
            side, how = self.first_tcp_end or ("unknown", "closed")
            code, closed_by, answered = 1006, "neither", None
            if side == "wsmon":
                reason = f"cut by the tap: {how}"
            else:
                ended = "reset the connection" if how == "reset" else "closed TCP"
                reason = f"{side} {ended} without a close frame"
        self.tap.emit(
            ev.ConnectionClosed(
                wall=wall,
                mono=mono,
                conn=self.conn_id,
                code=code,
                reason=reason,
                closed_by=closed_by,
                duration_s=mono - self.opened_mono,
                source="tap",
                answered=answered,
            )
        )

    def _emit_failed(self, kind: ev.FailKind, error: str, status: int | None = None) -> None:
        wall, mono = now()
        self.tap.emit(
            ev.ConnectFailed(
                wall=wall,
                mono=mono,
                target=self.tap.target,
                kind=kind,
                error=error,
                status=status,
                source="tap",
            )
        )

    # --- what the parsers found --------------------------------------------------------------------

    def on_request(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = _headers(lines[1:])
        self.is_upgrade = "websocket" in headers.get("upgrade", "").lower()
        path = parts[1] if len(parts) >= 2 else ""
        self.path = redact_url("ws://h" + path).removeprefix("ws://h") if "?" in path else path

    def on_response(self, head: bytes) -> bool:
        """The upstream's answer to the upgrade; True when frames follow."""
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        code = status_line[1] if len(status_line) > 1 else ""
        # Three ASCII digits (RFC 9110 §15), not whatever int() takes ("1_01", " 101", 30 digits: too
        # big for the recording, whose ConnectFailed then could not be written): else 0, not HTTP.
        self.status = int(code) if len(code) == 3 and code.isascii() and code.isdigit() else 0
        if not self.is_upgrade:
            return False
        if self.status != 101:
            phrase = status_line[2] if len(status_line) > 2 else ""
            error = f"handshake rejected: HTTP {self.status} {phrase}".rstrip()
            self._emit_failed("rejected", error, self.status)
            return False
        headers = _headers(lines[1:])
        self.extensions = extensions = headers.get("sec-websocket-extensions", "")
        if self.tap.rules.enabled and extensions:
            self._set_up_inflaters(extensions)
        self.opened_mono = self.mono
        started = self.request_mono if self.request_mono is not None else self.mono
        handshake_ms = (self.mono - started) * 1000.0
        wall, mono = now()
        tap = self.tap
        tap.emit(ev.LatencySample(wall=wall, mono=mono, kind="connect", ms=handshake_ms, target=tap.target))
        tap.emit(
            ev.ConnectionOpened(
                wall=wall,
                mono=mono,
                conn=self.conn_id,
                peer=self.peer,
                path=self.path,
                handshake_ms=handshake_ms,
                source="tap",
                subprotocol=headers.get("sec-websocket-protocol", ""),
                extensions=extensions,
                # What the server sees as this connection's peer: lets the reducer match the
                # server's own log line for it, so the connection is counted once.
                local=_host_port(self.upstream.get_extra_info("sockname")) if self.upstream else "",
            )
        )
        self.flushed_mono = self.mono
        self.inbound.kick()
        return True

    def _set_up_inflaters(self, header: str) -> None:
        """Inflate compressed messages for delivery pairing only, with the parameters the server chose."""
        try:
            offers = parse_extension(header)
        except Exception:
            return
        for name, params in offers:
            if name != "permessage-deflate":
                continue
            values = dict(params)
            for direction, sender in ((self.inbound, "client"), (self.outbound, "server")):
                bits = values.get(f"{sender}_max_window_bits")
                try:
                    direction.decoder.inflater = PerMessageDeflate(
                        remote_no_context_takeover=f"{sender}_no_context_takeover" in values,
                        # No encoder: the tap never compresses; this skips allocating one.
                        local_no_context_takeover=True,
                        remote_max_window_bits=int(bits) if bits else 15,
                        local_max_window_bits=15,
                    )
                except (AssertionError, ValueError):
                    direction.decoder.inflater = None
            return

    def on_message(self, direction: str, key: str, payload: bytes | bytearray | None) -> None:
        """A whole message; ``key`` is its type and direction ("text_in"), ``payload`` its text to pair."""
        self.msgs[direction] += 1
        self.by_type[key] = self.by_type.get(key, 0) + 1
        if payload is not None:
            self.tap.deliver(self.tap.matcher.on_message(direction, self.conn_id, payload, self.mono))

    def on_control(self, direction: str, kind: str) -> None:
        key = f"{kind}_{direction}"
        self.by_type[key] = self.by_type.get(key, 0) + 1

    def on_close_frame(self, direction: str, data: bytes) -> None:
        side: ev.Closer = "client" if direction == "in" else "server"
        if self.first_close is not None:
            first_side, code, reason = self.first_close
            if first_side != side:
                self.answered = True
                if self.illegal_close and len(data) >= 2:
                    # The first close was a protocol error; record what the other side answered it with
                    # (typically 1002), still as the fault of the side that sent the illegal frame.
                    answer = struct.unpack("!H", data[:2])[0]
                    self.first_close = (first_side, answer, f"{reason}; {side} answered {answer}")
            return
        code, reason = _close_of(data)
        if data and (code in _ILLEGAL_ON_THE_WIRE or not _legal_close_code(code) or reason is None):
            # RFC 6455 §7.4: 1005, 1006 and 1015 (and unassigned codes) must never be sent. A frame that
            # carries one is a protocol error by its sender, not a close with that meaning.
            what = f"close code {code}" if reason is not None else "a malformed close frame"
            reason = f"protocol error: the {side} sent {what}"
            code, self.illegal_close = 1002, True
        self.first_close = (side, code, reason)
        wall, mono = now()
        self.tap.emit(ev.ConnectionClosing(wall=wall, mono=mono, conn=self.conn_id, by=side))

    def on_parse_error(self, direction: str, exc: BaseException) -> None:
        wall, mono = now()
        side = "client" if direction == "in" else "server"
        what = f"protocol error by the {side}: {exc}" if isinstance(exc, ProtocolError) else repr(exc)
        text = f"{self.conn_id}: stopped reading {direction} frames (still forwarding): {what}"
        self.tap.emit(ev.LogLine(wall=wall, mono=mono, level="warn", text=text, source="tap"))

    def on_parser_full(self, direction: str, why: str) -> None:
        """A parser reached its cap: parsing of this connection stops, forwarding goes on."""
        if self.status is None:
            # Without the server's answer the client's side can never go on either.
            self.inbound.stop()
            self.outbound.stop()
        wall, mono = now()
        text = f"{self.conn_id}: stopped parsing this connection (still forwarding): {why}"
        self.tap.emit(ev.LogLine(wall=wall, mono=mono, level="warn", text=text, source="tap"))

    def flush_traffic(self) -> None:
        msgs, sizes = self.msgs, self.bytes
        if not (msgs["in"] or msgs["out"] or sizes["in"] or sizes["out"] or self.by_type):
            return
        wall, mono = now()
        interval = max(mono - self.flushed_mono, 0.0)
        self.flushed_mono = mono
        self.tap.emit(
            ev.Traffic(
                wall=wall,
                mono=mono,
                conn=self.conn_id,
                msgs_in=msgs["in"],
                msgs_out=msgs["out"],
                bytes_in=sizes["in"],
                bytes_out=sizes["out"],
                interval_s=interval,
                by_type=self.by_type,
            )
        )
        self.msgs = {"in": 0, "out": 0}
        self.bytes = {"in": 0, "out": 0}
        self.by_type = {}


_ILLEGAL_ON_THE_WIRE = frozenset({1004, 1005, 1006, 1015})


def _legal_close_code(code: int) -> bool:
    """Codes a close frame may carry (RFC 6455 §7.4, and the IANA registry's later 1012-1014)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_of(data: bytes) -> tuple[int, str | None]:
    """A close frame's code and reason; 1005 for an empty payload (allowed: no status), reason None when
    the payload is malformed (one byte, or a reason that is not UTF-8)."""
    if not data:
        return 1005, ""
    if len(data) < 2:
        return 1002, None
    code = struct.unpack("!H", data[:2])[0]
    try:
        return code, bytes(data[2:]).decode("utf-8")
    except UnicodeDecodeError:
        return code, None


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            # Repeated headers (extensions may be split over several) join with commas, as HTTP allows.
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


class _Decoder(Extension):
    """Hands frames to the parser as they are, except that compressed ones are inflated (for pairing)
    while an inflater is set, and their RSV1 bit is cleared either way so the frame check accepts them."""

    name = ExtensionName("permessage-deflate")

    def __init__(self) -> None:
        self.inflater: PerMessageDeflate | None = None
        self.compressed_message = False
        self.readable = True  # whether the last data frame's payload is the message's own bytes
        self.wire_size = 0

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.wire_size = len(frame.data)
        opcode = frame.opcode
        if opcode in CTRL_OPCODES:
            return frame
        if opcode is not Opcode.CONT:
            self.compressed_message = frame.rsv1
        if not self.compressed_message:
            self.readable = True
            return frame
        if self.inflater is not None:
            try:
                inflated = self.inflater.decode(frame, max_size=MAX_PAIRED_MESSAGE)
            except (PayloadTooBig, ProtocolError):
                self.inflater = None  # its window is lost: no more pairing of compressed messages here
            else:
                self.readable = True
                return inflated
        self.readable = False
        return dataclasses.replace(frame, rsv1=False) if frame.rsv1 else frame


_KIND = {Opcode.TEXT: "text", Opcode.BINARY: "binary"}
_UTF8 = codecs.getincrementaldecoder("utf-8")


def _check_utf8(data: bytes | bytearray) -> None:
    """A text message must be UTF-8 (RFC 6455 §8.1)."""
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8 in a text message") from None


class _Direction:
    """The parser of one direction ("in" is client to server): the HTTP head, then frames."""

    def __init__(self, pair: _Pair, name: str, pairing: bool) -> None:
        self.pair = pair
        self.name = name
        self.mask = name == "in"  # clients mask their frames
        self.pairing = pairing
        self.reader = StreamReader()
        self.decoder = _Decoder()
        self.alive = True
        self.upgraded = False
        self.message_key = ""
        self.keys = {opcode: f"{kind}_{name}" for opcode, kind in _KIND.items()}
        self.message_parts: list[bytes] | None = None
        self.message_size = 0
        self.in_message = False  # a fragmented message has begun and not yet had its final frame
        self.utf8: codecs.IncrementalDecoder | None = None  # checks a fragmented text message
        self.parser = self._parse()
        next(self.parser)

    def feed(self, data: bytes) -> None:
        if not self.alive:
            return
        self.reader.feed_data(data)
        self._step()
        held = len(self.reader.buffer)
        if self.alive and held > (MAX_HELD_FRAMES if self.upgraded else MAX_HELD_HANDSHAKE):
            self.stop()
            self.pair.on_parser_full(self.name, self._full_reason(held))

    def _full_reason(self, held: int) -> str:
        if self.upgraded:
            return f"{held} bytes held for one incomplete {self.name} frame"
        cap = f"{MAX_HELD_HANDSHAKE // 1024} KiB"
        if self.name == "out":
            return f"the upstream's response head is over {cap}"
        if self.pair.request_seen:
            return f"the upstream has not answered the handshake and the client sent over {cap} more"
        return f"the client's request head is over {cap}"

    def kick(self) -> None:
        """Go on with bytes already buffered: the request's side waits for the response's verdict."""
        if self.alive:
            self._step()

    def _step(self) -> None:
        try:
            self.parser.send(None)
        except StopIteration:
            self.stop()
        except Exception as exc:
            self.stop()
            self.pair.on_parse_error(self.name, exc)

    def stop(self) -> None:
        """Parse no more of this direction, and let go of what it held."""
        self.alive = False
        self.reader.discard()
        self.message_parts = None

    def _parse(self) -> Generator[None, None, None]:
        yield  # primed; everything below runs as bytes arrive
        head = yield from self._http_head()
        if head is None:
            return
        pair = self.pair
        if self.name == "in":
            pair.request_seen = True
            pair.on_request(head)
            if not pair.is_upgrade:
                return
            while pair.status is None:  # frames may only follow a 101, which the other side will tell
                yield
            if pair.status != 101 or pair.opened_mono is None:
                return
        elif not pair.on_response(head):
            return
        yield from self._frames()

    def _http_head(self) -> Generator[None, None, bytes | None]:
        buffer = self.reader.buffer
        while True:
            end = buffer.find(b"\r\n\r\n", 0, MAX_HTTP_HEAD + 4)
            # A head ending past the cap is too long however it arrives: found only in a chunk that
            # brought its end too, it used to be read when it came whole and refused when it came split.
            if end >= 0 and end + 4 <= MAX_HTTP_HEAD:
                head = bytes(buffer[: end + 4])
                del buffer[: end + 4]
                return head
            if len(buffer) > MAX_HTTP_HEAD:
                held = len(buffer)
                self.stop()
                self.pair.on_parser_full(self.name, self._full_reason(held))
                return None
            yield

    def _frames(self) -> Generator[None, None, None]:
        self.upgraded = True
        buffer = self.reader.buffer
        read_exact = self.reader.read_exact
        decoder = self.decoder
        # Without a negotiated extension there is nothing to inflate, and RSV bits are errors anyway.
        extensions: list[Extension] = [decoder] if self.pair.extensions else []
        mask = self.mask
        while True:
            while len(buffer) < 2:
                yield
            head = buffer[0]
            try:
                frame = yield from Frame.parse(
                    read_exact, mask=mask, max_size=MAX_PARSED_FRAME, extensions=extensions
                )
            except PayloadTooBig as exc:
                size = exc.size or 0
                self._check_big_frame(head, size, bool(extensions))
                yield from self._skip(size + (4 if mask else 0))
                self._big_frame(head, size)
                continue
            if extensions:
                self._frame(frame, decoder.wire_size, decoder.readable)
            else:
                self._frame(frame, len(frame.data), True)

    def _skip(self, count: int) -> Generator[None, None, None]:
        buffer = self.reader.buffer
        while count > 0:
            while not buffer:
                yield
            taken = min(count, len(buffer))
            del buffer[:taken]
            count -= taken

    def _check_big_frame(self, head: int, size: int, extended: bool) -> None:
        """What Frame.parse checks after reading a payload, for a frame whose payload is skipped instead:
        without it an oversized control frame, reserved bits or a 2^63+ length passed unnoticed."""
        if size >= 1 << 63:
            raise ProtocolError(f"frame length {size} has its most significant bit set")
        if head & 0x08:
            raise ProtocolError("control frame too long")
        if head & (0x30 if extended else 0x70):
            raise ProtocolError("reserved bits must be 0")
        self._sequence(head & 0x0F, bool(head & 0x80))

    def _sequence(self, opcode: int, fin: bool) -> None:
        """Data frames must follow each other as messages: a start, then continuations up to a FIN."""
        if opcode == Opcode.CONT.value:
            if not self.in_message:
                raise ProtocolError("continuation frame without a message to continue")
        elif self.in_message:
            raise ProtocolError(f"new {Opcode(opcode).name} message before the last one's final frame")
        self.in_message = not fin

    def _big_frame(self, head: int, size: int) -> None:
        """A frame too large to buffer: counted from its header; its message is not read for pairing."""
        self.decoder.inflater = None  # a skipped compressed frame would leave the inflater's window wrong
        self.utf8 = None  # nor can this message's UTF-8 be followed across the skipped bytes
        opcode = head & 0x0F
        self.pair.bytes[self.name] += size
        if opcode in (Opcode.TEXT.value, Opcode.BINARY.value):
            self.message_key = self.keys[Opcode(opcode)]
        self.message_parts = None
        if head & 0x80 and opcode in (0, 1, 2):
            self.pair.on_message(self.name, self.message_key or self.keys[Opcode.BINARY], None)

    def _frame(self, frame: Frame, wire_size: int, readable: bool) -> None:
        opcode = frame.opcode
        pair = self.pair
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if self.in_message:
                raise ProtocolError(f"new {opcode.name} message before the last one's final frame")
            pair.bytes[self.name] += wire_size
            data = frame.data
            text = opcode is Opcode.TEXT and readable
            if frame.fin:  # most messages are one frame: no assembly
                if text and not data.isascii():  # isascii: the common case costs no decoding
                    _check_utf8(data)
                pairable = self.pairing and text and len(data) <= MAX_PAIRED_MESSAGE
                pair.on_message(self.name, self.keys[opcode], data if pairable else None)
                return
            self.in_message = True
            self.utf8 = _UTF8() if text else None
            self._check_fragment(frame, readable)
            self.message_key = self.keys[opcode]
            self.message_parts = [] if self.pairing and opcode is Opcode.TEXT else None
            self.message_size = 0
            self._collect(data, readable)
            return
        if opcode is Opcode.CLOSE:
            pair.on_close_frame(self.name, frame.data)
            return
        if opcode is Opcode.PING or opcode is Opcode.PONG:
            pair.on_control(self.name, "ping" if opcode is Opcode.PING else "pong")
            return
        # A continuation frame.
        if not self.in_message:
            raise ProtocolError("continuation frame without a message to continue")
        self.in_message = not frame.fin
        self._check_fragment(frame, readable)
        pair.bytes[self.name] += wire_size
        self._collect(frame.data, readable)
        if frame.fin:
            parts = self.message_parts
            payload = b"".join(parts) if parts is not None else None
            self.message_parts = None
            pair.on_message(self.name, self.message_key or self.keys[Opcode.BINARY], payload)

    def _check_fragment(self, frame: Frame, readable: bool) -> None:
        """A fragmented text message's UTF-8, followed across its frames; given up on when a frame cannot
        be read (compressed and not inflated)."""
        decoder = self.utf8
        if decoder is None:
            return
        if not readable:
            self.utf8 = None
            return
        try:
            decoder.decode(frame.data, final=frame.fin)
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in a text message") from None
        if frame.fin:
            self.utf8 = None

    def _collect(self, data: bytes | bytearray, readable: bool) -> None:
        """Keep a fragmented text message's pieces for pairing, up to a size."""
        parts = self.message_parts
        if parts is None:
            return
        self.message_size += len(data)
        if readable and self.message_size <= MAX_PAIRED_MESSAGE:
            parts.append(bytes(data))
        else:
            self.message_parts = None
