"""The HTTP health and metrics sources against a real local HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import wait_for_events
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from wsmon.core import events as ev
from wsmon.core.reducer import fold
from wsmon.sources.http import HealthSource, MetricsSource, parse_selector

Events = list[ev.Event]


class Site:
    """A threaded HTTP server whose answers the test changes while it runs; it can stop and restart on
    the same port."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    def answer(self, path: str, status: int, body: bytes | dict[str, object], content_type: str = "") -> None:
        if isinstance(body, dict):
            body, content_type = json.dumps(body).encode(), content_type or "application/json"
        self.routes[path] = (status, content_type or "text/plain", body)

    def start(self) -> None:
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/old":
                    self.send_response(302)
                    self.send_header("Location", "/health")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, content_type, body = routes.get(self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def running(source: HealthSource | MetricsSource, events: Events) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(events.append))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def of(events: Events, kind: type[ev.Event]) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def ups_and_downs(events: Events) -> list[tuple[str, str]]:
    return [
        ("up", e.detail) if isinstance(e, ev.TargetUp) else ("down", f"{e.kind}: {e.error}")
        for e in events
        if isinstance(e, ev.TargetUp | ev.TargetDown)
    ]


async def test_health_goes_up_down_away_and_back_by_itself(site: Site) -> None:
    site.answer("/health", 200, {"status": "ok"})
    events: Events = []
    async with running(HealthSource(site.url("/health"), interval=0.05), events):
        await wait_for_events(events, lambda es: len(ups_and_downs(es)) == 1)
        site.answer("/health", 503, {"status": "down"})
        await wait_for_events(events, lambda es: len(ups_and_downs(es)) == 2)
        site.answer("/health", 200, {"status": "DOWN"})  # a 200 that says it is down is down
        await wait_for_events(events, lambda es: len(ups_and_downs(es)) == 3)
        site.stop()
        await wait_for_events(events, lambda es: len(ups_and_downs(es)) == 4)
        site.answer("/health", 200, {"status": "ok"})
        site.start()  # the same port again
        await wait_for_events(events, lambda es: len(ups_and_downs(es)) == 5)

    assert ups_and_downs(events) == [
        ("up", "HTTP 200 · status ok"),
        ("down", "http: HTTP 503 · status down"),
        ("down", "unhealthy: HTTP 200 · status DOWN"),
        ("down", "refused: connection refused (ECONNREFUSED)"),
        ("up", "HTTP 200 · status ok"),
    ]
    logs = [(line.level, line.text) for line in of(events, ev.LogLine)]
    assert logs == [
        ("info", "health: HTTP 200 · status ok"),
        ("warn", "health: HTTP 503 · status down"),
        ("warn", "health: HTTP 200 · status DOWN"),
        ("warn", "health: connection refused (ECONNREFUSED)"),
        ("info", "health: HTTP 200 · status ok"),
    ], "one line per change of answer, not one per poll"
    samples = of(events, ev.HttpSample)
    assert {s.status for s in samples} == {200, 503, None}
    assert all(s.ms is not None and s.ms > 0 for s in samples if s.status is not None)
    assert {s.kind for s in of(events, ev.LatencySample)} == {"http"}

    state = fold(events)
    target = state.targets["health"]
    assert target.up is True and target.down_count == 1 and target.kind == "http"
    assert state.http["health"].health == "ok"


async def test_retries_while_down_are_at_most_one_and_a_half_intervals(site: Site) -> None:
    site.stop()
    events: Events = []
    # An interval long enough that a loaded machine's scheduling jitter (tens of ms) is small against it.
    async with running(HealthSource(site.url("/health"), interval=0.2), events):
        await wait_for_events(events, lambda es: len(of(es, ev.HttpSample)) >= 6)
    times = [s.mono for s in of(events, ev.HttpSample)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap < 0.3 + 0.1 for gap in gaps), gaps  # never more than 1.5 × interval (plus slack)
    assert gaps[-1] > 0.25, gaps  # it did back off from the interval
    assert len(of(events, ev.TargetDown)) == 1


async def test_redirects_are_followed_and_environment_proxies_ignored(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that would refuse everything
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    site.answer("/health", 200, {"status": "ok"})
    result = await HealthSource(site.url("/old")).check()
    assert result.ok and result.latency_ms is not None


async def test_check_reports_http_errors_with_a_hint(site: Site) -> None:
    result = await HealthSource(site.url("/nowhere")).check()
    assert (result.ok, result.kind, result.error) == (False, "http", "HTTP 404")
    assert "path" in result.hint
    site.stop()
    refused = await HealthSource(site.url("/health")).check()
    assert (refused.ok, refused.kind) == (False, "refused") and "running" in refused.hint


def prometheus_text() -> bytes:
    registry = CollectorRegistry()
    clients = Gauge("ws_clients", "open clients by state", ["state"], registry=registry)
    clients.labels("open").set(5)
    clients.labels("closing").set(2)
    Counter("messages", "messages routed", registry=registry).inc(42)
    return generate_latest(registry)


async def test_metrics_emit_the_named_series(site: Site) -> None:
    site.answer("/metrics", 200, prometheus_text(), "text/plain; version=0.0.4")
    series = ['ws_clients{state="open"}', "ws_clients", "messages", "messages_total", "absent_metric"]
    events: Events = []
    async with running(MetricsSource(site.url("/metrics"), interval=0.05, series=series), events):
        await wait_for_events(events, lambda es: len(of(es, ev.HttpSample)) >= 3)
        site.answer("/metrics", 200, b"this is { not prometheus", "text/plain")
        await wait_for_events(events, lambda es: bool(of(es, ev.TargetDown)))
        site.answer("/metrics", 500, b"oops")
        await wait_for_events(events, lambda es: len(of(es, ev.TargetDown)) == 2)

    first = of(events, ev.HttpSample)[0]
    assert first.series == {
        'ws_clients{state="open"}': 5.0,
        "ws_clients": 7.0,
        "messages": 42.0,
        "messages_total": 42.0,
    }
    assert [h.text for h in of(events, ev.Hint)] == ["series absent_metric not found in the metrics"]
    assert of(events, ev.TargetUp)[0].detail == "HTTP 200"
    downs = [(d.kind, d.error.split(":")[0]) for d in of(events, ev.TargetDown)]
    assert downs == [("invalid", "metrics not parseable"), ("http", "HTTP 500")]
    assert of(events, ev.LatencySample) == []  # scrape times are not the server's latency


def test_series_selectors_parse_labels() -> None:
    assert parse_selector('a_b{x="1", y="q\\"uote"}') == ("a_b", {"x": "1", "y": 'q"uote'})
    assert parse_selector("plain") == ("plain", {})
    with pytest.raises(ValueError):
        parse_selector("bad{x=1}")
