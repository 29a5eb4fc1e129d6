"""Outputs beside the dashboard: alert delivery (a command, a webhook) and the Prometheus exporter.

Each is a session sink (``wsmon.core.sink.Sink``): it reads events or the State, never a source.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from wsmon.core.events import Event, LogLine
from wsmon.core.limits import Limit
from wsmon.core.sink import Sink
from wsmon.core.state import State
from wsmon.outputs.alerts import AlertCommandSink, AlertWebhookSink, alert_payload
from wsmon.outputs.prometheus import PrometheusExporter, parse_listen_address

__all__ = [
    "AlertCommandSink",
    "AlertWebhookSink",
    "PrometheusExporter",
    "alert_payload",
    "outputs_for",
    "parse_listen_address",
]


class _SessionLike(Protocol):
    title: str
    limits: tuple[Limit, ...]

    @property
    def state(self) -> State: ...

    def emit(self, event: Event) -> None: ...


def outputs_for(
    session: _SessionLike,
    *,
    alert_cmd: str | None = None,
    alert_webhook: str | None = None,
    prometheus: str | None = None,
) -> list[Sink]:
    """The sinks the flags ask for, ready for ``session.sinks``; the exporter is already listening.

    Raises ValueError for a malformed HOST:PORT and OSError when the port cannot be bound, so the
    command can exit with a usage error before the session starts.
    """

    def report(text: str) -> None:
        # A delivery failure is a log line of the session: on the dashboard, in the recording.
        session.emit(
            LogLine(wall=time.time(), mono=time.monotonic(), level="warn", text=text, source="wsmon")
        )

    common: dict[str, Any] = {"title": session.title, "limits": session.limits, "on_error": report}
    sinks: list[Sink] = []
    if alert_cmd:
        sinks.append(AlertCommandSink(alert_cmd, **common))
    if alert_webhook:
        sinks.append(AlertWebhookSink(alert_webhook, **common))
    if prometheus:
        host, port = parse_listen_address(prometheus)
        exporter = PrometheusExporter(host, port, state_getter=lambda: session.state, limits=session.limits)
        exporter.start()
        sinks.append(exporter)
    return sinks
