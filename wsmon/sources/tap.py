"""The tap: a transparent pass-through in front of the server that reads the frames as they pass.

Clients connect to the tap's listening address; for each one the tap opens a TCP (or TLS, for wss://)
connection to the upstream server and forwards exactly the bytes it reads, both ways, the moment it
reads them: no re-framing, no re-compression. Only then is a copy of the bytes fed to the wire parser
(``wire/``, sans-I/O: the HTTP upgrade, then the frames). From what it observes come connections,
messages and bytes per interval, close frames with the side that sent first, abnormal ends, rejected
handshakes, and delivery figures (see ``delivery.py``).

The forwarding and the parsing run in worker processes (``tap_worker.py``; ``tap_relays.py`` and
``tap_relay.py`` inside them), so the session's process never touches a client's byte: this module is
the source in the session. It opens the listening sockets (the workers inherit them and all accept on
them), starts and restarts the workers (``tap_pool.py``), passes their events on, watches the
upstream's health from what they note, and pairs acks itself when several workers share the
connections. A worker that dies is an outage of the tap: its connections are closed as cut by wsmon.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections.abc import Sequence

import msgspec

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import CheckResult, Emit, Source, StopOrder, TargetStatus, now, retry_backoff
from wsmon.sources.delivery import DeliveryMatcher, DeliveryRules
from wsmon.sources.probe import classify_failure
from wsmon.sources.tap_ipc import LISTEN_BACKLOG, Item, SeenMessage, UpstreamNote, WorkerConfig
from wsmon.sources.tap_pool import STOP_WAIT_S, TapWorker, uvloop_wanted
from wsmon.sources.tap_relay import CONNECT_TIMEOUT_S, UPSTREAM_CHECK_GRACE_S
from wsmon.sources.tap_relays import delivery_events, upstream_address

HOLD_CHECK_S = 0.1  # a live server keeps a fresh connection open at least this long
STEADY_S = 5.0  # a worker that lived this long is restarted at once when it dies; sooner, after a backoff


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
    """One ``--tap LISTEN=UPSTREAM``: listens, forwards (in its workers), and emits what it sees; run()
    never raises.

    Two things report on the one target: the listener (down while it cannot listen, up once it does,
    unless wsmon starts the server itself) and the upstream (``_UpstreamStatus``: up when it holds a
    connection, down when it refuses, drops or exits). The listener's events are one-offs and do not
    touch the upstream's state, so the upstream's first answer is news even after "listening". A
    worker's death is the target's outage too, until the restarted worker's first check holds."""

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
        ca_file: str = "",
        rules: DeliveryRules | None = None,
        delivery_timeout_s: float = 5.0,
        covers: Sequence[str] = (),
        starting: bool = False,
        workers: int = 1,
        uvloop: bool | None = None,
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
        self.upstream_host, self.upstream_port, _secure = upstream_address(upstream_url)
        self.rules = rules if rules is not None else DeliveryRules()
        self.workers = max(1, workers)
        # One worker sees every connection and pairs acks itself; with several, an ack may reach another
        # worker than its message, so the messages come here and the session pairs them.
        self.matcher = DeliveryMatcher(self.rules, timeout_s=delivery_timeout_s) if self.workers > 1 else None
        self._config = WorkerConfig(
            worker=0,
            generation=0,
            listen_fds=[],
            ipc_fd=-1,
            target=target,
            upstream_url=upstream_url,
            rules=self.rules,
            delivery_timeout_s=delivery_timeout_s,
            interval=interval,
            pair_here=self.matcher is None,
            uvloop=uvloop_wanted(uvloop),
            ca_file=ca_file,
        )
        self.listening = asyncio.Event()
        self._emit: Emit = _drop
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._closing = False  # the workers are being stopped: their ends are no deaths
        self.running: dict[int, TapWorker] = {}  # by worker number
        # Each worker's open connections (id: when opened), to close them as cut when it dies.
        self._open: dict[int, dict[str, float]] = {}
        # The workers that cannot keep up now (by number: their loop lag): the tap is saturated while any is.
        self._saturated: dict[int, float] = {}

    @property
    def address(self) -> str:
        listen = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{listen}:{self.port} → {redact_url(self.upstream_url)}"

    @property
    def uses_uvloop(self) -> bool:
        return self._config.uvloop

    async def run(self, emit: Emit) -> None:
        self._emit = emit
        wall, mono = now()
        emit(self._added(wall, mono))
        sockets = await self._listen()
        if sockets is None:
            return
        supervisors = [asyncio.create_task(self._supervise(n, sockets)) for n in range(self.workers)]
        try:
            self.watch_upstream()
            while not await self._pause(self.interval):
                self._tick()
        finally:
            for sock in sockets:  # the workers hold their own copies until they exit
                sock.close()
            if self._watcher is not None:
                self._watcher.cancel()
            await self._stop_workers(supervisors)

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

    async def _listen(self) -> list[socket.socket] | None:
        """The listening sockets the workers will share; None when stop() came first."""
        backoff = retry_backoff(self.interval)
        while True:
            try:
                sockets = await asyncio.get_running_loop().run_in_executor(
                    None, _listening_sockets, self.listen_host, self.port
                )
            except OSError as error:
                wall, mono = now()
                text = f"cannot listen on {self.listen_host}:{self.port}: {error.strerror or error}"
                self._emit(ev.TargetDown(wall=wall, mono=mono, target=self.target, error=text, kind="error"))
                if await self._pause(backoff.next()):
                    return None
                continue
            asked, self.port = self.port, sockets[0].getsockname()[1]
            self.listening.set()
            wall, mono = now()
            if asked != self.port:  # port 0: show the port it got
                self._emit(self._added(wall, mono))
            if not self.starting:
                detail = f"listening on {self.address}"
                self._emit(ev.TargetUp(wall=wall, mono=mono, target=self.target, detail=detail))
            return sockets

    def _added(self, wall: float, mono: float) -> ev.TargetAdded:
        return ev.TargetAdded(
            wall=wall, mono=mono, target=self.target, kind="tap", address=self.address, covers=self.covers
        )

    def _tick(self) -> None:
        if self.matcher is not None:
            self._emit_all(delivery_events(self.matcher.expire(time.monotonic()), self.target))

    def _emit_all(self, events: list[ev.Event]) -> None:
        for event in events:
            self._emit(event)

    # --- the workers -------------------------------------------------------------------------------

    async def _supervise(self, number: int, sockets: list[socket.socket]) -> None:
        """Runs worker ``number`` for the session, restarting it whenever it dies."""
        backoff = retry_backoff(self.interval)
        fds = [sock.fileno() for sock in sockets]
        generation = 0
        while not self._closing:
            worker = TapWorker(msgspec.structs.replace(self._config, worker=number, generation=generation))
            started = time.monotonic()
            try:
                await worker.start(fds)
            except OSError as error:
                how = f"could not start: {error.strerror or error}"
            else:
                self.running[number] = worker
                self._open[number] = {}
                try:
                    how = await worker.run(functools.partial(self._batch, number, generation))
                finally:
                    worker.kill()  # cancelled, or gone on its own: never left behind
                    del self.running[number]
            if self._closing:
                return
            self._worker_died(number, how)
            generation += 1
            if time.monotonic() - started >= STEADY_S:
                backoff.reset()
                continue
            await asyncio.sleep(backoff.next())

    def _batch(self, number: int, generation: int, items: list[Item]) -> None:
        opened = self._open[number]
        emit = self._emit
        for item in items:
            if isinstance(item, SeenMessage):
                assert self.matcher is not None  # workers send messages only when the session pairs
                results = self.matcher.on_message(item.direction, item.conn, item.payload, item.mono)
                self._emit_all(delivery_events(results, self.target))
            elif isinstance(item, UpstreamNote):
                self._note(item, generation)
            elif isinstance(item, ev.TapSaturation):
                self._saturation(number, item)
            else:
                if isinstance(item, ev.ConnectionOpened):
                    opened[item.conn] = item.mono
                elif isinstance(item, ev.ConnectionClosed):
                    opened.pop(item.conn, None)
                emit(item)

    def _note(self, note: UpstreamNote, generation: int) -> None:
        match note.what:
            case "ready":
                if generation:  # a restarted worker: the outage ends when the upstream is seen again
                    self._restart_watch()
            case "reached":
                self.upstream_reached()
            case "unreachable":
                self.upstream_unreachable(note.kind, note.error)
            case "reset":
                self.upstream_reset()
            case "dropped":
                self.watch_upstream(UPSTREAM_CHECK_GRACE_S)

    def _saturation(self, number: int, note: ev.TapSaturation) -> None:
        """One worker's verdict; the tap's is saturated while any worker is, recovered once none is."""
        was = bool(self._saturated)
        if note.saturated:
            self._saturated[number] = note.lag_ms
        else:
            self._saturated.pop(number, None)
        if self._saturated:
            lag = max(self._saturated.values())
            self._emit(msgspec.structs.replace(note, saturated=True, lag_ms=lag))
        elif was:
            self._emit(note)

    def _worker_died(self, number: int, how: str) -> None:
        """The worker's connections are gone with it: closed, as cut by wsmon; the tap is down."""
        if self._saturated.pop(number, None) is not None and not self._saturated:
            wall, mono = now()
            gone, target = f"tap worker {number} {how}", self.target
            self._emit(ev.TapSaturation(wall=wall, mono=mono, target=target, saturated=False, detail=gone))
        error = f"tap worker {number} {how}; restarting it"
        self.status.mark_down(self._emit, error, "error")
        reason = f"cut by wsmon: tap worker {number} {how}"
        for conn, opened in self._open.pop(number, {}).items():
            wall, mono = now()
            self._emit(
                ev.ConnectionClosed(
                    wall=wall,
                    mono=mono,
                    conn=conn,
                    code=1006,
                    reason=reason,
                    closed_by="wsmon",
                    duration_s=max(0.0, mono - opened),
                    source="tap",
                )
            )

    async def _stop_workers(self, supervisors: list[asyncio.Task[None]]) -> None:
        """Each worker cuts its connections and sends their closes; one that does not in time is killed."""
        self._closing = True
        for worker in list(self.running.values()):
            worker.stop()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WAIT_S):
                    await asyncio.gather(*supervisors, return_exceptions=True)
        finally:  # also when the session cancels run() before the workers are done: none is left behind
            for worker in list(self.running.values()):
                worker.kill()
            for task in supervisors:
                task.cancel()

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


def _listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound, listening sockets for ``host`` (every address it resolves to, on one port)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # every address on the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
