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

Where things live: ``config`` (what a probe is asked to do, the first exchange, secrets kept out of
texts), ``failures`` (kinds, hints, close codes), ``connection`` and ``thread`` (the plumbing and the
probes' own event loop), ``source`` (the source itself).
"""

from wsmon.sources.probe.config import (
    DEFAULT_RECONNECT_S,
    ExchangeStep,
    ProbeConfig,
    fill,
    reply_matches,
    scrub_secrets,
    secret_words,
    tls_context,
)
from wsmon.sources.probe.failures import (
    HandshakeTimeout,
    StepFailed,
    classify_failure,
    close_details,
    hint_for,
)
from wsmon.sources.probe.source import ProbeSource
from wsmon.sources.probe.thread import LoopThread

__all__ = [
    "DEFAULT_RECONNECT_S",
    "ExchangeStep",
    "HandshakeTimeout",
    "LoopThread",
    "ProbeConfig",
    "ProbeSource",
    "StepFailed",
    "classify_failure",
    "close_details",
    "fill",
    "hint_for",
    "reply_matches",
    "scrub_secrets",
    "secret_words",
    "tls_context",
]
