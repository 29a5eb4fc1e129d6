"""The live figures as Prometheus metrics, so a team's Prometheus and Grafana can scrape every wsmon.

Nothing happens per event: a custom collector reads the State when a scrape arrives. The scrape is
served on prometheus_client's own thread while the session mutates the State on the event loop, so
the metrics are built on the loop (one short call between two events) and handed back: a scrape
never sees a half-applied event. The registry is private, so wsmon's metrics are all it serves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

import wsmon
from wsmon.core.closecodes import close_code_name
from wsmon.core.hostport import HostPort, HostPortError
from wsmon.core.limits import DEFAULT_LIMITS, Limit, live_value
from wsmon.core.redact import redact_url
from wsmon.core.sink import Sink
from wsmon.core.state import State

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the port Prometheus' registry of exporter ports gives to OpenTelemetry-style exporters
QUANTILES = (50, 95, 99)
MAX_REASONS = 20  # failure reasons are free text from logs: keep label cardinality bounded
LABEL_MAX = 120
SCRAPE_TIMEOUT_S = 5.0
_LEVELS = {"ok": 0.0, "warn": 1.0, "breach": 2.0}

StateGetter = Callable[[], State]


def parse_listen_address(text: str) -> tuple[str, int]:
    """'127.0.0.1:9464', ':9464', '9464' or '[::1]:9464' as (host, port); raises ValueError."""
    try:
        address = HostPort.parse(text, default_host=DEFAULT_HOST)
    except HostPortError as error:
        if error.part == "range":
            raise ValueError(f"port must be 0..65535, got {int(error.port_text)}") from None
        raise ValueError(f"expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}; got {text!r}") from None
    return address.host, address.port


def _label(text: str) -> str:
    # Target names are ours, but a name made from a URL must not carry its password into Grafana.
    return redact_url(text)[:LABEL_MAX] if "://" in text or "password" in text else text[:LABEL_MAX]


def _gauge(name: str, doc: str, value: float | None, labels: dict[str, str] | None = None) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), float(value))
    return family


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=float(value))


def metric_families(state: State, limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> list[Metric]:
    """Every metric wsmon exports, from one State. Pure: what a scrape returns, testable without HTTP."""
    out: list[Metric] = [
        InfoMetricFamily("wsmon", "wsmon version", value={"version": wsmon.__version__}),
        _counter("wsmon_events", "Events applied to the State", state.seq),
        _gauge("wsmon_session_duration_seconds", "Time from the first event to the last", state.duration_s),
    ]
    out += _connection_families(state)
    out += _delivery_families(state)
    out += _latency_families(state)
    out += _traffic_families(state)
    out += _process_families(state)
    out += _target_families(state)
    out += _limit_families(state, limits)
    out += _redis_families(state)
    out += _postgres_families(state)
    out += _http_families(state)
    return out


def _connection_families(state: State) -> Iterator[Metric]:
    yield _gauge(
        "wsmon_connections_open", "Client connections open now (wsmon's own excluded)", state.open_count
    )
    yield _gauge("wsmon_connections_peak", "Most client connections open at once", state.peak_open)
    yield _counter("wsmon_connections_opened", "Client connections opened", state.opened_total)
    failed = CounterMetricFamily("wsmon_connect_failures", "Connection attempts that failed", labels=["kind"])
    for kind, count in sorted(state.connect_fail_kinds.items()):
        failed.add_metric([kind], count)
    yield failed
    codes = CounterMetricFamily(
        "wsmon_close_codes", "Connections closed, by close code", labels=["code", "name"]
    )
    for code, count in sorted(state.close_codes.items()):
        codes.add_metric([str(code), close_code_name(code)], count)
    yield codes
    by = CounterMetricFamily("wsmon_closed_by", "Connections closed, by which side closed", labels=["by"])
    for side, count in sorted(state.closed_by.items()):
        by.add_metric([side], count)
    yield by


def _delivery_families(state: State) -> Iterator[Metric]:
    yield _counter(
        "wsmon_delivery_delivered", "Messages delivered (delivery latency samples)", state.delivered
    )
    failed = CounterMetricFamily("wsmon_delivery_failed", "Message deliveries that failed", labels=["reason"])
    reasons = sorted(state.failure_reasons.items(), key=lambda item: -item[1])
    for reason, count in reasons[:MAX_REASONS]:
        failed.add_metric([reason[:LABEL_MAX]], count)
    if len(reasons) > MAX_REASONS:
        failed.add_metric(["other"], sum(count for _, count in reasons[MAX_REASONS:]))
    yield failed


def _latency_families(state: State) -> Iterator[Metric]:
    window = GaugeMetricFamily(
        "wsmon_latency_ms", "Latency over the last minute, milliseconds", labels=["kind", "quantile"]
    )
    samples = CounterMetricFamily("wsmon_latency_samples", "Latency samples measured", labels=["kind"])
    for kind, dist in sorted(state.latency.items()):
        samples.add_metric([kind], dist.count)
        if not dist.window_t:
            continue
        values = dist.window_percentiles(state.last_mono, QUANTILES)
        for q, value in zip(QUANTILES, values, strict=True):
            if not math.isnan(value):
                window.add_metric([kind, f"{q / 100:g}"], value)
    yield window
    yield samples


def _traffic_families(state: State) -> Iterator[Metric]:
    messages = CounterMetricFamily(
        "wsmon_messages", "Client messages; in is client to server", labels=["direction"]
    )
    messages.add_metric(["in"], state.msgs_in)
    messages.add_metric(["out"], state.msgs_out)
    yield messages
    data = CounterMetricFamily(
        "wsmon_bytes", "Client message bytes; in is client to server", labels=["direction"]
    )
    data.add_metric(["in"], state.bytes_in)
    data.add_metric(["out"], state.bytes_out)
    yield data
    yield _gauge(
        "wsmon_messages_per_second", "Messages a second, mean of the last 5 s", state.messages_per_s()
    )
    yield _gauge("wsmon_messages_per_second_peak", "Most messages in one second", state.peak_msgs_per_s)


def _process_families(state: State) -> Iterator[Metric]:
    process = state.process
    if process is None:
        return
    yield _gauge("wsmon_process_cpu_percent", "Server CPU, percent of one core", process.cpu_percent)
    yield _gauge("wsmon_process_rss_bytes", "Server RSS summed over its process tree", process.rss_bytes)
    yield _gauge("wsmon_process_threads", "Threads in the server's process tree", process.threads)
    yield _gauge("wsmon_process_fds", "Open file descriptors in the server's process tree", process.fds)
    yield _gauge("wsmon_process_count", "Processes in the server's process tree", process.processes)


def _target_families(state: State) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "wsmon_target_up", "1 up, 0 down, NaN not heard from yet", labels=["target", "kind"]
    )
    downs = CounterMetricFamily("wsmon_target_down", "Times a target went down", labels=["target"])
    saturated = GaugeMetricFamily(
        "wsmon_tap_saturated", "1 while a tap cannot keep up (connect times not judged)", labels=["target"]
    )
    saturated_s = CounterMetricFamily(
        "wsmon_tap_saturated_seconds", "Seconds a tap could not keep up", labels=["target"]
    )
    for name, target in sorted(state.targets.items()):
        value = math.nan if target.up is None else 1.0 if target.up else 0.0
        up.add_metric([_label(name), target.kind], value)
        downs.add_metric([_label(name)], target.down_count)
        if target.kind == "tap":
            saturated.add_metric([_label(name)], 0.0 if target.saturated_since is None else 1.0)
            saturated_s.add_metric([_label(name)], target.saturated_s(state.last_mono))
    yield up
    yield downs
    yield saturated
    yield saturated_s


def _limit_families(state: State, limits: tuple[Limit, ...]) -> Iterator[Metric]:
    level = GaugeMetricFamily(
        "wsmon_limit_level", "0 ok, 1 warn, 2 breach, as the judge last decided", labels=["figure"]
    )
    value = GaugeMetricFamily("wsmon_limit_value", "A judged figure's live value", labels=["figure"])
    threshold = GaugeMetricFamily("wsmon_limit_threshold", "A figure's limit", labels=["figure"])
    for limit in limits:
        threshold.add_metric([limit.figure], limit.value)
        live = live_value(state, limit)
        if live is not None and math.isfinite(live):
            value.add_metric([limit.figure], live)
        if limit.kind != "capacity":  # capacity targets are reported, not judged
            active = state.alerts.get(limit.figure)
            level.add_metric([limit.figure], _LEVELS[active.level] if active is not None else 0.0)
    yield level
    yield value
    yield threshold
    yield _gauge("wsmon_alerts_active", "Figures in warn or breach now", len(state.alerts))
    yield _counter("wsmon_alerts_raised", "Alerts raised (warn or breach)", state.alerts_raised)


def _optional_gauges(
    prefix: str, target: str, rows: Iterable[tuple[str, str, float | None]]
) -> Iterator[Metric]:
    for name, doc, value in rows:
        if value is not None and math.isfinite(value):
            yield _gauge(f"{prefix}_{name}", doc, value, {"target": _label(target)})


def _redis_families(state: State) -> Iterator[Metric]:
    redis = state.redis
    if redis is None:
        return
    yield from _optional_gauges(
        "wsmon_redis",
        redis.target,
        (
            ("ping_ms", "PING round trip, milliseconds", redis.ping_ms),
            ("connected_clients", "Connected clients", redis.connected_clients),
            ("blocked_clients", "Clients blocked on a blocking call", redis.blocked_clients),
            ("used_memory_bytes", "Memory Redis uses", redis.used_memory),
            ("maxmemory_bytes", "maxmemory (0: no limit)", redis.maxmemory),
            ("ops_per_second", "Commands a second", redis.ops_per_sec),
            ("rejected_connections", "Connections rejected since Redis started", redis.rejected_connections),
            ("evicted_keys", "Keys evicted since Redis started", redis.evicted_keys),
            ("hit_ratio", "Keyspace hit ratio, 0..1", redis.hit_ratio),
        ),
    )


def _postgres_families(state: State) -> Iterator[Metric]:
    pg = state.postgres
    if pg is None:
        return
    yield from _optional_gauges(
        "wsmon_postgres",
        pg.target,
        (
            ("select1_ms", "SELECT 1 round trip, milliseconds", pg.select1_ms),
            ("connections", "Backends connected", pg.connections),
            ("max_connections", "max_connections", pg.max_connections),
            ("longest_query_seconds", "Longest running query", pg.longest_query_s),
            ("longest_xact_seconds", "Longest open transaction", pg.longest_xact_s),
            ("commits_per_second", "Commits a second", pg.commits_per_s),
            ("rollbacks_per_second", "Rollbacks a second", pg.rollbacks_per_s),
            # State's running total: a sample carries only the deadlocks new since the one before.
            ("deadlocks", "Deadlocks seen while wsmon watched", state.pg_deadlocks),
            ("notify_queue_usage", "LISTEN/NOTIFY queue usage, 0..1", pg.notify_queue_usage),
        ),
    )
    if pg.sessions:
        sessions = GaugeMetricFamily(
            "wsmon_postgres_sessions", "Backends by state", labels=["target", "state"]
        )
        for session_state, count in sorted(pg.sessions.items()):
            sessions.add_metric([_label(pg.target), session_state], count)
        yield sessions


def _http_families(state: State) -> Iterator[Metric]:
    if not state.http:
        return
    status = GaugeMetricFamily("wsmon_http_status", "Last HTTP status (0: no response)", labels=["target"])
    elapsed = GaugeMetricFamily(
        "wsmon_http_response_ms", "Last response time, milliseconds", labels=["target"]
    )
    for name, sample in sorted(state.http.items()):
        status.add_metric([_label(name)], sample.status or 0)
        if sample.ms is not None:
            elapsed.add_metric([_label(name)], sample.ms)
    yield status
    yield elapsed


class _StateCollector(Collector):
    def __init__(self, exporter: PrometheusExporter) -> None:
        self._exporter = exporter

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the figures exist only at scrape time

    def collect(self) -> Iterable[Metric]:
        return self._exporter.snapshot()


class PrometheusExporter(Sink):
    """A session sink serving ``/metrics`` on ``host:port`` (127.0.0.1 by default) while the session runs.

    Call ``start()`` before the session to fail early on a port in use; ``run()`` starts it otherwise.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        state_getter: StateGetter | None = None,
        limits: tuple[Limit, ...] = DEFAULT_LIMITS,
    ) -> None:
        if state_getter is None:
            raise ValueError("PrometheusExporter needs a state_getter, e.g. lambda: session.state")
        self.host = host
        self.port = port
        self.state_getter = state_getter
        self.limits = limits
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StateCollector(self))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens: the real port once started (``port=0`` picks a free one)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Bind and serve on a daemon thread; raises OSError when the address is unusable."""
        if self._server is None:
            self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.start()
        await self._stopped.wait()

    async def stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            # shutdown() waits for serve_forever's poll loop to notice: a thread, not the event loop.
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join, 2.0)

    def snapshot(self) -> list[Metric]:
        """The metrics now, built on the event loop's thread when a session loop runs."""
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return metric_families(self.state_getter(), self.limits)
        future: concurrent.futures.Future[list[Metric]] = concurrent.futures.Future()

        def build() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(metric_families(self.state_getter(), self.limits))
                except Exception as exc:
                    future.set_exception(exc)

        loop.call_soon_threadsafe(build)
        try:
            return future.result(timeout=SCRAPE_TIMEOUT_S)
        except TimeoutError:
            future.cancel()  # a loop this busy gets no extra work from a scrape that has given up
            raise


def _running_loop() -> Any:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
