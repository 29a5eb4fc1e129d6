"""The probe's timings against a real echo server in another process, while the session's event loop
is blocked (as the dashboard's start-up blocks it), and the probe's periodic reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_probe import of, run_until

from wsmon.attach import _probe_config
from wsmon.config import ConfigError, load_settings, resolve_options
from wsmon.core import events as ev
from wsmon.sources.probe import ProbeConfig, ProbeSource

ECHO_SERVER = Path(__file__).with_name("fixtures") / "echo_server.py"
STALL_S = 0.25  # each time the session's loop is blocked
EVERY_S = 0.001  # and how little it runs in between


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, str(ECHO_SERVER)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready "), f"echo server did not start: {line!r}"
        yield int(line.split()[1])
    finally:
        proc.kill()
        proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


class LoopBlocker:
    """Blocks the running loop for STALL_S again and again, with only EVERY_S free in between: the
    loop is busy more than 99 % of the time, as during a dashboard's start-up."""

    def __init__(self) -> None:
        self.stalls = 0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._block)

    def _block(self) -> None:
        time.sleep(STALL_S)
        self.stalls += 1
        self._handle = asyncio.get_running_loop().call_later(EVERY_S, self._block)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def connect_ms(events: list[ev.Event]) -> list[float]:
    return [e.ms for e in of(events, ev.LatencySample) if e.kind == "connect"]


async def test_a_blocked_session_loop_does_not_stretch_the_measured_handshake() -> None:
    with echo_server() as port:
        probe = ProbeSource(
            ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=2, reconnect_every=0.2)
        )
        blocker = LoopBlocker()
        blocker.start()  # blocking from before the probe's first handshake
        try:
            events = await run_until(probe, lambda es: len(connect_ms(es)) >= 6, timeout=30.0)
        finally:
            blocker.stop()
    handshakes = sorted(connect_ms(events))
    print(f"{blocker.stalls} stalls; handshakes {[round(h, 1) for h in handshakes]} ms")
    assert blocker.stalls >= 3  # the loop really was blocked while the probes connected
    # Each handshake took place while the session's loop was blocked most of the time; measured on
    # that loop, each would include up to a whole stall (250 ms).
    assert handshakes[len(handshakes) // 2] < 50.0
    assert handshakes[-1] < STALL_S * 1000.0
    pings = [e.ms for e in of(events, ev.LatencySample) if e.kind == "ping"]
    assert pings and max(pings) < STALL_S * 1000.0


async def test_probes_reconnect_every_interval_and_close_normally_each_time() -> None:
    with echo_server() as port:
        probe = ProbeSource(
            ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=1, reconnect_every=0.3)
        )
        started = time.monotonic()
        events = await run_until(probe, lambda es: len(of(es, ev.ConnectionOpened)) >= 4, timeout=10.0)
        elapsed = time.monotonic() - started
    opened = of(events, ev.ConnectionOpened)
    closed = [c for c in of(events, ev.ConnectionClosed) if c.conn != opened[-1].conn]
    assert len(opened) >= 4 and len(closed) >= 3
    assert all(c.own and c.code == 1000 and c.closed_by == "client" for c in closed), closed
    assert all(0.25 <= c.duration_s <= 1.0 for c in closed), [c.duration_s for c in closed]
    assert elapsed >= 0.9  # three planned lifetimes of 0.3 s
    # Every handshake is the probe's own: its latency is marked so, never the users' connect time.
    assert all(e.own for e in of(events, ev.LatencySample))
    assert len(connect_ms(events)) >= 4
    assert not of(events, ev.TargetDown)


async def test_reconnect_every_zero_keeps_one_connection() -> None:
    with echo_server() as port:
        probe = ProbeSource(
            ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=1, reconnect_every=0)
        )
        events = await run_until(
            probe, lambda es: sum(e.kind == "ping" for e in of(es, ev.LatencySample)) >= 10, timeout=10.0
        )
    assert len(of(events, ev.ConnectionOpened)) == 1


async def test_stopping_closes_the_probe_connections_before_run_returns() -> None:
    with echo_server() as port:
        probe = ProbeSource(ProbeConfig(url=f"ws://127.0.0.1:{port}/", interval=0.05, count=2))
        events = await run_until(probe, lambda es: len(of(es, ev.ConnectionOpened)) >= 2, timeout=10.0)
    closed = of(events, ev.ConnectionClosed)
    assert len(closed) == 2
    assert all(c.code == 1000 and c.reason == "wsmon stopping" for c in closed), closed


def test_reconnect_every_comes_from_the_flag_then_wsmon_toml_and_bad_values_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user"))
    assert resolve_options({}, load_settings(cwd=tmp_path)).reconnect_every == 30.0
    (tmp_path / "wsmon.toml").write_text('[targets]\nurl = "ws://h:1/"\n[probe]\nreconnect_every = 5\n')
    options = resolve_options({}, load_settings(cwd=tmp_path))
    assert options.reconnect_every == 5.0
    assert _probe_config(options).reconnect_every == 5.0
    assert resolve_options({"reconnect_every": 0}, load_settings(cwd=tmp_path)).reconnect_every == 0.0
    (tmp_path / "wsmon.toml").write_text("[probe]\nreconnect_every = -1\n")
    with pytest.raises(
        ConfigError, match=r"\[probe\]\.reconnect_every: expected a positive number of seconds"
    ):
        resolve_options({}, load_settings(cwd=tmp_path))
