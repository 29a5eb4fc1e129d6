"""Every client connection one tap worker carries: what ``tap_relay.TappedConnection`` reports to.

It numbers the connections (ids unique across workers and restarts), pairs acks when it sees every
connection (one worker) or hands the text messages on when it does not, flushes traffic each interval,
and turns what connections learn about the upstream into ``UpstreamNote``s: the session's one watcher
(``tap.py``) decides up and down. Everything goes to ``sink``: the worker's batches, or a test's list.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec

from wsmon.core import events as ev
from wsmon.sources.base import now
from wsmon.sources.delivery import Delivered, DeliveryMatcher, DeliveryResult, DeliveryRules
from wsmon.sources.tap_ipc import Note, SeenMessage, Sent, UpstreamNote
from wsmon.sources.tap_lag import LAG_TIMER_S, SaturationWatch
from wsmon.sources.tap_relay import ClientSide, TappedConnection

Sink = Callable[[Sent], None]


def upstream_address(url: str) -> tuple[str, int, bool]:
    """(host, port, TLS) of a ws:// or wss:// URL."""
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    return parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80), secure


def delivery_events(results: list[DeliveryResult], target: str) -> list[ev.Event]:
    """Each pairing result as an event: a delivery's latency, or its failure."""
    events: list[ev.Event] = []
    for result in results:
        wall, mono = now()
        if isinstance(result, Delivered):
            sample = ev.LatencySample(
                wall=wall,
                mono=mono,
                kind="delivery",
                ms=result.ms,
                target=target,
                ref=result.message_id,
                conn=result.conn,
                ack_conn="" if result.ack_conn == result.conn else result.ack_conn,
            )
            events.append(sample)
        else:
            failed = ev.DeliveryFailed(
                wall=wall,
                mono=mono,
                message_id=result.message_id,
                conn=result.conn,
                reason=result.reason,
                source="tap",
            )
            events.append(failed)
    return events


class TapRelays:
    """The connections of one worker: ``ClientSide`` protocols made by ``protocol()`` report here."""

    def __init__(
        self,
        sink: Sink,
        *,
        target: str,
        upstream_url: str,
        rules: DeliveryRules,
        delivery_timeout_s: float = 5.0,
        conn_prefix: str = "",
        pair_here: bool = True,
        ca_file: str = "",
    ) -> None:
        self._sink = sink
        self.target = target
        self.upstream_url = upstream_url
        self.rules = rules
        host, port, secure = upstream_address(upstream_url)
        self.upstream_host, self.upstream_port = host, port
        self.ssl_context: ssl.SSLContext | None = None
        if secure:
            self.ssl_context = ssl.create_default_context(cafile=ca_file or None)
        self.matcher = DeliveryMatcher(rules, timeout_s=delivery_timeout_s) if pair_here else None
        self._prefix = f"{target}:{conn_prefix}"
        self._conn_ids = itertools.count(1)
        self.pairs: set[TappedConnection] = set()
        self.saturation = SaturationWatch()  # fed the loop's lag by the worker (tap_lag.LoopLag)
        self._held: collections.deque[tuple[ev.LatencySample, float, float]] = collections.deque()

    def protocol(self) -> ClientSide:
        return ClientSide(self)

    def new_pair(self, client: asyncio.Transport) -> TappedConnection:
        pair = TappedConnection(self, f"{self._prefix}{next(self._conn_ids)}", client)
        self.pairs.add(pair)
        return pair

    def forget(self, pair: TappedConnection) -> None:
        self.pairs.discard(pair)

    def emit(self, event: ev.Event) -> None:
        self._sink(event)

    def message_seen(self, direction: str, conn: str, payload: bytes | bytearray | str, mono: float) -> None:
        """A text message: paired here, or sent on to the session's matcher."""
        if self.matcher is not None:
            results = self.matcher.on_message(direction, conn, payload, mono)
            if results:  # most messages complete nothing
                for event in delivery_events(results, self.target):
                    self._sink(event)
        else:
            raw = payload.encode() if isinstance(payload, str) else bytes(payload)
            self._sink(SeenMessage(direction, conn, raw, mono))

    def handshake_measured(self, sample: ev.LatencySample, started: float, ended: float) -> None:
        """A handshake's sample, held until the loop's timer has run after it (``release``)."""
        self.saturation.handshake(sample.mono, sample.ms)
        self._held.append((sample, started, ended))

    def release(self, everything: bool = False) -> None:
        """The held samples the timer has run after (or all), marked when the loop stalled in their span.
        Without a timer running (a test's relays) nothing is held back."""
        watch, held = self.saturation, self._held
        while held and (everything or held[0][2] <= watch.seen_until or watch.seen_until == -math.inf):
            sample, started, ended = held.popleft()
            if watch.stalled(started, ended):
                sample = msgspec.structs.replace(sample, stalled=True)
            self._sink(sample)

    def check_saturation(self, again: bool = False) -> None:
        """A ``TapSaturation`` when the verdict changed (or, with ``again``, while saturated: its lag now).
        Before the connect samples that follow it, so the session files those as measured saturated."""
        self.release()
        mono = time.monotonic()
        changed = self.saturation.update(mono)
        if changed is None and not (again and self.saturation.saturated):
            return
        wall, _ = now()
        lag = self.saturation.lag_p95(mono)
        if math.isnan(lag):  # no firing in the last second: the timer is that late at least, if it runs
            seen = self.saturation.seen_until
            lag = 0.0 if math.isinf(seen) else max(0.0, (mono - seen - LAG_TIMER_S) * 1000.0)
        saturated = self.saturation.saturated
        detail = f"event loop lag p95 {lag:.1f} ms over the last second"
        self._sink(
            ev.TapSaturation(
                wall=wall, mono=mono, target=self.target, saturated=saturated, lag_ms=lag, detail=detail
            )
        )

    def tick(self) -> None:
        """Each interval: every connection's traffic, and the acks that did not come in time."""
        self.check_saturation(again=True)
        for pair in list(self.pairs):
            pair.flush_traffic()
        if self.matcher is not None:
            for event in delivery_events(self.matcher.expire(time.monotonic()), self.target):
                self._sink(event)

    def abort_all(self, why: str) -> None:
        for pair in list(self.pairs):
            pair.abort(why)

    # --- what connections learn about the upstream: notes for the session's watcher ------------------

    def _note(self, what: Note, kind: str = "", error: str = "") -> None:
        self._sink(UpstreamNote(what, kind, error))

    def upstream_reached(self) -> None:
        self._note("reached")

    def upstream_unreachable(self, kind: str, error: str) -> None:
        self._note("unreachable", kind, error)

    def upstream_reset(self) -> None:
        self._note("reset")

    def watch_upstream(self, grace: float) -> None:
        """The server dropped a connection without a close frame: the session checks it is still there."""
        del grace  # the session's watcher waits its own grace
        self._note("dropped")
