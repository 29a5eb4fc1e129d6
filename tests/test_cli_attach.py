"""`wsmon attach` end to end under faults: kill -9 every target mid-run, restart it on the same port,
and check that wsmon recorded each going down and coming back, kept sampling, and never exited.

Everything is real: a private redis-server and a private PostgreSQL (password auth, so the DSN
carries a secret that must never reach the recording), the demo WebSocket server as a child process,
and wsmon itself as a child process writing a recording that the test reads while it grows.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from helpers import clean_env, free_port, wait_until
from services import PrivatePostgres, PrivateRedis, port_open

from wsmon.core import events as ev
from wsmon.store.format import RecordingError
from wsmon.store.reader import RecordingReader

pytestmark = [pytest.mark.slow, pytest.mark.private_instance]

DURATION_S = 25.0
INTERVAL_S = 0.5
WATCHED = ("websocket", "process", "redis", "postgres")
PG_SECRET = "attach-Secret-77"


class DemoServer:
    """The reference server as a child process, restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsmon.demo.server", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: port_open("127.0.0.1", self.port), 15, f"demo server on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, f"port {self.port} to close")


class LiveRecording:
    """Reads a recording while wsmon writes it, keeping every event seen so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader: RecordingReader | None = None
        self.events: list[ev.Event] = []
        self.not_ready = ""

    def _poll(self) -> None:
        if self.reader is None:
            # Until the writer's -wal file exists the reader would take the file for a finished,
            # immutable recording and never see another batch.
            if not Path(f"{self.path}-wal").exists():
                return
            try:
                self.reader = RecordingReader(self.path)
            except RecordingError as exc:
                # Not there yet, or created but its header not yet committed: look again shortly.
                self.not_ready = str(exc)
                return
        self.reader.refresh()
        self.events.extend(self.reader.iter_events(start_seq=len(self.events)))

    def wait_for(self, what: str, predicate: Callable[[list[ev.Event]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._poll()
            if predicate(self.events):
                return
            time.sleep(0.1)
        seen = summarise(self.events) if self.reader is not None else self.not_ready
        raise AssertionError(f"timed out waiting for {what}; saw {seen}")

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def summarise(events: list[ev.Event]) -> list[str]:
    return [f"{type(e).__name__}({e.target})" for e in events if isinstance(e, ev.TargetUp | ev.TargetDown)]


def transitions(events: list[ev.Event], target: str) -> list[str]:
    """The up/down history of one target, e.g. ['up', 'down', 'up']."""
    out = []
    for event in events:
        if isinstance(event, ev.TargetUp | ev.TargetDown) and event.target == target:
            out.append("up" if isinstance(event, ev.TargetUp) else "down")
    return out


def recovered(events: list[ev.Event], target: str) -> bool:
    history = transitions(events, target)
    return "down" in history and "up" in history[history.index("down") :]


def down(events: list[ev.Event], target: str) -> bool:
    return "down" in transitions(events, target)


def up(events: list[ev.Event], target: str) -> bool:
    return "up" in transitions(events, target)


@pytest.fixture
def targets() -> Iterator[tuple[DemoServer, PrivateRedis, PrivatePostgres]]:
    redis = PrivateRedis()
    postgres = PrivatePostgres(PG_SECRET)
    server = DemoServer()
    try:
        redis.start()
        postgres.start()
        server.start()
        yield server, redis, postgres
    finally:
        server.kill()
        redis.close()
        postgres.close()


def test_attach_survives_every_target_being_killed_and_restarted(
    tmp_path: Path, targets: tuple[DemoServer, PrivateRedis, PrivatePostgres]
) -> None:
    server, redis, postgres = targets
    recording = tmp_path / "attach.wsmon"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    argv = [
        sys.executable,
        "-m",
        "wsmon",
        "attach",
        server.url,
        "--redis",
        redis.url,
        "--postgres",
        postgres.url(),
        "--headless",
        "--duration",
        str(DURATION_S),
        "--interval",
        str(INTERVAL_S),
        "--record",
        str(recording),
    ]
    live = LiveRecording(recording)
    with out.open("w") as stdout, err.open("w") as stderr:
        wsmon = subprocess.Popen(
            argv, stdout=stdout, stderr=stderr, cwd=tmp_path, env=clean_env(tmp_path), start_new_session=True
        )
    try:
        live.wait_for("every target up", lambda es: all(up(es, t) for t in WATCHED), timeout=15)
        # A process's first CPU figure needs two readings an interval apart: wait for it before the kill.
        live.wait_for(
            "a sample of the first server",
            lambda es: any(isinstance(e, ev.ProcessSample) for e in es),
            timeout=10,
        )

        server.kill()
        redis.kill()
        postgres.kill()
        live.wait_for("every target down", lambda es: all(down(es, t) for t in WATCHED), timeout=10)
        assert wsmon.poll() is None, "wsmon exited when its targets went away"

        redis.start()
        postgres.start()
        server.start()
        live.wait_for("every target back up", lambda es: all(recovered(es, t) for t in WATCHED), timeout=12)
        assert wsmon.poll() is None, "wsmon exited before its duration"

        returncode = wsmon.wait(DURATION_S + 20)
    finally:
        live.close()
        if wsmon.poll() is None:
            wsmon.kill()
            wsmon.wait(10)

    stderr_text = err.read_text()
    # Exit 0 unless the printed verdict is a breach (one rule for every command that prints a verdict).
    breached = out.read_text().startswith("wsmon report: BREACH")
    assert returncode == (1 if breached else 0), stderr_text
    assert "Traceback" not in stderr_text
    assert f"recorded to {recording}" in stderr_text

    with RecordingReader(recording) as reader:
        events = list(reader.iter_events())
        header = reader.header

    for target in WATCHED:
        history = transitions(events, target)
        assert history[0] == "up", f"{target}: {history}"
        assert recovered(events, target), f"{target}: {history}"

    # Each target was sampled again after it came back.
    last_up = {
        target: max(i for i, e in enumerate(events) if isinstance(e, ev.TargetUp) and e.target == target)
        for target in WATCHED
    }
    after = {target: events[index + 1 :] for target, index in last_up.items()}
    assert any(isinstance(e, ev.RedisSample) and e.target == "redis" for e in after["redis"])
    assert any(isinstance(e, ev.PostgresSample) and e.target == "postgres" for e in after["postgres"])
    assert any(isinstance(e, ev.LatencySample) and e.target == "websocket" for e in after["websocket"])
    assert any(isinstance(e, ev.ProcessSample) and e.target == "process" for e in after["process"])

    # The process target followed the server across its restart to the new pid.
    pids = [e.pid for e in events if isinstance(e, ev.ProcessSample)]
    assert server.proc is not None
    assert pids[-1] == server.proc.pid
    assert len(set(pids)) >= 2, "the killed server's pid and the restarted one's"

    # The PostgreSQL password never reached the recording: header, TargetAdded or any event.
    assert PG_SECRET not in msgspec.json.encode(header).decode()
    added = {e.target: e for e in events if isinstance(e, ev.TargetAdded)}
    assert added["postgres"].address == postgres.url(password="***")
    assert all(PG_SECRET not in msgspec.json.encode(e).decode() for e in events)
    assert PG_SECRET not in out.read_text() + stderr_text

    # And the report at the end saw every target.
    report = out.read_text()
    for target in WATCHED:
        assert target in report
