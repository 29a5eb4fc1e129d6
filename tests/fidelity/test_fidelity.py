"""Fidelity: small servers on real third-party stacks, each logging through a real logger installed
from its registry, driven by a client that keeps its own tally. wsmon's counts, from the server's log
alone, must equal the tally: connections opened, closes by code (1000, 1001, 1005, an abrupt 1006),
messages delivered, and delivery failures (unknown recipients, a write to a just-closed socket, and for
Node a crash with its stack trace) — no double counts, no false failures.

Node packages are installed with npm into a temporary directory once per test session; if npm cannot
install them the Node cases fail rather than skip. How wsmon reads the server: ``server`` (wsmon starts
it and reads its output), ``saved-log`` (its saved output piped to ``--log -`` afterwards),
``saved-log-report`` (``wsmon report`` and ``wsmon import`` of the saved file, on its own timestamps),
``server+tap`` (both witnesses) and ``tap`` (the wire alone, told how the protocol acknowledges).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fidelity_client import Tally, drive
from helpers import free_port
from test_logparse_fastpath import assert_same

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.sources.logs.folding import StackFolder
from wsmon.store.reader import RecordingReader

pytestmark = pytest.mark.slow

SERVERS = Path(__file__).parent / "servers"


@dataclass(frozen=True)
class Stack:
    argv: tuple[str, ...]  # the server's command, its port appended
    path: str = "/"
    crashes: bool = False  # the last delivery kills the server (Node's uncaught MessageDeliveryError)
    node: bool = False


STACKS = {
    "node-ws-winston": Stack(("node", str(SERVERS / "winston_server.js")), crashes=True, node=True),
    "node-ws-pino": Stack(("node", str(SERVERS / "pino_server.js")), crashes=True, node=True),
    "python-websockets-structlog": Stack((sys.executable, "-u", str(SERVERS / "structlog_server.py"))),
    "fastapi-uvicorn-logging": Stack((sys.executable, "-u", str(SERVERS / "fastapi_server.py")), "/ws"),
}



def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listening on port {port} after {timeout} s")


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    environment = {k: v for k, v in os.environ.items() if k not in ("WSMON_URL", "REDIS_URL", "DATABASE_URL")}
    environment["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no user wsmon.toml
    environment["NO_COLOR"] = ""  # loggers keep their default colouring
    stack = STACKS[request.node.callspec.params["stack"]]
    if stack.node:
        environment["NODE_PATH"] = str(request.getfixturevalue("node_modules"))
    yield environment


def wsmon(
    tmp_path: Path, env: dict[str, str], *args: str, stdin: object = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "wsmon", "attach", *args],
        cwd=tmp_path,
        env=env,
        stdin=stdin,  # type: ignore[arg-type]
        stdout=(tmp_path / "wsmon.out").open("wb"),
        stderr=(tmp_path / "wsmon.err").open("wb"),
    )


def finish(proc: subprocess.Popen[bytes], tmp_path: Path, timeout: float = 30.0) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"wsmon did not stop: {(tmp_path / 'wsmon.err').read_text()[-2000:]}") from None


def recorded(path: Path) -> list[ev.Event]:
    reader = RecordingReader(path)
    try:
        return list(reader.iter_events())
    finally:
        reader.close()


def under_wsmon_server(
    stack: Stack, tmp_path: Path, env: dict[str, str], *, tap: bool = False
) -> tuple[Tally, list[ev.Event]]:
    """`wsmon attach --server "CMD"`: wsmon starts the server and reads its output as its log; with
    ``tap``, the clients connect through wsmon's tap as well, so every event has two witnesses."""
    port = free_port()
    record = tmp_path / "run.wsmon"
    command = shlex.join([*stack.argv, str(port)])
    args = ["--server", command, "--headless", "--record", str(record), "--duration", "120"]
    client_port = port
    if tap:
        client_port = free_port()
        args += ["--tap", f"127.0.0.1:{client_port}=ws://127.0.0.1:{port}"]
    proc = wsmon(tmp_path, env, *args)
    try:
        wait_listening(port)
        wait_listening(client_port)
        tally = asyncio.run(drive(f"ws://127.0.0.1:{client_port}{stack.path}", crash=stack.crashes))
        time.sleep(1.5)  # the last lines: read, folded (0.5 s idle) and recorded
    finally:
        proc.send_signal(signal.SIGTERM)
        finish(proc, tmp_path)
    return tally, recorded(record)


def save_servers_log(stack: Stack, tmp_path: Path, env: dict[str, str]) -> tuple[Tally, Path]:
    """The server runs on its own with its output (stdout and stderr) saved to a file."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*stack.argv, str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(port)
        tally = asyncio.run(drive(f"ws://127.0.0.1:{port}{stack.path}", crash=stack.crashes))
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(10)
    if stack.crashes:
        # A log read afterwards has no process exit in it: the connections the crash ended are not
        # in it as closes (live, wsmon sees the server exit and closes them with 1006).
        tally.closes[1006] -= 1
    return tally, log


def from_saved_log(stack: Stack, tmp_path: Path, env: dict[str, str]) -> tuple[Tally, list[ev.Event]]:
    """The saved log piped into `wsmon attach --log -` afterwards."""
    tally, log = save_servers_log(stack, tmp_path, env)
    record = tmp_path / "log.wsmon"
    with log.open("rb") as saved:
        proc = wsmon(
            tmp_path, env, "--log", "-", "--headless", "--record", str(record), "--duration", "2", stdin=saved
        )
        finish(proc, tmp_path)
    return tally, recorded(record)


def cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsmon", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )


def saved_log_reported(stack: Stack, tmp_path: Path, env: dict[str, str]) -> tuple[Tally, list[ev.Event]]:
    """The saved log as a user reads it afterwards: `wsmon report server.log` (the figures checked
    here) and `wsmon import server.log` (the events, checked by the test as every other case's)."""
    tally, log = save_servers_log(stack, tmp_path, env)
    done = cli(tmp_path, env, "report", str(log), "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report["connections"]["opened_total"] == tally.opened
    assert {c["code"]: c["count"] for c in report["close_codes"]["codes"]} == dict(+tally.closes)
    assert report["delivery"]["delivered"] == tally.delivered
    assert report["delivery"]["failed"] == tally.failures
    assert report["session"]["duration_s"] > 0  # the log's own time, not the moment it was read
    record = tmp_path / "imported.wsmon"
    done = cli(tmp_path, env, "import", str(log), "-o", str(record))
    assert done.returncode == 0, done.stderr
    return tally, recorded(record)


# How the fidelity protocol acknowledges, told to the tap ([delivery], docs/configuration.md): a "send"
# waits for its id to come back — in the "message" the server forwards to the recipient (delivered) or
# in the "error" it answers the sender with (failed); nothing within a second is a failure too.
TAP_DELIVERY_RULES = """
[delivery]
id_paths = ["payload.messageId"]
ack_paths = ["payload.messageId"]
request_types = ["send"]
ack_types = ["message", "error"]
timeout_s = 1
"""


def through_tap_alone(stack: Stack, tmp_path: Path, env: dict[str, str]) -> tuple[Tally, list[ev.Event]]:
    """`wsmon attach --tap` and nothing else: the server runs on its own, wsmon reads no log of it."""
    port, client_port = free_port(), free_port()
    server = subprocess.Popen(
        [*stack.argv, str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    record = tmp_path / "tap.wsmon"
    (tmp_path / "wsmon.toml").write_text(TAP_DELIVERY_RULES)
    try:
        wait_listening(port)
        tap = f"127.0.0.1:{client_port}=ws://127.0.0.1:{port}"
        proc = wsmon(tmp_path, env, "--tap", tap, "--headless", "--record", str(record), "--duration", "120")
        try:
            wait_listening(client_port)
            tally = asyncio.run(drive(f"ws://127.0.0.1:{client_port}{stack.path}", crash=stack.crashes))
            time.sleep(1.5)  # the last closes and traffic: reported and recorded
        finally:
            proc.send_signal(signal.SIGTERM)
            finish(proc, tmp_path)
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(10)
    return tally, recorded(record)


HOW: dict[str, Callable[[Stack, Path, dict[str, str]], tuple[Tally, list[ev.Event]]]] = {
    "server": under_wsmon_server,
    "saved-log": from_saved_log,
    "server+tap": functools.partial(under_wsmon_server, tap=True),
    "saved-log-report": saved_log_reported,
    "tap": through_tap_alone,
}


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("stack", STACKS)
def test_counts_from_the_servers_log_equal_the_clients_tally(
    stack: str, how: str, tmp_path: Path, env: dict[str, str]
) -> None:
    tally, events = HOW[how](STACKS[stack], tmp_path, env)
    state = Reducer()
    state.apply_many(events)
    got = state.state
    # One row of the tally-vs-wsmon table (shown with `pytest tests/fidelity -s`).
    codes, seen = dict(sorted((+tally.closes).items())), dict(sorted(got.close_codes.items()))
    print(
        f"\n{stack:28} {how:17} tally: opened {tally.opened} closes {codes} delivered {tally.delivered}"
        f" failed {tally.failures} | wsmon: opened {got.opened_total} closes {seen}"
        f" delivered {got.delivered} failed {got.delivery_failed}"
    )
    assert got.opened_total == tally.opened
    assert Counter(got.close_codes) == +tally.closes
    assert got.delivered == tally.delivered
    failures = [e for e in events if isinstance(e, ev.DeliveryFailed)]
    assert got.delivery_failed == tally.failures
    assert sorted(f.message_id for f in failures) == sorted(tally.failed_ids)  # no false ones
    # The failures keep their reasons, and the kept lines their ids and error text.
    assert all(f.reason for f in failures)
    if how == "tap":
        # The tap alone sees the wire, not the server: no log lines, no crash and its stack trace, and
        # a write to a closed socket only as a message never acknowledged (docs/tap.md).
        assert not [e for e in events if isinstance(e, ev.LogLine) and e.source in ("server", "log", "stdin")]
        return
    logs = [e for e in events if isinstance(e, ev.LogLine)]
    assert any(set(tally.failed_ids) & set(line.fields.values()) for line in logs) or stack.startswith(
        "fastapi"
    )
    if STACKS[stack].crashes:
        crash = [line for line in logs if "MessageDeliveryError" in line.text and "\n" in line.text]
        assert len(crash) == 1 and crash[0].level == "fatal", [line.text[:80] for line in logs]
        assert "throw new MessageDeliveryError" in crash[0].text  # the source line is part of the crash


@pytest.mark.parametrize("stack", STACKS)
def test_the_fast_path_makes_what_the_full_path_makes_of_each_servers_log(
    stack: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """Differential, on what each real stack wrote (its request lines, its library's own lines, its
    crash): every line and every folded block, through the pre-filter and the memos, makes what the
    full path makes with nothing remembered (tests/test_logparse_fastpath.py)."""
    _, log = save_servers_log(STACKS[stack], tmp_path, env)
    lines = log.read_bytes().decode("utf-8", "replace").splitlines()
    assert len(lines) >= 20, lines
    assert_same(lines)
    folder = StackFolder()
    assert_same([*folder.feed_many(lines), *folder.flush()])
