"""Alert delivery through a real session: a webhook received by a local HTTP server, a command's stdin."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from wsmon.core import events as ev
from wsmon.core.sink import Sink
from wsmon.outputs import outputs_for
from wsmon.outputs.alerts import AlertCommandSink, AlertWebhookSink, alert_payload, webhook_label
from wsmon.session import Session
from wsmon.sources.base import CheckResult, Emit, Source, now

SECRET_PATH = "/services/T0001/B0002/s3cr3tXYZ"


class Hook:
    """A local chat-webhook stand-in: records each POST; ``/flaky`` fails once, ``/bad`` always 400s."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.hits: dict[str, int] = {}
        received, hits = self.received, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hits[self.path] = hits.get(self.path, 0) + 1
                status = 200
                if self.path == "/bad" or (self.path == "/flaky" and hits[self.path] == 1):
                    status = 400 if self.path == "/bad" else 503
                else:
                    assert self.headers["Content-Type"] == "application/json"
                    received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


class AlertSignals(Sink):
    """A sink of the test's own: wakes the scripted source when the judge has raised or cleared."""

    def __init__(self) -> None:
        self.raised = asyncio.Event()
        self.cleared = asyncio.Event()

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.AlertRaised):
            self.raised.set()
        elif isinstance(event, ev.AlertCleared):
            self.cleared.set()


class BreachThenRecover(Source):
    """Delivery latency of 80 ms (a breach of < 50 ms), then 99 fast deliveries that bring p95 back."""

    def __init__(self, session: Session, signals: AlertSignals) -> None:
        super().__init__()
        self.session = session
        self.signals = signals
        self.finished = False

    async def run(self, emit: Emit) -> None:
        wall, mono = now()
        emit(ev.LatencySample(wall=wall, mono=mono, kind="delivery", ms=80.0))
        await self.signals.raised.wait()
        for _ in range(99):
            wall, mono = now()
            emit(ev.LatencySample(wall=wall, mono=mono, kind="delivery", ms=10.0))
        await self.signals.cleared.wait()
        self.finished = True
        self.session.stop()

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


async def run_alert_session(*sinks: Any) -> BreachThenRecover:
    signals = AlertSignals()
    session = Session([], title="it-run", sinks=[signals, *sinks], duration=20)
    source = BreachThenRecover(session, signals)
    session.sources.append(source)
    await session.run()
    return source


async def test_webhook_receives_the_breach_and_its_clearing(hook: Hook) -> None:
    sink = AlertWebhookSink(hook.url + SECRET_PATH, title="it-run")
    source = await run_alert_session(sink)

    assert source.finished
    assert [path for path, _ in hook.received] == [SECRET_PATH, SECRET_PATH]
    raised, cleared = (body for _, body in hook.received)
    assert raised["type"] == "alert"
    assert raised["figure"] == "delivery_ms"
    assert raised["level"] == "breach"
    assert raised["value"] == 80.0
    assert raised["limit"] == 50.0
    assert raised["session"] == "it-run"
    assert raised["message"] == "Message delivery latency 80.0 ms (limit < 50.0 ms)"
    assert raised["text"] == "wsmon [it-run]: BREACH Message delivery latency 80.0 ms (limit < 50.0 ms)"
    assert raised["wall"].endswith("Z") and abs(_epoch(raised["wall"]) - time.time()) < 30
    assert cleared["type"] == "alert.clear"
    assert cleared["level"] == "ok"
    assert cleared["value"] == 10.0
    assert cleared["text"] == "wsmon [it-run]: CLEARED Message delivery latency 10.0 ms (limit < 50.0 ms)"
    assert (sink.delivered, sink.failed, sink.dropped) == (2, 0, 0)


async def test_alert_command_gets_the_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    sink = AlertCommandSink(f"cat >> '{out}'", title="it-run")
    await run_alert_session(sink)

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(a["type"], a["level"], a["figure"]) for a in lines] == [
        ("alert", "breach", "delivery_ms"),
        ("alert.clear", "ok", "delivery_ms"),
    ]
    assert lines[0]["text"] == "wsmon [it-run]: BREACH Message delivery latency 80.0 ms (limit < 50.0 ms)"


async def test_failing_command_and_unreachable_webhook_do_not_break_the_session() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    errors: list[str] = []
    failing = AlertCommandSink("echo 'no such pager' >&2; exit 3", on_error=errors.append)
    unreachable = AlertWebhookSink(
        f"http://127.0.0.1:{dead_port}{SECRET_PATH}?token=abc", backoff=0.01, on_error=errors.append
    )
    started = time.monotonic()
    source = await run_alert_session(failing, unreachable)

    assert source.finished  # the scripted source ran to its end: the session kept judging
    assert time.monotonic() - started < 10
    assert errors.count("alert command failed: exited with status 3: no such pager") == 2
    webhook_errors = [line for line in errors if line.startswith("alert webhook")]
    assert len(webhook_errors) == 2
    assert webhook_errors[0].startswith(f"alert webhook http://127.0.0.1:{dead_port}/… failed: ConnectError")
    assert webhook_errors[0].endswith("after 3 attempt(s)")
    assert not any("s3cr3t" in line or "abc" in line for line in errors)
    assert (failing.failed, unreachable.failed) == (2, 2)


async def test_webhook_retries_a_server_error_but_not_a_rejection(hook: Hook) -> None:
    errors: list[str] = []
    flaky = AlertWebhookSink(hook.url + "/flaky", backoff=0.01, on_error=errors.append)
    bad = AlertWebhookSink(hook.url + "/bad", backoff=0.01, on_error=errors.append)
    event = _raised()
    for sink in (flaky, bad):
        sink.on_event(event)
        await sink.stop()  # not running: stop delivers what is queued itself

    assert hook.hits == {"/flaky": 2, "/bad": 1}
    assert flaky.delivered == 1
    assert errors == [f"alert webhook {hook.url}/… failed: HTTP 400 after 1 attempt(s)"]


async def test_full_queue_drops_the_oldest_alert(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    errors: list[str] = []
    sink = AlertCommandSink(f"cat >> '{out}'", queue_size=2, on_error=errors.append)
    for value in (60.0, 70.0, 80.0):
        sink.on_event(_raised(value))
    sink.on_event(ev.LogLine(wall=0, mono=0, level="info", text="not an alert"))
    await sink.stop()

    assert [json.loads(line)["value"] for line in out.read_text().splitlines()] == [70.0, 80.0]
    assert sink.dropped == 1
    assert errors == ["alert command: 1 alert(s) not delivered"]


async def test_a_hung_command_is_killed_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    errors: list[str] = []
    # The inner shell writes its pid and becomes `sleep`: killing only the outer shell would leave it.
    sink = AlertCommandSink(
        f"sh -c 'echo $$ > {pid_file}; exec sleep 30'", timeout=0.5, on_error=errors.append
    )
    sink.on_event(_raised())
    started = time.monotonic()
    await sink.stop()

    assert time.monotonic() - started < 5
    assert errors == ["alert command failed: timed out after 0.5 s and was killed"]
    # SIGKILL is delivered asynchronously: give the kernel a moment to end the orphaned `sleep`.
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 3.0
    while _alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not _alive(pid)


def test_payload_of_a_warning_and_the_label_of_a_webhook() -> None:
    wall = 1_700_000_000.25
    event = ev.AlertRaised(
        wall=wall, mono=1, figure="rss_mib", level="warn", value=420.0, limit=512.0, message="Server memory"
    )
    payload = alert_payload(event)
    assert payload["wall"] == "2023-11-14T22:13:20.250Z"
    assert payload["text"] == "wsmon: WARN Server memory"
    assert payload["session"] == ""
    assert (
        webhook_label("https://user:pw@hooks.slack.com/services/T/B/X")
        == "https://user:***@hooks.slack.com/…"
    )
    assert webhook_label("https://chat.example") == "https://chat.example"


def _raised(value: float = 80.0) -> ev.AlertRaised:
    message = f"Message delivery latency {value:.1f} ms (limit < 50.0 ms)"
    wall, mono = now()
    return ev.AlertRaised(
        wall=wall, mono=mono, figure="delivery_ms", level="breach", value=value, limit=50.0, message=message
    )


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_outputs_from_flag_values_report_failures_as_session_log_lines(hook: Hook) -> None:
    signals = AlertSignals()
    session = Session([], title="wired", sinks=[signals], duration=20)
    session.sinks += outputs_for(session, alert_cmd="exit 1", alert_webhook=hook.url + SECRET_PATH)
    session.sources.append(BreachThenRecover(session, signals))
    await session.run()

    assert [body["text"].split(":")[1].split()[0] for _, body in hook.received] == ["BREACH", "CLEARED"]
    lines = [entry.text for entry in session.state.logs if entry.source == "wsmon"]
    assert lines.count("alert command failed: exited with status 1") == 2
