"""`wsmon serve` in a real browser: headless Chromium (Debian's package) opens the page, and the dashboard's
text is read from the terminal the page draws.

textual-serve draws into a canvas through xterm.js, so the text is in no DOM node. The test reads xterm's
own buffer through the DevTools protocol: before the page's scripts run, a setter on Object.prototype
catches the object textual-serve's page assigns to ``this.terminal`` (its constructor does
``this.terminal = new Terminal(...)``; read in textual_serve/static/js/textual.js) and keeps it on window.
If a textual-serve release renames that property, the test fails saying the terminal was not found.

Without Chromium the test skips locally and fails in CI (CI set), as tests do for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import websockets
from helpers import clean_env, free_port, run_wsmon, wait_until
from services import demo_server_process, port_open, unavailable

from wsmon.store.reader import RecordingReader

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import make_recording

CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    window.__wsmonTerminal = value;
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
  },
});
"""

READ_SCREEN = """
(() => {
  const term = window.__wsmonTerminal;
  if (!term || !term.buffer) return null;
  const buffer = term.buffer.active, lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
})()
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    assert path is not None
    return path


class Served(NamedTuple):
    address: str
    proc: subprocess.Popen[str]


@contextlib.contextmanager
def serving(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`wsmon serve ARGS` running; yields the address it printed. Leaving stops it as Ctrl+C would
    (SIGINT to its process group), then waits for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsmon", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " on http://127.0.0.1:" in line, (line, proc.stderr and proc.stderr.read())
        address = line.split(" on http", 1)[1].split()[0]
        address = "http" + address
        port = int(address.rsplit(":", 1)[1])
        wait_until(lambda: port_open("127.0.0.1", port), 15, f"wsmon serve on {address}")
        yield Served(address, proc)
    finally:
        # The process group: the server, the session's children and every dashboard it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def browser() -> Iterator[str]:
    """Headless Chromium with DevTools on a free port; yields the DevTools websocket of its blank page."""
    binary = chromium()
    port = free_port()
    profile = tempfile.mkdtemp(prefix="wsmon-chromium-")
    proc = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--window-size=1400,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "Chromium's DevTools port")
        pages: list[dict[str, str]] = []

        def page_listed() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
                pages[:] = [t for t in json.load(answer) if t.get("type") == "page"]
            return bool(pages)

        wait_until(page_listed, 30, "Chromium's page")
        yield pages[0]["webSocketDebuggerUrl"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


def second_page(devtools: str) -> str:
    """A second tab in the same Chromium; its DevTools websocket."""
    port = devtools.split("://", 1)[1].split("/", 1)[0]
    request = urllib.request.Request(f"http://{port}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["webSocketDebuggerUrl"])


async def screen_text(devtools: str, address: str, wanted: list[str], timeout: float = 60.0) -> str:
    """Open ADDRESS in the page and return the terminal's text once every WANTED string is on it."""
    async with websockets.connect(devtools, max_size=None) as page:
        ids = iter(range(1, 1_000_000))

        async def call(method: str, **params: object) -> dict[str, object]:
            number = next(ids)
            await page.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(await page.recv())
                if message.get("id") == number:
                    assert "error" not in message, message
                    return message["result"]

        await call("Page.enable")
        await call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
        await call("Page.navigate", url=address)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            result = await call("Runtime.evaluate", expression=READ_SCREEN, returnByValue=True)
            text = result["result"].get("value") or ""  # type: ignore[union-attr]
            if all(word in text for word in wanted):
                return text
            await asyncio.sleep(0.5)
        found = "the terminal was not found on the page" if not text else f"the screen was:\n{text}"
        raise AssertionError(f"{wanted} not all on the browser's screen after {timeout} s; {found}")


@pytest.mark.slow
def test_serve_file_shows_the_replay_in_the_browser(tmp_path: Path) -> None:
    recording = make_recording.write_all(tmp_path)["full"]
    with serving(str(recording)) as served, browser() as devtools:
        text = asyncio.run(screen_text(devtools, served.address, ["wsmon replay · full.wsmon", "REPLAY"]))
    assert "Connections" in text and "Close codes" in text


@pytest.mark.slow
def test_serve_live_shows_the_attached_targets_in_the_browser() -> None:
    with demo_server_process() as demo_port:
        url = f"ws://127.0.0.1:{demo_port}/ws"
        with serving(url, "--port", str(demo_port)) as served, browser() as devtools:
            # live: a probe connection of the one session serve runs, drawn on the viewer's screen
            wanted = [f"wsmon attach · {url} (shared)", "LIVE", "◆ probe1#"]
            text = asyncio.run(screen_text(devtools, served.address, wanted))
    assert "Connections" in text


EVENTS = re.compile(r"events ([0-9][0-9,.]*k?)")
CONN_ID = re.compile(r"(?:tap:|probe)\d+(?:#\d+)?")  # the demo's clients seen through the tap; wsmon's probes


@pytest.mark.slow
def test_serve_without_record_deletes_its_temporary_recording_when_it_stops(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with serving("--demo", "--clients", "2", env=clean_env(tmp_path, TMPDIR=str(scratch))) as served:
        wait_until(lambda: len(list(scratch.glob("wsmon-serve-*/shared.wsmon"))) == 1, 15, "the recording")
        (recording,) = scratch.glob("wsmon-serve-*/shared.wsmon")
        wait_until(lambda: RecordingReader(recording).refresh() > 0, 30, "recorded events")
    out, err = served.proc.communicate(timeout=30)
    assert served.proc.returncode in (0, 1) and "Close codes" in out  # the session's report
    assert "recorded to" not in err and list(scratch.iterdir()) == []


def table_row(line: str) -> str:
    """A row of the connections table without its border and the scrollbar's glyphs beside it."""
    return " ".join(word for word in line.strip("│").split() if not set(word) <= set("▁▂▃▄▅▆▇█│"))


@pytest.mark.slow
def test_serve_demo_shows_one_session_to_two_browser_tabs() -> None:
    # The session ends by itself (--duration) and serve keeps serving it: both tabs end on its last
    # state, so what they show can be compared whole, not at two moments of a moving session.
    with serving("--demo", "--clients", "5", "--duration", "6") as served, browser() as devtools:
        other = second_page(devtools)

        async def both() -> list[str]:
            wanted = ["wsmon demo · ws://127.0.0.1:", "(shared)", "ended: the session closed its recording"]
            return list(
                await asyncio.gather(
                    screen_text(devtools, served.address, wanted), screen_text(other, served.address, wanted)
                )
            )

        texts = asyncio.run(both())
    counts = [EVENTS.findall(text) for text in texts]
    ids = [set(CONN_ID.findall(text)) for text in texts]
    rows = [
        sorted(table_row(line) for line in text.splitlines() if CONN_ID.search(line) and "CLOSED" in line)
        for text in texts
    ]
    assert counts[0] and counts[0] == counts[1], counts
    assert len(ids[0]) >= 5 and ids[0] == ids[1], texts[0]
    assert rows[0] and rows[0] == rows[1]  # each connection's messages, close code and who closed
    assert "Close codes" in texts[0]


@pytest.mark.slow
def test_serve_runs_what_starts_or_records_once_and_keeps_the_record(tmp_path: Path) -> None:
    """--record, --prometheus and alerts run once, in the one session; the recording is kept and
    the session's report printed when serve stops."""
    metrics = free_port()
    args = ["--demo", "--clients", "3", "--record", "kept.wsmon", "--prometheus", f"127.0.0.1:{metrics}"]
    with serving(*args, "--alert-cmd", "true", cwd=tmp_path) as served:
        wait_until(lambda: port_open("127.0.0.1", metrics), 15, "serve's Prometheus endpoint")
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as answer:
            assert b"wsmon_" in answer.read()
        wait_until(lambda: RecordingReader(tmp_path / "kept.wsmon").refresh() > 0, 30, "recorded events")
    out, err = served.proc.communicate(timeout=30)
    assert "Verdict" in out or "verdict" in out.lower(), out
    assert "recorded to kept.wsmon" in err
    kept = RecordingReader(tmp_path / "kept.wsmon")
    assert kept.closed_wall() is not None and kept.event_count > 0
    assert kept.header.extra["title"].startswith("demo · ws://127.0.0.1:")


@pytest.mark.parametrize(
    ("serve_args", "same_as"),
    [
        (["/nonexistent.wsmon"], ["replay", "/nonexistent.wsmon"]),
        (["x.wsmon", "--speed", "100"], ["replay", "x.wsmon", "--speed", "100"]),
        ([], ["attach"]),
        (["--bogus"], ["attach", "--bogus"]),
        (["--demo", "--clients", "0"], ["demo", "--clients", "0"]),
        (
            ["ws://127.0.0.1:1/ws", "--limit", "nonsense"],
            ["attach", "ws://127.0.0.1:1/ws", "--limit", "nonsense"],
        ),
    ],
)
def test_serve_gives_the_errors_replay_and_attach_give(
    tmp_path: Path, serve_args: list[str], same_as: list[str]
) -> None:
    env = clean_env(tmp_path)
    served = run_wsmon("serve", *serve_args, cwd=tmp_path, env=env, timeout=30)
    direct = run_wsmon(*same_as, cwd=tmp_path, env=env, timeout=30)
    assert (served.returncode, served.stderr) == (2, direct.stderr)
    assert direct.returncode == 2 and served.stdout == ""


@pytest.mark.parametrize(
    "target", [["ws://127.0.0.1:1/ws"], ["--demo"], ["x.wsmon"]], ids=["attach", "demo", "replay"]
)
def test_serve_refuses_headless_in_one_line(tmp_path: Path, target: list[str]) -> None:
    make_recording.write_all(tmp_path)["full"].rename(tmp_path / "x.wsmon")
    result = run_wsmon("serve", *target, "--headless", cwd=tmp_path, env=clean_env(tmp_path), timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("wsmon: error: --headless") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("target", [["ws://127.0.0.1:1/ws"], ["--demo"]], ids=["attach", "demo"])
def test_serve_refuses_a_record_that_exists_as_attach_and_demo_do(tmp_path: Path, target: list[str]) -> None:
    (tmp_path / "x.wsmon").write_bytes(b"someone's")
    env = clean_env(tmp_path)
    served = run_wsmon("serve", *target, "--record", "x.wsmon", cwd=tmp_path, env=env, timeout=30)
    verb = ["demo"] if target == ["--demo"] else ["attach", *target]
    direct = run_wsmon(*verb, "--record", "x.wsmon", cwd=tmp_path, env=env, timeout=30)
    assert (served.returncode, served.stderr, served.stdout) == (2, direct.stderr, "")
    assert "already exists" in served.stderr and (tmp_path / "x.wsmon").read_bytes() == b"someone's"


def test_serve_listens_elsewhere_only_when_told_it_is_public(tmp_path: Path) -> None:
    result = run_wsmon("serve", "--web-host", "0.0.0.0", "ws://127.0.0.1:1/ws", env=clean_env(tmp_path))
    assert result.returncode == 2
    assert "--public" in result.stderr and result.stdout == ""
