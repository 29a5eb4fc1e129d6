"""A session that crowds the screen: four targets (one DOWN), two breaches, a warning, figures on every
limit, closed connections and log lines. The layout tests draw it at several sizes, in Textual's pilot
and in a real terminal (written as a recording)."""

from __future__ import annotations

from ui_support import screen_clock

from wsmon.core import events as ev

MIB = 1 << 20


def crowded_session() -> list[ev.Event]:
    at = screen_clock()
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="websocket", kind="websocket", address="ws://127.0.0.1:3001/"),
        ev.TargetAdded(**at(0.0), target="server", kind="server", address="node server.js"),
        ev.TargetAdded(**at(0.0), target="redis", kind="redis", address="redis://127.0.0.1:6379"),
        ev.TargetAdded(**at(0.0), target="postgres", kind="postgres", address="postgresql://127.0.0.1/app"),
        ev.TargetUp(**at(0.1), target="websocket", detail="101"),
        ev.TargetUp(**at(0.1), target="server", detail="pid 4242"),
        ev.TargetUp(**at(0.1), target="redis", detail="7.2.4"),
        ev.TargetDown(**at(0.2), target="postgres", error="connection refused", kind="refused"),
    ]
    for i in range(30):
        out.append(ev.ConnectionOpened(**at(1.0 + i * 0.1), conn=f"c{i}", peer=f"127.0.0.1:{50000 + i}"))
        out.append(ev.LatencySample(**at(1.0 + i * 0.1), kind="connect", ms=180.0 + i))
    for i in range(400):
        out.append(ev.LatencySample(**at(5.0 + i * 0.01), kind="delivery", ms=4.0 + (i % 7)))
    for i in range(60):
        out.append(
            ev.DeliveryFailed(
                **at(10.0 + i * 0.01), message_id=f"m{i}", conn="c1", reason="Connection not open"
            )
        )
    out += [
        ev.ConnectionClosed(**at(12.0), conn="c0", code=1000, closed_by="client", duration_s=11.0),
        ev.ConnectionClosed(**at(12.5), conn="c1", code=1006, closed_by="neither", duration_s=11.4),
        ev.ConnectionClosed(**at(13.0), conn="c2", code=1005, closed_by="client", duration_s=11.8),
        ev.ProcessSample(
            **at(14.0), target="server", pid=4242, cpu_percent=35.0, rss_bytes=180 * MIB, threads=11
        ),
        ev.LogLine(
            **at(14.5), level="error", text="MessageDeliveryError: Connection not open", source="server"
        ),
        ev.LogLine(**at(14.6), level="info", text="client connected from 127.0.0.1", source="server"),
        ev.AlertRaised(**at(15.0), figure="delivery_success", level="breach", value=87.0, limit=99.9),
        ev.AlertRaised(**at(15.1), figure="connect_ms", level="breach", value=195.0, limit=100.0),
    ]
    return out
