"""The tap: a transparent pass-through in front of the server that reads the frames as they pass.

Clients connect to the tap's listening address; for each one the tap opens a TCP (or TLS, for wss://)
connection to the upstream server and forwards exactly the bytes it reads, both ways, the moment it
reads them: no re-framing, no re-compression. Only then is a copy of the bytes fed to the wire parser
(``wire.py``, sans-I/O: the HTTP upgrade, then the frames). From what it observes come connections,
messages and bytes per interval, close frames with the side that sent first, abnormal ends, rejected
handshakes, and delivery figures (see ``delivery.py``).

This module is the source: the listener, the upstream's health, the delivery results. Each client's
connection (forwarding, and the parser's observer) is in ``tap_relay.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import CheckResult, Emit, Source, StopOrder, TargetStatus, now, retry_backoff
from wsmon.sources.delivery import Delivered, DeliveryMatcher, DeliveryResult, DeliveryRules
from wsmon.sources.probe import classify_failure
from wsmon.sources.tap_relay import CONNECT_TIMEOUT_S, ClientSide, TappedConnection

HOLD_CHECK_S = 0.1  # a live server keeps a fresh connection open at least this long


def _upstream_address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    return parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80), secure


class _UpstreamStatus(TargetStatus):
    """The upstream's up/down. Its news differ from a polled target's both ways: down again when the
    reason's words change within one kind (dropping, then a different error), and not at all when an
    exited server refuses (the exit stays the outage's cause)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.down_error = ""

    def mark_down(self, emit: Emit, error: str, kind: str) -> None:
        if self.up is False:
            if self.down_kind == "exited" and kind in ("refused", "timeout"):
                return
            if (self.down_kind, self.down_error) == (kind, error):
                return
        self.up, self.down_kind, self.down_error = False, kind, error
        wall, mono = now()
        emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=error, kind=kind))


class TapSource(Source):
    """One ``--tap LISTEN=UPSTREAM``: listens, forwards, and emits what it sees; run() never raises.

    Two things report on the one target: the listener (down while it cannot listen, up once it does,
    unless wsmon starts the server itself) and the upstream (``_UpstreamStatus``: up when it holds a
    connection, down when it refuses, drops or exits). The listener's events are one-offs and do not
    touch the upstream's state, so the upstream's first answer is news even after "listening"."""

    stop_order = StopOrder.WATCHERS  # stopped before a server wsmon runs, so its exit is no outage
    stop_ends_run = True  # stop() ends run(): the listener closes and every tapped connection is cut

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
        super().__init__(target)
        self.status: _UpstreamStatus = _UpstreamStatus(target)
        self.interval = interval
        host, port, secure = _upstream_address(upstream_url)
        self.upstream_host, self.upstream_port = host, port
        if secure and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self.ssl_context = ssl_context if secure else None
        self.rules = rules if rules is not None else DeliveryRules()
        self.matcher = DeliveryMatcher(self.rules, timeout_s=delivery_timeout_s)
        self.listening = asyncio.Event()
        self._emit: Emit = _drop
        self._conn_ids = itertools.count(1)
        self._pairs: set[TappedConnection] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
        if server is None:
            return
        try:
            self.watch_upstream()
            while not await self._pause(self.interval):
                self._tick()
        finally:
            server.close()
            if self._watcher is not None:
                self._watcher.cancel()
            for pair in list(self._pairs):
                pair.abort("wsmon stopped")

    async def stop(self) -> None:
        """End run() as a cancellation would: the listener closes and every connection through the tap
        is cut."""
        self._stopping.set()

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if stop() is called: True when it was."""
        if not self._stopping.is_set():
            try:
                async with asyncio.timeout(seconds):
                    await self._stopping.wait()
            except TimeoutError:
                return False
        return True

    async def check(self) -> CheckResult:
        """Whether the upstream holds a fresh TCP connection, as the tap's own watcher checks it."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
            connected = time.monotonic()
            try:
                held = await _holds(reader)
            finally:
                writer.close()  # also when cancelled: a server may wait long for a request otherwise
        except Exception as exc:
            kind, _status, error = classify_failure(exc)
            return CheckResult(ok=False, error=self._upstream_error(error), kind=kind)
        if not held:
            error = self._upstream_error("accepts connections but drops them at once")
            return CheckResult(ok=False, error=error, kind="error")
        return CheckResult(ok=True, latency_ms=(connected - started) * 1000.0)

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> asyncio.Server | None:
        """The listening server; None when stop() came first."""
        backoff = retry_backoff(self.interval)
        while True:
            try:
                server = await loop.create_server(
                    lambda: ClientSide(self), self.listen_host, self.port, reuse_address=True
                )
            except OSError as error:
                wall, mono = now()
                text = f"cannot listen on {self.listen_host}:{self.port}: {error.strerror or error}"
                self._emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=text, kind="error"))
                if await self._pause(backoff.next()):
                    return None
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
        self.emit_delivery_results(self.matcher.expire(time.monotonic()))

    def emit_delivery_results(self, results: list[DeliveryResult]) -> None:
        """Each pairing result as an event: a delivery's latency, or its failure."""
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
                        conn=result.conn,
                        ack_conn="" if result.ack_conn == result.conn else result.ack_conn,
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
        self.status.mark_up(self._emit, f"upstream {redact_url(self.upstream_url)} reachable")

    def upstream_unreachable(self, kind: str, error: str) -> None:
        self._upstream_down(kind, error)
        self.watch_upstream()

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
        self.watch_upstream(grace)

    def watch_upstream(self, grace: float = 0.0) -> None:
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
            result = await self.check()
            if result.ok:
                self.upstream_reached()
                return
            self._upstream_down(result.kind, result.error)
            await asyncio.sleep(backoff.next())

    def _upstream_error(self, error: str) -> str:
        if error.startswith("upstream "):
            return error
        return f"upstream {redact_url(self.upstream_url)}: {error}"

    def _upstream_down(self, kind: str, error: str) -> None:
        """Down once per outage; again only when the reason changes (e.g. dropping, then refusing)."""
        self.status.mark_down(self._emit, self._upstream_error(error), kind)

    # --- connections -------------------------------------------------------------------------------

    def new_pair(self, client: asyncio.Transport) -> TappedConnection:
        pair = TappedConnection(self, f"{self.target}:{next(self._conn_ids)}", client)
        self._pairs.add(pair)
        return pair

    def forget(self, pair: TappedConnection) -> None:
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
