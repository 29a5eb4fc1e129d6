"""One client's connection through the tap: forwarding both ways, and what the wire parser saw of it.

It runs in a tap worker process (``tap_worker.py``) and reports to its ``TapRelays`` (``tap_relays.py``).

Bytes go out first, the moment they are read; only then does the parser (``wire/``) get a copy. Its
observations become events here: the connection opened (or refused), traffic per interval, close frames
with the side that sent first, abnormal ends, and text messages handed on for delivery pairing. A parser
that fails stops parsing; it never stops forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from typing import TYPE_CHECKING, Literal, cast

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import now
from wsmon.sources.probe import classify_failure
from wsmon.sources.wire import (
    SENDER,
    CloseFrame,
    ControlFrame,
    DataFrame,
    Direction,
    Message,
    ParseError,
    ParserFull,
    RequestHead,
    ResponseHead,
    WireParser,
)

if TYPE_CHECKING:
    from wsmon.sources.tap_relays import TapRelays

CONNECT_TIMEOUT_S = 5.0
MAX_EARLY_BYTES = 256 * 1024  # client bytes held while the upstream connection opens
UPSTREAM_CHECK_GRACE_S = 0.5  # after an abnormal end, before checking the upstream is still there
HALF_OPEN_TIMEOUT_S = 30.0  # one side ended and the other never did: close both after this
_SO_LINGER_RESET = struct.pack("ii", 1, 0)
# The per-interval counts' keys ("text_in" …), made once rather than formatted per message.
_TYPE_KEYS: dict[tuple[str, str], str] = {
    (kind, direction): f"{kind}_{direction}" for kind in ("text", "binary") for direction in ("in", "out")
}


class ClientSide(asyncio.Protocol):
    def __init__(self, tap: TapRelays) -> None:
        self.tap = tap
        self.pair: TappedConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pair = self.tap.new_pair(_stream(transport))
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
    def __init__(self, pair: TappedConnection, tls: bool) -> None:
        self.pair = pair
        self.tls = tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pair.upstream_made(_stream(transport))

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


def _stream(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """A stream protocol's transport. Not an isinstance check: uvloop's TCP and TLS transports have every
    method of ``asyncio.Transport`` without deriving from it, and the check dropped every connection."""
    return cast(asyncio.Transport, transport)


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


class TappedConnection:
    """One client's connection through the tap: both transports, the wire parser, what was seen. It is
    the parser's observer (``wire.WireObserver``): each observation becomes events or counts here."""

    def __init__(self, tap: TapRelays, conn_id: str, client: asyncio.Transport) -> None:
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
        # The handshake, as parsed. Timed from when the request's first byte went upstream (not from
        # when it was read: the tap's own wait for its upstream connection is not the server's time).
        self.request_mono: float | None = None
        self.path = ""
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
        self.wire = WireParser(self, payloads=tap.rules.enabled)

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
        self._emit_failed(kind, text, status)
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
            if self.request_mono is None:
                self.request_mono = time.monotonic()
        if self.client_ended:
            self._end_writing(transport)

    def from_client(self, data: bytes) -> None:
        upstream = self.upstream
        forwarded = False
        if upstream is not None:
            if not self.upstream_gone:
                upstream.write(data)
                forwarded = True
        else:
            self.early.append(data)
            self.early_bytes += len(data)
            if self.early_bytes > MAX_EARLY_BYTES:
                self.client.pause_reading()
        self.mono = time.monotonic()
        if forwarded and self.request_mono is None:
            self.request_mono = self.mono
        self.wire.from_client(data)

    def from_upstream(self, data: bytes) -> None:
        if not self.client_gone:
            self.client.write(data)
        self.mono = time.monotonic()
        self.wire.from_server(data)

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
        elif self.wire.upgrade and self.wire.status is None and not self.upstream_failed:
            side, how = self.first_tcp_end or ("client", "closed")
            who = "the upstream" if side == "server" else "the client"
            self._emit_failed("error", f"{who} {how} the connection during the handshake")
        if self.first_close is None and self.first_tcp_end is not None and self.first_tcp_end[0] == "server":
            self.tap.watch_upstream(UPSTREAM_CHECK_GRACE_S)  # the server dropped a connection: still there?

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

    # --- what the parser observed (the WireObserver interface) --------------------------------------

    def on_request(self, request: RequestHead) -> None:
        path = request.path
        self.path = redact_url("ws://h" + path).removeprefix("ws://h") if "?" in path else path

    def on_response(self, response: ResponseHead) -> None:
        if not response.accepted:
            error = f"handshake rejected: HTTP {response.status} {response.reason}".rstrip()
            self._emit_failed("rejected", error, response.status)
            return
        self.opened_mono = self.mono
        started = self.request_mono if self.request_mono is not None else self.mono
        handshake_ms = (self.mono - started) * 1000.0
        wall, mono = now()
        tap = self.tap
        sample = ev.LatencySample(wall=wall, mono=mono, kind="connect", ms=handshake_ms, target=tap.target)
        tap.handshake_measured(sample, started, self.mono)
        tap.emit(
            ev.ConnectionOpened(
                wall=wall,
                mono=mono,
                conn=self.conn_id,
                peer=self.peer,
                path=self.path,
                handshake_ms=handshake_ms,
                source="tap",
                subprotocol=response.subprotocol,
                extensions=response.extensions,
                # What the server sees as this connection's peer: lets the reducer match the
                # server's own log line for it, so the connection is counted once.
                local=_host_port(self.upstream.get_extra_info("sockname")) if self.upstream else "",
            )
        )
        self.flushed_mono = self.mono

    def on_data_frame(self, frame: DataFrame) -> None:
        self.bytes[frame.direction] += frame.size

    def on_message(self, message: Message) -> None:
        # A fragmented message: its bytes were counted frame by frame (on_data_frame), none added here.
        self.on_frame_message(message.direction, message.kind, 0, message.payload)

    def on_frame_message(
        self,
        direction: Direction,
        kind: Literal["text", "binary"],
        size: int,
        payload: bytes | bytearray | None,
    ) -> None:
        """``on_data_frame`` then ``on_message`` in one: most messages come in one frame."""
        self.bytes[direction] += size
        self.msgs[direction] += 1
        key = _TYPE_KEYS[kind, direction]
        by_type = self.by_type
        by_type[key] = by_type.get(key, 0) + 1
        if payload is not None:
            self.tap.message_seen(direction, self.conn_id, payload, self.mono)

    def on_control(self, control: ControlFrame) -> None:
        key = f"{control.kind}_{control.direction}"
        self.by_type[key] = self.by_type.get(key, 0) + 1

    def on_close(self, close: CloseFrame) -> None:
        side = SENDER[close.direction]
        if self.first_close is not None:
            first_side, _code, reason = self.first_close
            if first_side != side:
                self.answered = True
                if self.illegal_close and close.sent_code is not None:
                    # The first close was a protocol error; record what the other side answered it with
                    # (typically 1002), still as the fault of the side that sent the illegal frame.
                    answer = close.sent_code
                    self.first_close = (first_side, answer, f"{reason}; {side} answered {answer}")
            return
        self.first_close = (side, close.code, close.reason)
        self.illegal_close = close.illegal
        wall, mono = now()
        self.tap.emit(ev.ConnectionClosing(wall=wall, mono=mono, conn=self.conn_id, by=side))

    def on_parse_error(self, error: ParseError) -> None:
        wall, mono = now()
        what = error.description
        text = f"{self.conn_id}: stopped reading {error.direction} frames (still forwarding): {what}"
        self.tap.emit(ev.LogLine(wall=wall, mono=mono, level="warn", text=text, source="tap"))

    def on_parser_full(self, full: ParserFull) -> None:
        """A parser reached its cap: parsing of this connection stops, forwarding goes on."""
        wall, mono = now()
        text = f"{self.conn_id}: stopped parsing this connection (still forwarding): {full.why}"
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
