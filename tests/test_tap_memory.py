"""The tap's passive parser holds a bounded amount per direction (issue 10 item 3): an upstream that never
answers the handshake, or answers with an endless head, no longer makes the tap keep every byte the client
sends. Past the cap parsing stops for that connection, forwarding goes on, and a warning says so."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from helpers import free_port

from tests.test_tap import Recorder
from wsmon.core import events as ev
from wsmon.sources.delivery import DeliveryRules
from wsmon.sources.tap_relays import TapRelays
from wsmon.sources.wire import MAX_HELD_HANDSHAKE

UPGRADE = (
    b"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
CHUNK = b"\x81" * (1024 * 1024)


class Upstream:
    """A TCP server that reads and counts every byte and answers with ``answer`` (or nothing)."""

    def __init__(self, answer: bytes = b"") -> None:
        self.answer = answer
        self.received = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.answer:
            writer.write(self.answer)
        with contextlib.suppress(OSError, asyncio.CancelledError):  # the test ends
            while data := await reader.read(1 << 20):
                self.received += len(data)
        writer.close()


@contextlib.asynccontextmanager
async def upstream_server(answer: bytes = b"") -> AsyncIterator[Upstream]:
    upstream = Upstream(answer)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    upstream.port = server.sockets[0].getsockname()[1]
    async with server:
        yield upstream


async def send_through(port: int, megabytes: int, upstream: Upstream, each: Callable[[], None]) -> int:
    """Send the upgrade request, take in the upstream's answer, then send ``megabytes`` MiB; return
    once the upstream has them all."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    total = len(UPGRADE) + megabytes * len(CHUNK)
    writer.write(UPGRADE)
    if upstream.answer:
        await reader.readexactly(len(upstream.answer))
    for _ in range(megabytes):
        writer.write(CHUNK)
        await writer.drain()
        each()
    async with asyncio.timeout(60):
        while upstream.received < total:
            await asyncio.sleep(0.02)
            each()
    writer.close()
    return total


@contextlib.asynccontextmanager
async def relays_in_process(upstream_port: int) -> AsyncIterator[tuple[TapRelays, int, Recorder]]:
    """A tap worker's relays in this process, on a real listener: their parsers can be looked into."""
    recorder = Recorder()
    relays = TapRelays(
        recorder, target="tap", upstream_url=f"ws://127.0.0.1:{upstream_port}", rules=DeliveryRules()
    )
    server = await asyncio.get_running_loop().create_server(relays.protocol, "127.0.0.1", 0)
    async with server:
        yield relays, server.sockets[0].getsockname()[1], recorder
        relays.abort_all("test ends")


def largest_held(relays: TapRelays) -> int:
    directions = (d for p in relays.pairs for d in (p.wire.inbound, p.wire.outbound))
    return max((len(d.reader.buffer) for d in directions), default=0)


def stopped_warnings(recorder: Recorder) -> list[str]:
    return [e.text for e in recorder.of(ev.LogLine) if "stopped parsing this connection" in e.text]


async def run_case(answer: bytes, megabytes: int) -> tuple[int, int, Upstream, Recorder]:
    async with upstream_server(answer) as upstream, relays_in_process(upstream.port) as (relays, port, rec):
        most = 0

        def sample() -> None:
            nonlocal most
            most = max(most, largest_held(relays))

        total = await send_through(port, megabytes, upstream, sample)
        await rec.until(lambda r: bool(stopped_warnings(r)))
        return most, total, upstream, rec


async def test_a_silent_upstream_does_not_make_the_tap_hold_what_the_client_sends() -> None:
    most, total, upstream, rec = await run_case(b"", 24)
    assert upstream.received == total  # every byte forwarded, in spite of the parser stopping
    assert most <= MAX_HELD_HANDSHAKE + len(CHUNK), most
    [warning] = stopped_warnings(rec)
    assert "has not answered the handshake" in warning and "still forwarding" in warning


async def test_a_response_head_over_64_kib_stops_parsing_and_forwarding_goes_on() -> None:
    endless_head = b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: " + b"a" * (MAX_HELD_HANDSHAKE + 4096)
    most, total, upstream, rec = await run_case(endless_head, 24)
    assert upstream.received == total
    assert most <= MAX_HELD_HANDSHAKE + len(CHUNK), most
    [warning] = stopped_warnings(rec)
    assert "response head is over 64 KiB" in warning


# --- the real command: wsmon attach --tap as a subprocess, its RSS read from /proc -------------------


def _rss_kib(pid: int) -> int:
    """The resident memory of ``pid`` and its children (wsmon's tap workers): what wsmon holds."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if int(entry.name) == pid or parent == pid:
                status = (entry / "status").read_text().splitlines()
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total


async def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "wsmon exited"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the tap never listened on {port}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
async def test_120_mib_to_a_silent_upstream_through_wsmon_attach_keeps_its_rss_bounded(
    tmp_path: Path,
) -> None:
    async with upstream_server() as upstream:
        port = free_port()
        record = tmp_path / "tap.wsmon"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wsmon",
                "attach",
                "--headless",
                "--duration",
                "120",
                "--tap",
                f"127.0.0.1:{port}=ws://127.0.0.1:{upstream.port}",
                "--record",
                str(record),
                "--interval",
                "0.5",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        try:
            await _wait_listening(port, proc)
            upstream.received = 0  # the readiness check's own connection
            await asyncio.sleep(1.0)
            before = _rss_kib(proc.pid)
            most = [before]
            total = await send_through(port, 120, upstream, lambda: most.append(_rss_kib(proc.pid)))
            grown_mib = (max(most) - before) / 1024
            assert upstream.received >= total  # forwarding went on to the last byte
            # Before the cap the tap held all 120 MiB; now at most a 64 KiB head, a 1 MiB read and
            # the transports' buffers.
            print(f"RSS grew {grown_mib:.1f} MiB while 120 MiB passed through")
            assert grown_mib < 40, f"RSS grew {grown_mib:.0f} MiB while 120 MiB passed through"
        finally:
            proc.send_signal(2)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    exported = subprocess.run(
        [sys.executable, "-m", "wsmon", "export", "--jsonl", str(record)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert "stopped parsing this connection (still forwarding)" in exported.stdout + exported.stderr
