"""wsmon's own probe handshakes are reported as the probe's, apart from the clients' connect time:
the rule is the reducer's and the report's, so it is tested with fixed event scripts."""

from __future__ import annotations

import msgspec
from helpers import T0, at
from ui_support import ReducerFeed, settle, widget_text

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS, Limit, judge, live_value
from wsmon.core.reducer import Reducer
from wsmon.core.report import build_report
from wsmon.core.state import PROBE_CONNECT, State
from wsmon.render.report import render_markdown, render_text
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import HeaderBar, LimitsStrip

CONNECT_MS = next(limit for limit in DEFAULT_LIMITS if limit.figure == "connect_ms")


def judged(events: list[ev.Event], limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> State:
    reducer = Reducer()
    for event in events:
        reducer.apply(event)
        reducer.apply_many(judge(reducer.state, limits, event.wall, event.mono))
    return reducer.state


def probe_session(handshake_ms: float, clients_ms: list[float] | None = None) -> list[ev.Event]:
    """A probe whose handshakes took ``handshake_ms`` (a dashboard starting up, say), and clients
    seen by a tap with their own handshakes."""
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="websocket", kind="websocket", address="ws://127.0.0.1:8080/"),
        ev.TargetUp(**at(0.1), target="websocket"),
    ]
    for i in range(4):
        t = 0.1 + i * 30.0
        out.append(ev.LatencySample(**at(t), kind="connect", ms=handshake_ms, target="websocket", own=True))
        out.append(
            ev.ConnectionOpened(
                **at(t),
                conn=f"probe1#{i}",
                handshake_ms=handshake_ms,
                source="probe",
                own=True,
                local=f"l:{i}",
            )
        )
        out.append(ev.LatencySample(**at(t + 1), kind="ping", ms=0.4, target="websocket", own=True))
    for i, ms in enumerate(clients_ms or []):
        t = 85.0 + i * 0.5  # within the last minute of the session
        out.append(ev.LatencySample(**at(t), kind="connect", ms=ms, target="tap"))
        out.append(ev.ConnectionOpened(**at(t), conn=f"c{i}", handshake_ms=ms, source="tap"))
    return sorted(out, key=lambda e: e.mono)


def test_a_slow_probe_handshake_alone_is_no_data_for_connect_ms_and_never_breaches() -> None:
    state = judged(probe_session(handshake_ms=120.0))
    assert "connect" not in state.latency
    assert state.latency[PROBE_CONNECT].count == 4
    assert live_value(state, CONNECT_MS) is None
    assert "connect_ms" not in state.alerts and "connect_ms" not in state.breached
    report = build_report(state, DEFAULT_LIMITS)
    figure = next(f for f in report.figures if f.figure == "connect_ms")
    assert figure.verdict == "no data" and figure.value is None
    assert "wsmon's own probe: p95 120.0 ms" in figure.note
    assert report.exit_code == 0
    probe = {p.kind: p for p in report.probe}
    assert probe["connect"].count == 4 and probe["connect"].max == 120.0
    assert probe["ping"].count == 4


def test_clients_handshakes_are_judged_and_the_probes_are_shown_apart() -> None:
    state = judged(probe_session(handshake_ms=150.0, clients_ms=[10.0, 12.0, 11.0, 14.0, 9.0]))
    assert state.latency["connect"].count == 5
    value = live_value(state, CONNECT_MS)
    assert value is not None and value <= 14.0
    report = build_report(state, DEFAULT_LIMITS)
    figure = next(f for f in report.figures if f.figure == "connect_ms")
    assert figure.verdict == "ok" and figure.max == 14.0 and figure.count == 5
    assert report.exit_code == 0
    text = render_text(report)
    assert "wsmon's own probes (not judged): handshake p95 150.0 ms (max 150.0 ms, 4 samples)" in text
    assert "wsmon's own probes (not judged): handshake p95" in render_markdown(report)


def test_a_slow_clients_handshake_still_breaches() -> None:
    state = judged(probe_session(handshake_ms=3.0, clients_ms=[180.0] * 5))
    assert state.alerts["connect_ms"].level == "breach"
    assert build_report(state, DEFAULT_LIMITS).exit_code == 1


def test_a_latency_event_recorded_without_own_decodes_as_the_users() -> None:
    """Recordings written before the field existed end the array before ``own``: those samples stay
    the users' (and a named-form event without it too)."""
    old_row = msgspec.msgpack.encode(["latency", T0, 1.0, "connect", 5.0, "websocket", ""])
    sample = msgspec.msgpack.decode(old_row, type=ev.AnyEvent)
    assert isinstance(sample, ev.LatencySample) and sample.own is False
    named = ev.from_dict({"type": "latency", "wall": T0, "mono": 1.0, "kind": "connect", "ms": 5.0})
    assert isinstance(named, ev.LatencySample) and named.own is False
    own = ev.LatencySample(**at(1.0), kind="connect", ms=5.0, own=True)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(own), type=ev.AnyEvent) == own


async def test_the_header_labels_the_probes_handshake_and_the_strip_shows_no_client_figure() -> None:
    feed = ReducerFeed()
    feed.apply(*probe_session(handshake_ms=42.5))
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        assert "probe handshake p95 42.5 ms" in widget_text(app.query_one(HeaderBar))
        assert "connect p95 —" in widget_text(app.query_one(LimitsStrip))
