"""`wsmon check` end to end: the real CLI as a child process against real servers over real sockets.

Exit codes are the contract a CI script relies on: 0 when every target answers, 1 when any check
fails (and the table says which and why), 2 for bad usage. Every run gets a clean environment and
an empty working directory, so no stray WSMON_URL, .env or wsmon.toml decides the outcome.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import clean_env, run_wsmon
from services import (
    DATABASE_URL,
    REDIS_URL,
    demo_server_process,
    free_port,
    port_open,
    private_redis,
    unavailable,
)

from wsmon.core.redact import redact_url

pytestmark = pytest.mark.slow

COLUMNS = ("target", "address", "status", "latency", "error", "hint")


def wsmon_check(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_wsmon("check", *args, cwd=tmp_path, env=clean_env(tmp_path, **env))


def table_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The check table as {target: {column: cell}}; columns are separated by two or more spaces."""
    lines = stdout.splitlines()
    assert lines and lines[0].split() == list(COLUMNS), f"no table header in:\n{stdout}"
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = dict(zip(COLUMNS, cells + [""] * (len(COLUMNS) - len(cells)), strict=True))
    return rows


# --- the targets -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def machine_services() -> tuple[str, str]:
    """The machine's own Redis and PostgreSQL, used read-only."""
    for name, url in (("Redis", REDIS_URL), ("PostgreSQL", DATABASE_URL)):
        parts = urlsplit(url)
        if not port_open(parts.hostname or "127.0.0.1", parts.port or 0):
            unavailable(f"the machine's {name} is not running at {redact_url(url)}")
    return REDIS_URL, DATABASE_URL


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    """The reference WebSocket server as a child process; yields its ws:// URL."""
    with demo_server_process() as port:
        yield f"ws://127.0.0.1:{port}"


class HealthServer:
    """A local HTTP health endpoint whose status code the test sets."""

    def __init__(self) -> None:
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"status": "ok"}' if owner.status == 200 else b'{"status": "down"}'
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer()
    try:
        yield server
    finally:
        server.close()


def everything(ws_url: str, redis: str, postgres: str, health: str) -> list[str]:
    return [ws_url, "--redis", redis, "--postgres", postgres, "--health", health]


# --- exit 0 and exit 1 -----------------------------------------------------------------------------


def test_everything_up_exits_0_and_every_row_is_ok(
    tmp_path: Path, machine_services: tuple[str, str], demo_server: str, health: HealthServer
) -> None:
    redis, postgres = machine_services
    result = wsmon_check(tmp_path, *everything(demo_server, redis, postgres, health.url))

    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {"websocket", "process", "redis", "postgres", "health"}
    for name, row in rows.items():
        assert row["status"] == "ok", f"{name}: {row}"
        assert re.fullmatch(r"\d+\.\d ms", row["latency"]), f"{name} latency {row['latency']!r}"
        assert row["error"] == ""
    assert rows["websocket"]["address"] == demo_server
    assert rows["health"]["address"] == health.url
    assert "5 of 5 targets answer" in result.stdout
    assert result.stderr == ""


def test_websocket_down_fails_its_row(
    tmp_path: Path, machine_services: tuple[str, str], health: HealthServer
) -> None:
    redis, postgres = machine_services
    closed = f"ws://127.0.0.1:{free_port()}"
    result = wsmon_check(tmp_path, *everything(closed, redis, postgres, health.url))

    assert result.returncode == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert rows["websocket"]["status"] == "FAIL"
    assert "refused" in rows["websocket"]["error"]
    assert rows["websocket"]["hint"], "a failed row says what to do"
    # Nothing listens on that port, so there is no server process to watch either.
    assert rows["process"]["status"] == "FAIL"
    assert all(rows[name]["status"] == "ok" for name in ("redis", "postgres", "health"))


@pytest.mark.private_instance
def test_redis_killed_fails_its_row(
    tmp_path: Path, machine_services: tuple[str, str], demo_server: str, health: HealthServer
) -> None:
    _, postgres = machine_services
    with private_redis() as redis:
        before = wsmon_check(tmp_path, *everything(demo_server, redis.url, postgres, health.url))
        assert before.returncode == 0, before.stdout + before.stderr
        redis.kill()
        after = wsmon_check(tmp_path, *everything(demo_server, redis.url, postgres, health.url))

    assert after.returncode == 1, after.stdout + after.stderr
    rows = table_rows(after.stdout)
    assert rows["redis"]["status"] == "FAIL"
    assert rows["redis"]["address"] == redis.url
    assert "refused" in rows["redis"]["error"]
    assert "redis-server" in rows["redis"]["hint"]
    assert all(rows[name]["status"] == "ok" for name in ("websocket", "process", "postgres", "health"))
    assert "4 of 5 targets answer; 1 failed" in after.stdout


def test_postgres_down_fails_its_row_and_hides_the_password(
    tmp_path: Path, machine_services: tuple[str, str], demo_server: str, health: HealthServer
) -> None:
    redis, _ = machine_services
    secret = "s3cr3t-Pa55"
    closed = f"postgresql://wsmon:{secret}@127.0.0.1:{free_port()}/test"
    result = wsmon_check(tmp_path, *everything(demo_server, redis, closed, health.url))

    assert result.returncode == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert rows["postgres"]["status"] == "FAIL"
    assert "refused" in rows["postgres"]["error"]
    assert rows["postgres"]["address"] == closed.replace(secret, "***")
    assert secret not in result.stdout + result.stderr
    assert all(rows[name]["status"] == "ok" for name in ("websocket", "process", "redis", "health"))


def test_health_503_fails_its_row(
    tmp_path: Path, machine_services: tuple[str, str], demo_server: str, health: HealthServer
) -> None:
    redis, postgres = machine_services
    health.status = 503
    result = wsmon_check(tmp_path, *everything(demo_server, redis, postgres, health.url))

    assert result.returncode == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert rows["health"]["status"] == "FAIL"
    assert "503" in rows["health"]["error"]
    assert all(rows[name]["status"] == "ok" for name in ("websocket", "process", "redis", "postgres"))


def test_a_single_target_is_enough(tmp_path: Path, machine_services: tuple[str, str]) -> None:
    redis, _ = machine_services
    result = wsmon_check(tmp_path, "--redis", redis)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(table_rows(result.stdout)) == {"redis"}


# --- exit 2 ----------------------------------------------------------------------------------------


def test_nothing_configured_exits_2_with_one_line(tmp_path: Path) -> None:
    result = wsmon_check(tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("wsmon: error: nothing to watch")


@pytest.mark.parametrize(
    ("args", "named", "expected"),
    [
        (["http://127.0.0.1:8080/ws"], "the URL argument", "ws:// or wss://"),
        (["--redis", "http://127.0.0.1:6379"], "--redis", "redis://"),
        (["--postgres", "mysql://root:hunter2@127.0.0.1/db"], "--postgres", "postgresql://"),
        (["--health", "ws://127.0.0.1:1/health"], "--health", "http://"),
        (["--metrics", "127.0.0.1:9100/metrics"], "--metrics", "http://"),
        (["--redis", "redis://127.0.0.1:6379", "--interval", "0"], "--interval", "positive number"),
        (["--redis", "redis://127.0.0.1:6379", "--probes", "99"], "--probes", "0-50"),
        (["--redis", "redis://127.0.0.1:6379", "--limit", "rss_mib=lots"], "--limit", "a number"),
    ],
)
def test_bad_flag_exits_2_naming_the_flag(tmp_path: Path, args: list[str], named: str, expected: str) -> None:
    result = wsmon_check(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wsmon: error: ")
    assert named in lines[0]
    assert expected in lines[0]
    assert "hunter2" not in result.stderr


def test_process_gone_fails_its_row(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    result = wsmon_check(tmp_path, "--pid", str(gone.pid), "--process", "no-such-program-wsmon-test")

    assert result.returncode == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    # A pid wins over a name: the process row follows --pid.
    assert rows["process"]["status"] == "FAIL"
    assert f"no process with pid {gone.pid}" in rows["process"]["error"]


def test_metrics_endpoint_down_fails_its_row(tmp_path: Path, health: HealthServer) -> None:
    health.status = 500
    result = wsmon_check(tmp_path, "--metrics", health.url)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert rows["metrics"]["status"] == "FAIL"
    assert "500" in rows["metrics"]["error"]


# --- issue 8: every configured target is checked ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "target", "status", "error"),
    [
        (["--server", "sleep 1"], "server", "ok", ""),
        (["--server", "no-such-program-wsmon-test --port 1"], "server", "FAIL", "no such executable"),
        (["--log", "/nonexistent"], "log", "FAIL", "no such file"),
    ],
)
def test_targets_without_a_network_check_are_checked_too(
    tmp_path: Path, args: list[str], target: str, status: str, error: str
) -> None:
    result = wsmon_check(tmp_path, *args)
    assert result.returncode == (0 if status == "ok" else 1), result.stdout + result.stderr
    assert "0 of 0" not in result.stdout
    row = table_rows(result.stdout)[target]
    assert row["status"] == status and error in row["error"]


def test_a_log_file_that_cannot_be_read_fails_its_row(tmp_path: Path) -> None:
    readable, unreadable = tmp_path / "server.log", tmp_path / "secret.log"
    readable.write_text("started\n")
    unreadable.write_text("started\n")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):
        pytest.skip("running as a user who can read any file (root)")
    result = wsmon_check(tmp_path, "--log", str(readable), "--log", str(unreadable))
    assert result.returncode == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert rows["log1"]["status"] == "ok"
    assert rows["log2"]["status"] == "FAIL" and "not readable" in rows["log2"]["error"]


def test_a_tap_is_checked_through_its_upstream(tmp_path: Path, demo_server: str) -> None:
    dead = wsmon_check(tmp_path, "--tap", f"127.0.0.1:0=ws://127.0.0.1:{free_port()}/")
    assert dead.returncode == 1, dead.stdout + dead.stderr
    row = table_rows(dead.stdout)["tap"]
    assert row["status"] == "FAIL" and "refused" in row["error"]
    alive = wsmon_check(tmp_path, "--tap", f"127.0.0.1:0={demo_server}/")
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert table_rows(alive.stdout)["tap"]["status"] == "ok"


def test_check_json_is_one_document(tmp_path: Path, demo_server: str) -> None:
    ok = wsmon_check(tmp_path, demo_server, "--format", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads(ok.stdout)
    assert data["verdict"] == "pass"
    names = {row["target"]: row for row in data["targets"]}
    assert names["websocket"]["ok"] is True and names["websocket"]["address"] == demo_server
    failed = wsmon_check(tmp_path, "--log", "/nonexistent", "--format", "json")
    assert failed.returncode == 1
    data = json.loads(failed.stdout)
    assert data["verdict"] == "fail" and data["targets"][0]["error"] == "no such file"
