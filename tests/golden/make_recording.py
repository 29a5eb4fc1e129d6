"""Fixed recordings for the golden-file tests (tests/test_golden.py), written by wsmon's own RecordingWriter.

Every event comes from a fixed script: fixed wall and monotonic times, fixed header (version and creation
time included), so the reports rendered from these recordings are the same bytes on every machine and in
every run. The recordings themselves are not committed; the tests write them into a temporary directory.

``full`` covers every section of a report: figures of every verdict (breach, warn, ok, too few to judge,
no data), close codes, delivery failures with reasons, targets up / down / starting / stopped / unknown,
alerts active and cleared, markers, a server exit with its last lines, tests with a failed one and its
window, wsmon's own probe latencies, trends (time to limit), hints and log lines. ``old`` is an earlier,
healthier run of the same system, the baseline ``full`` is compared with. ``quiet`` has no client traffic
at all, which is what makes a report carry a note.

    # writes DIR/full.wsmon, DIR/old.wsmon and DIR/quiet.wsmon; tests/ holds the shared helpers it imports
    PYTHONPATH=tests python tests/golden/make_recording.py DIR
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from helpers import T0, at

from wsmon.core import events as ev
from wsmon.core.events import SCHEMA_VERSION
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import Reducer
from wsmon.store.format import FORMAT_VERSION, RecordedTarget, RecordingHeader
from wsmon.store.writer import RecordingWriter

MIB = 1024 * 1024
VERSION = "0.0.0-golden"  # not the running wsmon's: a release must not change the golden files


def targets() -> list[ev.Event]:
    return [
        ev.TargetAdded(
            **at(0.0),
            target="server",
            kind="server",
            address="node server.js",
            starting=True,
            startup_timeout_s=30.0,
        ),
        ev.TargetAdded(**at(0.0), target="ws", kind="websocket", address="ws://127.0.0.1:8080/ws"),
        ev.TargetAdded(**at(0.0), target="process", kind="process", address="pid 4242"),
        ev.TargetAdded(**at(0.0), target="redis", kind="redis", address="redis://127.0.0.1:6379/0"),
        ev.TargetAdded(
            **at(0.0), target="postgres", kind="postgres", address="postgresql://app@127.0.0.1/test"
        ),
        ev.TargetAdded(**at(0.0), target="health", kind="http", address="http://127.0.0.1:8080/health"),
        ev.TargetAdded(
            **at(0.0),
            target="worker",
            kind="server",
            address="node worker.js",
            starting=True,
            startup_timeout_s=600.0,
        ),
        ev.TargetUp(**at(1.0), target="server", detail="pid 4242"),
        ev.TargetUp(**at(1.0), target="ws"),
        ev.TargetUp(**at(1.0), target="process", detail="pid 4242"),
        ev.TargetUp(**at(1.0), target="redis", detail="7.2.4"),
        ev.TargetUp(**at(1.0), target="postgres", detail="16.3"),
        ev.Hint(**at(1.0), target="process", text="run as the server's user to read its open files"),
    ]


def clients(count: int, handshake_ms: float) -> list[ev.Event]:
    """Client connections seen by the tap, and wsmon's own probe connection."""
    out: list[ev.Event] = [
        ev.ConnectionOpened(
            **at(1.5),
            conn="probe-1",
            peer="127.0.0.1:50000",
            path="/ws",
            handshake_ms=2.0,
            source="ws",
            own=True,
            local="127.0.0.1:50000",
        ),
    ]
    for i in range(count):
        out.append(
            ev.ConnectionConnecting(
                **at(2.0 + i * 0.1), conn=f"c{i}", peer=f"10.0.0.{i + 1}:4000", path="/ws", source="tap"
            )
        )
        out.append(
            ev.ConnectionOpened(
                **at(2.0 + i * 0.1 + 0.005),
                conn=f"c{i}",
                peer=f"10.0.0.{i + 1}:4000",
                path="/ws",
                handshake_ms=handshake_ms,
                source="tap",
            )
        )
        out.append(
            ev.LatencySample(**at(2.0 + i * 0.1 + 0.005), kind="connect", ms=handshake_ms, target="tap")
        )
    return out


def closes() -> list[ev.Event]:
    codes = [
        (1000, "client", ""),
        (1000, "client", ""),
        (1001, "client", "going away"),
        (1005, "client", ""),
        (1006, "neither", ""),
        (1006, "neither", ""),
        (1011, "server", "boom"),
    ]
    out: list[ev.Event] = []
    for i, (code, by, reason) in enumerate(codes):
        conn = f"c{i}"
        out.append(ev.ConnectionClosing(**at(200.0 + i), conn=conn, by=by))
        out.append(
            ev.ConnectionClosed(
                **at(200.0 + i + 0.01),
                conn=conn,
                code=code,
                reason=reason,
                closed_by=by,
                duration_s=198.0 + i,
                source="tap",
                answered=code != 1006,
            )
        )
    out.append(
        ev.ConnectFailed(**at(150.0), target="ws", kind="refused", error="ECONNREFUSED 127.0.0.1:8080")
    )
    out.append(ev.ConnectFailed(**at(151.0), target="ws", kind="rejected", error="HTTP 503", status=503))
    return out


def resources(
    rss0_mib: float, rss_per_min: float, cpu: float, delivery_ms: float, db_ms: float, probe: bool = True
) -> list[ev.Event]:
    out: list[ev.Event] = []
    for t in range(0, 301, 2):
        rss = rss0_mib + rss_per_min * t / 60
        out.append(
            ev.ProcessSample(
                **at(float(t)),
                target="process",
                pid=4242,
                cpu_percent=cpu,
                rss_bytes=int(rss * MIB),
                threads=11,
                fds=40 + t // 10,
                tcp={"ESTABLISHED": 20, "TIME_WAIT": 3},
                cores=2,
                processes=2,
            )
        )
        out.append(
            ev.LatencySample(
                **at(t + 0.5), kind="delivery", ms=delivery_ms + (t % 7), target="tap", ref=f"m{t}"
            )
        )
        out.append(ev.LatencySample(**at(t + 0.6), kind="db", ms=db_ms + (t % 5), target="postgres"))
        out.append(
            ev.Traffic(
                **at(t + 0.5),
                conn="c0",
                msgs_in=5,
                msgs_out=6,
                bytes_in=500,
                bytes_out=640,
                interval_s=2.0,
                by_type={"text_in": 5, "text_out": 6},
            )
        )
        if probe:
            out.append(
                ev.LatencySample(**at(t + 0.7), kind="ping", ms=1.25 + (t % 3) * 0.5, target="ws", own=True)
            )
        if t % 10 == 0:
            out.append(
                ev.RedisSample(
                    **at(t + 0.8),
                    target="redis",
                    ping_ms=0.4,
                    connected_clients=12,
                    blocked_clients=0,
                    used_memory=int((50 + t * 0.2) * MIB),
                    maxmemory=0,
                    ops_per_sec=300.0,
                    rejected_connections=0,
                    evicted_keys=0,
                    hit_ratio=0.97,
                )
            )
            out.append(
                ev.PostgresSample(
                    **at(t + 0.9),
                    target="postgres",
                    select1_ms=0.8,
                    sessions={"active": 2, "idle": 8},
                    connections=10 + t // 30,
                    max_connections=100,
                    longest_query_s=0.02,
                    longest_xact_s=0.05,
                    commits_per_s=40.0,
                    rollbacks_per_s=0.0,
                    deadlocks=0,
                )
            )
            out.append(ev.HttpSample(**at(t + 0.95), target="health", status=200, ms=3.0, health="ok"))
    return out


def incidents() -> list[ev.Event]:
    return [
        ev.Marker(**at(10.0), text="load test start"),
        ev.AlertRaised(
            **at(30.0),
            figure="cpu_percent",
            level="warn",
            value=41.0,
            limit=50.0,
            message="Server CPU 41.0 % (limit < 50.0 %)",
        ),
        ev.AlertCleared(**at(60.0), figure="cpu_percent", value=20.0),
        ev.AlertRaised(
            **at(40.0),
            figure="delivery_ms",
            level="breach",
            value=81.0,
            limit=50.0,
            message="Message delivery latency p95 81.0 ms (limit < 50.0 ms)",
        ),
        ev.DeliveryFailed(
            **at(120.0), message_id="msg_1", conn="c3", reason="Connection not open", source="server"
        ),
        ev.DeliveryFailed(
            **at(121.0), message_id="msg_2", conn="c3", reason="Connection not open", source="server"
        ),
        ev.DeliveryFailed(**at(122.0), message_id="msg_3", conn="c4", reason="timeout", source="server"),
        ev.LogLine(
            **at(120.0),
            level="error",
            source="server",
            text="MessageDeliveryError: Message delivery failed: msg_1 - Connection not open",
            fields={"messageId": "msg_1"},
        ),
        ev.LogLine(**at(125.0), level="warn", source="server", text="Invalid message format"),
        ev.LogLine(**at(126.0), level="info", source="server", text="client registered"),
        ev.TargetDown(**at(180.0), target="redis", error="Connection refused", kind="refused"),
        ev.TargetDown(
            **at(240.0),
            target="process",
            error="process 4242 is stopped (SIGSTOP or job control): it answers nothing",
            kind="stopped",
        ),
        ev.Marker(**at(250.0), text="load test end"),
        ev.ServerExit(
            **at(290.0),
            target="server",
            pid=4242,
            code=1,
            last_lines=[
                "at WebSocket.send (ws/lib/websocket.js:440:13)",
                "MessageDeliveryError: Message delivery failed: msg_9 - Connection not open",
            ],
        ),
        ev.TargetDown(**at(290.0), target="server", error="exited with code 1", kind="exited"),
    ]


def tests() -> list[ev.Event]:
    return [
        ev.TestEvent(**at(5.0), name="test_register", phase="start"),
        ev.TestEvent(**at(6.0), name="test_register", phase="end", outcome="passed", duration_s=1.0),
        ev.TestEvent(**at(118.0), name="test_delivery", phase="start"),
        ev.TestEvent(
            **at(128.0),
            name="test_delivery",
            phase="end",
            outcome="failed",
            duration_s=10.0,
            message="Timeout: exceeded 10000 ms",
        ),
        ev.TestEvent(**at(130.0), name="test_skip_me", phase="start"),
        ev.TestEvent(**at(130.0), name="test_skip_me", phase="end", outcome="skipped", duration_s=0.0),
        ev.TestRunEnded(**at(295.0), command="npm test", exit_code=1, ran=3),
    ]


def full() -> list[ev.Event]:
    return [
        *targets(),
        *clients(20, 5.0),
        *closes(),
        *resources(300.0, 3.0, 12.0, 80.0, 170.0),
        *incidents(),
        *tests(),
    ]


def old() -> list[ev.Event]:
    return [
        *targets()[:6],
        *targets()[7:12],
        *clients(20, 4.0),
        *resources(250.0, 0.0, 10.0, 20.0, 60.0, probe=False),
    ]


def quiet() -> list[ev.Event]:
    """The system watched, but no client traffic: no connection, no delivery, only resources and probes."""
    watched = (ev.ProcessSample, ev.RedisSample, ev.PostgresSample, ev.HttpSample)
    samples = [e for e in resources(120.0, 0.0, 3.0, 0.0, 0.0) if isinstance(e, watched) or e.mono < 90.0]
    no_traffic = [
        e for e in samples if not isinstance(e, ev.Traffic) and getattr(e, "kind", "") != "delivery"
    ]
    return [*targets()[:6], *targets()[7:12], *no_traffic]


def _sorted(events: list[ev.Event]) -> list[ev.Event]:
    return sorted(events, key=lambda e: e.mono)  # stable: same-time events keep the script's order


def write(path: Path, events: list[ev.Event], command: str) -> None:
    header = RecordingHeader(
        wsmon_version=VERSION,
        format_version=FORMAT_VERSION,
        schema_version=SCHEMA_VERSION,
        created_wall=T0,
        command=command,
        targets=[RecordedTarget(name="ws", kind="websocket", address="ws://127.0.0.1:8080/ws")],
        limits=list(DEFAULT_LIMITS),
    )
    reducer = Reducer()
    ordered = _sorted(events)
    reducer.apply_many(ordered)
    with RecordingWriter(path, header) as writer:
        writer.extend(ordered)
        writer.close(reducer.state)


RECORDINGS: dict[str, tuple[Callable[[], list[ev.Event]], str]] = {
    "full": (full, "wsmon run -- npm test"),
    "old": (old, "wsmon run -- npm test"),
    "quiet": (quiet, "wsmon attach ws://127.0.0.1:8080/ws"),
}


def write_all(directory: Path) -> dict[str, Path]:
    paths = {}
    for name, (script, command) in RECORDINGS.items():
        paths[name] = directory / f"{name}.wsmon"
        write(paths[name], script(), command)
    return paths


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else ".")).values():
        print(path)
