"""The Prometheus exporter, scraped over real HTTP and read back with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import math
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from wsmon.core import events as ev
from wsmon.core.limits import with_overrides
from wsmon.core.reducer import fold
from wsmon.core.sink import Sink
from wsmon.core.state import State
from wsmon.outputs.prometheus import PrometheusExporter, parse_listen_address
from wsmon.session import Session
from wsmon.sources.base import CheckResult, Emit, Source, now

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample by (name, labels), as Prometheus would store it."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples[(metric, frozenset(labels.items()))]


def scripted_run() -> list[ev.Event]:
    """A short run: targets, four connections (one abnormal close), traffic, deliveries, resources."""
    wall, mono = now()
    events: list[ev.Event] = [
        ev.TargetAdded(
            wall=wall, mono=mono, target="websocket", kind="websocket", address="ws://127.0.0.1:8080/"
        ),
        ev.TargetAdded(wall=wall, mono=mono, target="redis", kind="redis", address="redis://127.0.0.1:6379"),
        ev.TargetAdded(wall=wall, mono=mono, target="postgres", kind="postgres"),
        ev.TargetUp(wall=wall, mono=mono, target="websocket"),
        ev.TargetDown(wall=wall, mono=mono, target="redis", error="connection refused", kind="refused"),
    ]
    events += [ev.ConnectionOpened(wall=wall, mono=mono, conn=f"c{i}", handshake_ms=5.0) for i in range(4)]
    events += [
        ev.ConnectionClosed(wall=wall, mono=mono, conn="c0", code=1006, closed_by="neither"),
        ev.ConnectionClosed(wall=wall, mono=mono, conn="c1", code=1000, closed_by="client"),
        ev.ConnectFailed(wall=wall, mono=mono, target="websocket", kind="refused"),
        ev.Traffic(wall=wall, mono=mono, conn="c2", msgs_in=7, msgs_out=5, bytes_in=700, bytes_out=500),
        ev.DeliveryFailed(wall=wall, mono=mono, message_id="msg_1", reason="Connection not open"),
        ev.ProcessSample(
            wall=wall, mono=mono, target="process", pid=42, cpu_percent=12.5, rss_bytes=64 << 20
        ),
        ev.RedisSample(wall=wall, mono=mono, target="redis", ping_ms=0.4, connected_clients=3),
        ev.PostgresSample(
            wall=wall, mono=mono, target="postgres", select1_ms=1.5, sessions={"active": 2, "idle": 5}
        ),
    ]
    events += [ev.LatencySample(wall=wall, mono=mono, kind="delivery", ms=float(ms)) for ms in range(1, 101)]
    return events


class JudgedSignal(asyncio.Event, Sink):
    """A sink set by the judge's first alert; the run is emitted at once, so one tick judges all of it."""

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.AlertRaised):
            self.set()


class ScriptedSourceThatScrapes(Source):
    """Emits the scripted run, waits for the judge's alert, then scrapes the exporter mid-session."""

    def __init__(self, session: Session, exporter: PrometheusExporter) -> None:
        super().__init__()
        self.session = session
        self.exporter = exporter
        self.scraped = ""
        self.content_type = ""
        self.judged = JudgedSignal()

    async def run(self, emit: Emit) -> None:
        for event in scripted_run():
            emit(event)
        await self.judged.wait()  # scraping before the judge's tick would find no alerts
        host, port = self.exporter.address
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.get(f"http://{host}:{port}/metrics", timeout=5)
        self.scraped = response.text
        self.content_type = response.headers["content-type"]
        self.session.stop()

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


async def test_a_scrape_during_a_session_shows_the_live_figures() -> None:
    # A handful of attempts is too few for the default ratio judge; this test is about the exporter,
    # so it judges them on 5 attempts, and delivery against 99.99 % so that 1 failure in 101 is sure.
    limits = with_overrides({"ratio_min_events": 5, "delivery_success": 99.99})
    session = Session([], title="scrape", duration=20, limits=limits)
    exporter = PrometheusExporter("127.0.0.1", 0, state_getter=lambda: session.state, limits=session.limits)
    exporter.start()
    host, port = exporter.address
    source = ScriptedSourceThatScrapes(session, exporter)
    session.sinks += [exporter, source.judged]
    session.sources.append(source)
    await session.run()

    assert source.content_type.startswith("text/plain")
    samples = parse(source.scraped)
    assert value(samples, "wsmon_connections_open") == 2
    assert value(samples, "wsmon_connections_peak") == 4
    assert value(samples, "wsmon_connections_opened_total") == 4
    assert value(samples, "wsmon_connect_failures_total", kind="refused") == 1
    assert value(samples, "wsmon_close_codes_total", code="1006", name="Abnormal Closure") == 1
    assert value(samples, "wsmon_close_codes_total", code="1000", name="Normal Closure") == 1
    assert value(samples, "wsmon_delivery_delivered_total") == 100
    assert value(samples, "wsmon_delivery_failed_total", reason="Connection not open") == 1
    assert value(samples, "wsmon_latency_ms", kind="delivery", quantile="0.5") == 50
    assert value(samples, "wsmon_latency_ms", kind="delivery", quantile="0.95") == 95
    assert value(samples, "wsmon_latency_ms", kind="delivery", quantile="0.99") == 99
    assert value(samples, "wsmon_messages_total", direction="in") == 7
    assert value(samples, "wsmon_messages_total", direction="out") == 5
    assert value(samples, "wsmon_process_cpu_percent") == 12.5
    assert value(samples, "wsmon_process_rss_bytes") == 64 << 20
    assert value(samples, "wsmon_target_up", target="websocket", kind="websocket") == 1
    assert value(samples, "wsmon_target_up", target="redis", kind="redis") == 0
    assert math.isnan(value(samples, "wsmon_target_up", target="postgres", kind="postgres"))
    assert value(samples, "wsmon_redis_ping_ms", target="redis") == 0.4
    assert value(samples, "wsmon_postgres_sessions", target="postgres", state="idle") == 5
    # p95 of 95 ms against < 50 ms, 1 failed delivery in 101 against > 99.99 %, 1 refusal in 5 connects
    # against > 99 %: three breaches.
    assert value(samples, "wsmon_limit_level", figure="delivery_ms") == 2
    assert value(samples, "wsmon_limit_value", figure="delivery_ms") == 95
    assert value(samples, "wsmon_limit_level", figure="delivery_success") == 2
    assert value(samples, "wsmon_limit_level", figure="connect_ms") == 0
    assert value(samples, "wsmon_limit_threshold", figure="delivery_ms") == 50
    assert value(samples, "wsmon_limit_level", figure="connect_success") == 2
    assert value(samples, "wsmon_limit_value", figure="connect_success") == 80
    assert value(samples, "wsmon_alerts_active") == 3

    with pytest.raises(httpx.ConnectError):  # the session's end stopped the server
        httpx.get(f"http://{host}:{port}/metrics", timeout=2)


async def scrape_once(state: State) -> str:
    """/metrics of an exporter serving ``state`` alone, scraped once over real HTTP."""
    exporter = PrometheusExporter("127.0.0.1", 0, state_getter=lambda: state)
    exporter.start()
    host, port = exporter.address
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            return (await client.get(f"http://{host}:{port}/metrics", timeout=5)).text
    finally:
        await exporter.stop()


async def test_exporter_without_a_session_reads_a_state_and_keeps_secrets_out_of_labels() -> None:
    state = fold(
        [
            ev.TargetAdded(wall=1, mono=1, target="redis://:hunter2@cache:6379", kind="redis"),
            ev.TargetUp(wall=1, mono=2, target="redis://:hunter2@cache:6379"),
        ]
    )
    text = await scrape_once(state)

    assert "hunter2" not in text
    samples = parse(text)
    assert value(samples, "wsmon_target_up", target="redis://:***@cache:6379", kind="redis") == 1
    assert value(samples, "wsmon_connections_open") == 0
    assert ("wsmon_process_cpu_percent", frozenset()) not in samples  # no process sampled: no series
    assert value(samples, "wsmon_info", version=__import__("wsmon").__version__) == 1


async def test_a_port_in_use_fails_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        exporter = PrometheusExporter("127.0.0.1", taken.getsockname()[1], state_getter=State)
        with pytest.raises(OSError):
            exporter.start()


def test_listen_addresses() -> None:
    assert parse_listen_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_listen_address(":9464") == ("127.0.0.1", 9464)
    assert parse_listen_address("9464") == ("127.0.0.1", 9464)
    assert parse_listen_address("[::1]:9464") == ("::1", 9464)
    for bad in ("localhost", "host:port", "1.2.3.4:70000"):
        with pytest.raises(ValueError):
            parse_listen_address(bad)


async def test_deadlocks_are_the_running_total_of_every_sample_not_the_last_ones() -> None:
    state = fold(
        [
            ev.TargetAdded(wall=1, mono=1, target="postgres", kind="postgres"),
            ev.PostgresSample(wall=1, mono=2, target="postgres", select1_ms=1.0, deadlocks=2),
            ev.PostgresSample(wall=1, mono=3, target="postgres", select1_ms=1.0, deadlocks=3),
            ev.PostgresSample(wall=1, mono=4, target="postgres", select1_ms=1.0),
        ]
    )
    text = await scrape_once(state)
    assert value(parse(text), "wsmon_postgres_deadlocks", target="postgres") == 5


async def test_a_saturated_tap_is_scraped_as_saturated_with_its_seconds() -> None:
    state = fold(
        [
            ev.TargetAdded(wall=1, mono=1, target="tap", kind="tap"),
            ev.TargetUp(wall=1, mono=1, target="tap"),
            ev.TapSaturation(wall=2, mono=2, target="tap", saturated=True, lag_ms=30.0),
            ev.TapSaturation(wall=5, mono=5, target="tap", saturated=False),
            ev.TapSaturation(wall=7, mono=7, target="tap", saturated=True, lag_ms=20.0),
            ev.Marker(wall=8, mono=8, text="now"),
        ]
    )
    samples = parse(await scrape_once(state))
    assert value(samples, "wsmon_tap_saturated", target="tap") == 1
    assert value(samples, "wsmon_tap_saturated_seconds_total", target="tap") == pytest.approx(4.0)
