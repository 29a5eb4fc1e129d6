"""Security checks (issue 10): a canary secret put into every entry point wsmon reads — flags, the
environment, ``.env``, ``wsmon.toml``, the ``--server`` command line, the server's log lines, the headers,
cookies and query of a client going through the tap — appears in no screen, recording (raw or
exported), report (every format), alert payload or metrics scrape. Recordings are 0600; the tap and
the Prometheus exporter listen on 127.0.0.1 unless told otherwise.

Everything is real: ``wsmon attach`` as a subprocess (headless, and the dashboard under tmux), a real
websockets server started by ``--server``, a real client through the real tap, the machine's Redis
and PostgreSQL, the exporter scraped over HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from helpers import free_port, wait_until
from services import port_open
from websockets.asyncio.client import connect

from wsmon.config import parse_tap_spec
from wsmon.outputs.prometheus import parse_listen_address

CANARY = "CNRY7q9zK"  # one token, no character any encoding would change

SERVER = textwrap.dedent(
    """
    import argparse, asyncio, json, sys
    from websockets.asyncio.server import serve

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--token")
    args = parser.parse_args()

    def log(line):
        print(line, flush=True)

    async def handler(ws):
        log(f"client connected, auth check password={args.token}")
        log(f"upstream call with Authorization: Bearer {args.token}")
        log(json.dumps({"level": "warn", "msg": "db retry", "dsn": f"postgresql://app:{args.token}@db/x"}))
        log(f"error: failed to send message m1 to device d7: token={args.token} rejected")
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(handler, "127.0.0.1", args.port):
            log(f"listening on ws://127.0.0.1:{args.port}/?token={args.token}")
            await asyncio.Future()

    asyncio.run(main())
    """
)


def _setup(tmp_path: Path) -> tuple[list[str], dict[str, str], dict[str, int]]:
    """The working directory (.env, wsmon.toml, server.py) and the attach command with a canary in
    every entry point."""
    ports = {"server": free_port(), "tap": free_port(), "metrics": free_port(), "health": free_port()}
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / ".env").write_text(f"REDIS_URL=redis://:{CANARY}@127.0.0.1:6379/0\n")
    (tmp_path / "wsmon.toml").write_text(
        f'[targets]\npostgres = "postgresql://postgres:{CANARY}@127.0.0.1:5432/test?sslmode=disable"\n'
    )
    server = ports["server"]
    env = {
        **os.environ,
        "WSMON_URL": f"ws://127.0.0.1:{server}/?token={CANARY}",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    for key in ("REDIS_URL", "DATABASE_URL"):
        env.pop(key, None)  # from .env and wsmon.toml
    argv = [
        sys.executable, "-m", "wsmon", "attach",
        "--server", f"{sys.executable} server.py --port {server} --token {CANARY}",
        "--tap", f"{ports['tap']}=ws://127.0.0.1:{server}/?access_token={CANARY}",
        "--health", f"http://monitor:{CANARY}@127.0.0.1:{ports['health']}/health?api_key={CANARY}",
        "--header", f"X-Device-Key: {CANARY}",  # the probes' own header
        "--prometheus", str(ports["metrics"]),
        "--alert-cmd", "cat >> alerts.jsonl",
        "--limit", "rss_mib=1",  # the server is over it at once: an alert fires
        "--interval", "0.5",
    ]  # fmt: skip
    return argv, env, ports


async def _client_through_the_tap(port: int) -> None:
    headers = {"Authorization": f"Bearer {CANARY}", "Cookie": f"session={CANARY}; theme=dark"}
    uri = f"ws://127.0.0.1:{port}/live?token={CANARY}&room=7"
    async with connect(uri, additional_headers=headers, open_timeout=10) as ws:
        for n in range(5):
            await ws.send(f'{{"id": {n}, "password": "{CANARY}"}}')
            await ws.recv()
        await asyncio.sleep(1.0)


def _listening_hosts(pid: int) -> set[str]:
    process = psutil.Process(pid)
    return {c.laddr.ip for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _assert_clean(where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    assert CANARY.encode() not in data, f"the canary leaked into {where}"


@pytest.mark.timeout(180)
def test_a_canary_secret_in_every_entry_point_reaches_no_output(tmp_path: Path) -> None:
    argv, env, ports = _setup(tmp_path)
    record = tmp_path / "run.wsmon"
    proc = subprocess.Popen(
        [*argv, "--headless", "--duration", "14", "--record", str(record)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", ports["tap"]), 30, "the tap listening")
        wait_until(lambda: port_open("127.0.0.1", ports["server"]), 30, "the server listening")
        asyncio.run(_client_through_the_tap(ports["tap"]))
        wait_until(lambda: port_open("127.0.0.1", ports["metrics"]), 10, "the exporter listening")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=10) as reply:
            metrics = reply.read()
        # The tap and the exporter were given ports only: they listen on loopback and nowhere else.
        assert _listening_hosts(proc.pid) == {"127.0.0.1"}
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"wsmon_" in metrics  # a real scrape, not an empty page
    _assert_clean("the metrics scrape", metrics)
    _assert_clean("the headless report (stdout)", stdout)
    _assert_clean("wsmon's stderr", stderr)
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    _assert_clean("the recording's raw bytes", record.read_bytes())

    exported = subprocess.run(
        [sys.executable, "-m", "wsmon", "export", "--jsonl", str(record)],
        cwd=tmp_path, env=env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    _assert_clean("the export", exported.stdout + exported.stderr)
    # The export shows the entry points were really read: each target and the server's log lines.
    for seen in (
        '"kind":"redis"',
        '"kind":"postgres"',
        '"kind":"server"',
        "auth check password=***",
        "Authorization: ***",
    ):
        assert seen.encode() in exported.stdout.replace(b'": "', b'":"'), seen
    assert b'"source":"tap"' in exported.stdout.replace(b'": "', b'":"')  # the tapped client was seen
    for fmt in ("text", "json", "markdown", "junit"):
        report = subprocess.run(
            [sys.executable, "-m", "wsmon", "report", "--format", fmt, str(record)],
            cwd=tmp_path, env=env, capture_output=True, timeout=60,
        )  # fmt: skip
        assert report.stdout, f"an empty {fmt} report: {report.stderr!r}"
        _assert_clean(f"the {fmt} report", report.stdout + report.stderr)
    alerts = tmp_path / "alerts.jsonl"
    assert alerts.exists() and alerts.stat().st_size > 0, "no alert was delivered"
    _assert_clean("an alert payload", alerts.read_bytes())


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")
@pytest.mark.timeout(180)
def test_the_dashboard_shows_no_canary_on_any_panel(tmp_path: Path) -> None:
    argv, env, ports = _setup(tmp_path)
    session = f"wsmon-canary-{os.getpid()}"
    script = tmp_path / "run.sh"
    exports = " ".join(
        f"{key}={_quote(value)}" for key, value in env.items() if key in ("WSMON_URL", "PYTHONPATH")
    )
    script.write_text(
        f"cd {_quote(str(tmp_path))} && env -u REDIS_URL -u DATABASE_URL -u COLUMNS -u LINES {exports} "
        + " ".join(_quote(a) for a in [*argv, "--record", str(tmp_path / "tui.wsmon")])
        + "\n"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60", "sh", str(script)], check=True
    )
    # Wide enough that no address is cut before a secret in it would show.
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", "220", "-y", "60"], check=False)
    screens: list[str] = []
    try:
        wait_until(lambda: port_open("127.0.0.1", ports["tap"]), 30, "the tap listening")
        wait_until(lambda: port_open("127.0.0.1", ports["server"]), 30, "the server listening")
        asyncio.run(_client_through_the_tap(ports["tap"]))
        time.sleep(2.0)
        for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "1"):
            subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
            time.sleep(0.8)
            screens.append(_capture(session))
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_until(lambda: not _alive(session), 30, "the dashboard quitting")
    finally:
        if _alive(session):
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    seen = "\n".join(screens)
    assert "redis" in seen.lower() and "postgres" in seen.lower(), seen[-3000:]  # a real dashboard
    _assert_clean("the dashboard", seen)
    _assert_clean("the recording", (tmp_path / "tui.wsmon").read_bytes())


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
    ).stdout


def _alive(session: str) -> bool:
    return subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0


def test_the_tap_and_the_exporter_default_to_loopback() -> None:
    assert parse_tap_spec("9001=ws://127.0.0.1:3001/").listen.host == "127.0.0.1"
    assert parse_tap_spec(":9001=ws://127.0.0.1:3001/").listen.host == "127.0.0.1"
    assert parse_listen_address("9464")[0] == "127.0.0.1"
    assert parse_listen_address(":9464")[0] == "127.0.0.1"


def test_wsmon_run_masks_the_test_command_in_its_header_marker_report_and_output(tmp_path: Path) -> None:
    record = tmp_path / "run.wsmon"
    test_cmd = [sys.executable, "-c", "print('tests ran')", "--token", CANARY, f"PGPASSWORD={CANARY}"]
    redis = "redis://127.0.0.1:6379/0"
    output = tmp_path / "tests.log"
    wsmon = [sys.executable, "-m", "wsmon", "run", "--redis", redis, "--record", str(record)]
    ran = subprocess.run(
        [*wsmon, "--test-output", str(output), "--", *test_cmd],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert b"tests ran" in output.read_bytes(), ran.stderr  # the test command really ran
    # The tests' own output may hold their secrets: private like the recording.
    assert stat.S_IMODE(output.stat().st_mode) == stat.S_IMODE(record.stat().st_mode) == 0o600
    _assert_clean("wsmon run's output", ran.stdout + ran.stderr)
    exported = subprocess.run(
        [sys.executable, "-m", "wsmon", "export", "--jsonl", str(record)], capture_output=True, timeout=60
    )
    assert b"tests started: " in exported.stdout and b"--token" in exported.stdout
    _assert_clean("the run's recording", exported.stdout + record.read_bytes())
    for fmt in ("text", "json", "markdown", "junit"):
        report = subprocess.run(
            [sys.executable, "-m", "wsmon", "report", "--format", fmt, str(record)],
            capture_output=True,
            timeout=60,
        )
        _assert_clean(f"the run's {fmt} report", report.stdout + report.stderr)


def test_wsmon_check_shows_no_canary(tmp_path: Path) -> None:
    argv, env, _ports = _setup(tmp_path)
    cut = argv.index("--prometheus")  # check takes the targets, not the outputs
    checked = subprocess.run(
        [*argv[:3], "check", *argv[4:cut]], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert b"postgres" in checked.stdout and b"redis" in checked.stdout, checked.stderr
    _assert_clean("wsmon check's table", checked.stdout + checked.stderr)
