"""Fault soak: wsmon attached to a WebSocket server, a private Redis and a private PostgreSQL while a
schedule kills -9 and restarts each of them, and clients vanish without close frames.

    python bench/soak.py                 # 300 s (the bench)
    python bench/soak.py --ci            # 60 s (what tests/test_soak.py runs in CI)
    python bench/soak.py --duration 120 --json result.json

Loopback only, bounded in time. What runs:

- a private ``redis-server`` and a private PostgreSQL (initdb + postgres in a temp dir), each on a free
  port, from tests/services.py;
- a WebSocket echo server (this file, ``--echo-server PORT``) in its own process, so it can be killed;
- ``wsmon attach ws://SERVER --tap TAP=ws://SERVER --redis … --postgres … --interval I --headless
  --duration S --record FILE``;
- 100 client connections (``--connections``) through the tap at 1,000 messages/s in all (``--rate``):
  text and binary messages, some fragmented, some compressed; each connection lives a few seconds, then
  waits for its last echoes and closes normally, and a new one takes its place. Every echo is compared
  with what was sent, byte for byte (and sha256 per connection and direction);
- the fault schedule: kill -9 of the server, the Redis and the PostgreSQL in turn, each restarted on its
  port after ``--outage`` seconds; and every ``--drop-every`` seconds a client connection dropped without
  a close frame by closing its TCP socket (alternately with a FIN and with a reset).

At the end the recording is read with wsmon's own reader and checked: for each injected outage a
TargetDown within two intervals of the kill and a TargetUp within two intervals of the restart, from
each watcher of that target; for each dropped client a 1006 close that names the client; wsmon exited
by itself with 0 or 1 and no traceback; no source of wsmon failed; zero bytes altered through the tap;
wsmon's RSS once its State has filled (80 s) and at the end. Exit 0 when every check passed, 1
otherwise, 2 when a required program (redis-server, initdb, postgres, pg_isready) is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # services.py: the private Redis and PostgreSQL helpers
sys.path.insert(0, str(ROOT))

LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a TCP reset
SERVER_WATCHERS = ("websocket", "tap", "process")  # wsmon's targets that must see the server go
WATCHERS = {"server": SERVER_WATCHERS, "redis": ("redis",), "postgres": ("postgres",)}
DRAIN_TIMEOUT_S = 5.0  # a closing connection waits this long for its last echoes
RECONNECT_PAUSE_S = 0.2
# wsmon's State fills for about this long: latency windows of 60 s (trimmed at 75 s) and the 500-1,000
# closed connections it keeps. Slower bounded things (2,000 relayed peers, SQLite's 2 MB page cache)
# level off over minutes, so flatness is judged on the window's second half: RSS may not grow more than
# FLAT_GROWTH_MIB there. The heap leak fixed in wsmon/memory.py grew 0.11 MiB/s: +11 MiB a 100 s half.
STATE_FILL_S = 80.0
FLAT_GROWTH_MIB = 3.0
SHORT_RUN_BOUND_MIB = 16.0  # a run shorter than the fill: a bound on the fill, not flatness


# --- the WebSocket server under test ---------------------------------------------------------------


async def serve_echo(port: int) -> None:
    """Echo every message back as it came: what the client compares."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def echo(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async with serve(echo, "127.0.0.1", port, max_size=None):
        await asyncio.Future()


class EchoServer:
    """The echo server as a child process of its own, restartable on the same port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import services

        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--echo-server", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        services.wait_until(lambda: services.port_open("127.0.0.1", self.port), 30, "the echo server")

    def kill(self) -> None:
        import services

        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait(10)
        services.wait_until(lambda: not services.port_open("127.0.0.1", self.port), 10, "the port to close")

    def close(self) -> None:
        self.kill()


# --- faults ----------------------------------------------------------------------------------------


@dataclass
class Outage:
    target: str  # "server", "redis" or "postgres"
    killed: float  # monotonic, just before the SIGKILL
    back: float | None = None  # monotonic, once the restarted server answered


@dataclass
class Drop:
    port: int  # the client's local port: the tap's peer for this connection
    at: float
    how: str  # "fin" or "reset"


class Faults:
    """The kill -9 + restart of each server, in turn, on a schedule."""

    def __init__(self, servers: dict[str, Any], outage_s: float) -> None:
        self.servers = servers
        self.outage_s = outage_s
        self.outages: list[Outage] = []

    def inject(self, target: str) -> None:
        """Blocking: run in a thread, so the clients keep going meanwhile."""
        server = self.servers[target]
        outage = Outage(target, killed=time.monotonic())
        self.outages.append(outage)
        server.kill()
        time.sleep(self.outage_s)
        server.start()
        outage.back = time.monotonic()


# --- clients ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    connections: int = 0
    connect_failures: int = 0
    sent: int = 0
    echoed: int = 0
    compared_connections: int = 0
    compared_messages: int = 0
    compared_bytes: int = 0
    altered_messages: int = 0
    altered_bytes: int = 0
    digest_mismatches: int = 0
    lost_echoes: int = 0  # closed normally but echoes missing
    cut_by_server_kill: int = 0
    dropped_by_us: int = 0
    cut_unexplained: int = 0
    unexplained: list[str] = field(default_factory=list)


def _altered(sent: bytes, got: bytes) -> int:
    return sum(a != b for a, b in zip(sent, got, strict=False)) + abs(len(sent) - len(got))


def _as_bytes(message: str | bytes) -> bytes:
    return message.encode() if isinstance(message, str) else bytes(message)


class Connection:
    """One client connection: what it sent, what came back, and how it ended."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.opened = time.monotonic()
        self.port = int(ws.local_address[1])
        self.pending: deque[str | bytes] = deque()
        self.sent_digest = hashlib.sha256()
        self.echo_digest = hashlib.sha256()
        self.sent = self.echoed = self.bytes = 0
        self.altered_messages = self.altered_bytes = 0
        self.dropped = False
        self.closing = False  # waiting for its last echoes or closing: not one to drop any more

    def record_sent(self, message: str | bytes) -> None:
        data = _as_bytes(message)
        self.sent_digest.update(struct.pack("!?I", isinstance(message, str), len(data)) + data)
        self.pending.append(message)
        self.sent += 1
        self.bytes += len(data)

    def record_echo(self, message: str | bytes) -> None:
        data = _as_bytes(message)
        self.echo_digest.update(struct.pack("!?I", isinstance(message, str), len(data)) + data)
        self.echoed += 1
        expected = self.pending.popleft() if self.pending else b""
        if type(expected) is not type(message) or expected != message:
            self.altered_messages += 1
            self.altered_bytes += _altered(_as_bytes(expected), data)

    def drop(self, how: str) -> Drop:
        """Close the TCP socket under the WebSocket: no close frame, a FIN or a reset."""
        self.dropped = True
        transport = self.ws.transport
        sock = transport.get_extra_info("socket")
        if how == "reset" and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        transport.abort()
        return Drop(self.port, time.monotonic(), how)


def _message(rng: random.Random) -> str | bytes | list[str] | list[bytes]:
    """Text (with some non-ASCII) or binary, 1 B to 8 KiB; one in ten sent as fragments."""
    size = int(rng.choice((rng.randint(1, 64), rng.randint(64, 1024), rng.randint(1024, 8192))))
    if rng.random() < 0.5:
        alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 {}[]":,éß€😀'
        text: str | bytes = "".join(rng.choices(alphabet, k=size))
    else:
        text = rng.randbytes(size)
    if rng.random() < 0.1 and size > 3:
        cut = sorted(rng.sample(range(1, size), 2))
        return [text[: cut[0]], text[cut[0] : cut[1]], text[cut[1] :]]  # type: ignore[return-value]
    return text


class Clients:
    """``count`` workers, each keeping one connection through the tap busy at ``rate / count`` msg/s."""

    def __init__(self, url: str, count: int, rate: float, lifetime: tuple[float, float], seed: int) -> None:
        self.url = url
        self.count = count
        self.period = count / rate
        self.lifetime = lifetime
        self.seed = seed
        self.tally = Tally()
        self.live: set[Connection] = set()
        self.sending = True
        self.outages: list[Outage] = []  # the fault schedule's own list, appended as it kills
        self.drops: list[Drop] = []

    async def run(self) -> None:
        await asyncio.gather(*(self._worker(i) for i in range(self.count)))

    def drop_one(self, rng: random.Random, how: str) -> None:
        from websockets.protocol import State

        open_ones = (c for c in self.live if not (c.dropped or c.closing) and c.ws.state is State.OPEN)
        candidates = sorted(open_ones, key=lambda c: c.port)
        if candidates:
            self.drops.append(rng.choice(candidates).drop(how))

    async def _worker(self, index: int) -> None:
        from websockets.asyncio.client import connect

        rng = random.Random(self.seed * 1000 + index)
        compression = "deflate" if index % 4 == 0 else None
        await asyncio.sleep(rng.uniform(0, self.period))
        while self.sending:
            try:
                ws = await connect(
                    f"{self.url}/client{index}",
                    compression=compression,
                    max_size=None,
                    open_timeout=5,
                    ping_interval=None,
                )
            except Exception:
                self.tally.connect_failures += 1
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            self.tally.connections += 1
            connection = Connection(ws)
            self.live.add(connection)
            try:
                await self._talk(connection, rng)
            finally:
                self.live.discard(connection)

    async def _talk(self, conn: Connection, rng: random.Random) -> None:
        from websockets.exceptions import ConnectionClosed

        reader = asyncio.create_task(self._read(conn))
        ends = conn.opened + rng.uniform(*self.lifetime)
        next_send = time.monotonic() + rng.uniform(0, self.period)
        clean = False
        try:
            while self.sending and time.monotonic() < ends and not reader.done():
                await asyncio.sleep(max(next_send - time.monotonic(), 0))
                message = _message(rng)
                whole = message if not isinstance(message, list) else message[0][:0].join(message)
                conn.record_sent(whole)
                await conn.ws.send(message)
                self.tally.sent += 1
                # Late (a loaded machine): skip the missed slots rather than burst to catch up.
                next_send = max(next_send + self.period, time.monotonic())
            conn.closing = True
            drain_until = time.monotonic() + DRAIN_TIMEOUT_S
            while conn.pending and not reader.done() and time.monotonic() < drain_until:
                await asyncio.sleep(0.02)
            await conn.ws.close()
            await reader  # raises if the connection ended without a clean close
            clean = True
        except (ConnectionClosed, OSError):
            clean = False
        finally:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        self._settle(conn, clean and not conn.dropped)

    async def _read(self, conn: Connection) -> None:
        async for message in conn.ws:
            conn.record_echo(message)
            self.tally.echoed += 1

    def _settle(self, conn: Connection, clean: bool) -> None:
        tally = self.tally
        if clean:
            tally.compared_connections += 1
            tally.compared_messages += conn.echoed
            tally.compared_bytes += conn.bytes
            tally.altered_messages += conn.altered_messages
            tally.altered_bytes += conn.altered_bytes
            if conn.pending:
                tally.lost_echoes += len(conn.pending)
            elif conn.sent_digest.digest() != conn.echo_digest.digest():
                tally.digest_mismatches += 1
            return
        if conn.dropped:
            tally.dropped_by_us += 1
            return
        ended = time.monotonic()
        if any(o.target == "server" and conn.opened - 1.0 <= o.killed <= ended for o in self.outages):
            tally.cut_by_server_kill += 1
            return
        tally.cut_unexplained += 1
        if len(tally.unexplained) < 10:
            tally.unexplained.append(f"port {conn.port}, open {ended - conn.opened:.1f} s, no fault near")


# --- wsmon's process -------------------------------------------------------------------------------


class Sampler:
    """wsmon's RSS and CPU time from /proc, once a second, and whether it is still running."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, RSS MiB, CPU seconds)
        self.exited_early_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._ticks = os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            if self.proc.poll() is not None:
                self.exited_early_at = time.monotonic()
                return
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.samples.append((time.monotonic(), self._rss_mib(), self._cpu_s()))

    def _rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise ValueError("no VmRSS")

    def _cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def at(self, when: float) -> tuple[float, float, float]:
        """The first sample at or after ``when`` (the last one if none)."""
        for sample in self.samples:
            if sample[0] >= when:
                return sample
        return self.samples[-1]


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    duration: float
    warmup: float
    rss_from: float  # seconds after start at which RSS is first read for the flatness check
    fault_every: float
    outage: float
    drop_every: float
    tail: float  # no faults this long before the clients stop
    interval: float
    connections: int
    rate: float
    lifetime: tuple[float, float]
    seed: int


def plan_from(args: argparse.Namespace) -> Plan:
    duration = 60.0 if args.ci and args.duration is None else float(args.duration or 300.0)
    warmup = args.warmup if args.warmup is not None else min(10.0, duration / 6)
    # CI runs on shared machines: a 1 s interval leaves room for a loaded machine's slow passes; the
    # bench's 0.5 s shows the margins (docs/performance.md).
    interval = args.interval if args.interval is not None else (1.0 if args.ci else 0.5)
    return Plan(
        duration=duration,
        warmup=warmup,
        rss_from=STATE_FILL_S + 10.0 if duration >= 2 * STATE_FILL_S else warmup,
        fault_every=args.fault_every if args.fault_every is not None else (4.0 if duration <= 90 else 6.0),
        # Long enough that DOWN is due (two intervals) well before the restart.
        outage=args.outage if args.outage is not None else max(1.5, 2.5 * interval),
        drop_every=args.drop_every,
        tail=8.0,
        interval=interval,
        connections=args.connections,
        rate=args.rate,
        lifetime=(3.0, 9.0),
        seed=args.seed,
    )


def wsmon_command(plan: Plan, server: int, tap: int, redis_url: str, pg_url: str, record: Path) -> list[str]:
    return [
        sys.executable, "-m", "wsmon", "attach", f"ws://127.0.0.1:{server}/",
        "--tap", f"127.0.0.1:{tap}=ws://127.0.0.1:{server}",
        "--redis", redis_url, "--postgres", pg_url,
        "--interval", str(plan.interval),
        "--headless", "--duration", str(plan.duration), "--record", str(record),
    ]  # fmt: skip


def wsmon_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WSMON_URL", "REDIS_URL", "DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["XDG_CONFIG_HOME"] = str(workdir)  # no user wsmon.toml: the soak's flags are all there is
    return env


async def drive(plan: Plan, clients: Clients, faults: Faults, started: float) -> None:
    """Clients for the whole run; faults and drops between warm-up and the tail. ``started`` is when
    wsmon was spawned (its --duration runs from about then); the warm-up runs from now, when its tap
    listens, since a loaded machine can take seconds to start wsmon."""
    rng = random.Random(plan.seed)
    load = asyncio.create_task(clients.run())
    ready = time.monotonic()
    stop_at = started + plan.duration - 4.0
    faults_end = stop_at - plan.tail
    schedule = ("server", "redis", "postgres")

    async def inject_faults() -> None:
        at, n = ready + plan.warmup, 0
        while at < faults_end:
            await asyncio.sleep(max(at - time.monotonic(), 0))
            target = schedule[n % len(schedule)]
            await asyncio.to_thread(faults.inject, target)
            n += 1
            at = max(at + plan.fault_every, time.monotonic() + 1.0)

    async def drop_clients() -> None:
        at, n = ready + plan.warmup + plan.drop_every / 2, 0
        while at < faults_end:
            await asyncio.sleep(max(at - time.monotonic(), 0))
            clients.drop_one(rng, "reset" if n % 2 else "fin")
            n += 1
            at += plan.drop_every

    clients.outages = faults.outages  # a cut is explained by a kill the moment the kill is noted
    injector = asyncio.create_task(inject_faults())
    dropper = asyncio.create_task(drop_clients())
    await asyncio.sleep(max(stop_at - time.monotonic(), 0))
    await asyncio.gather(injector, dropper)
    clients.sending = False
    async with asyncio.timeout(DRAIN_TIMEOUT_S + 5):
        await load


# --- what the recording says -----------------------------------------------------------------------


@dataclass
class Seen:
    fault: str
    watcher: str
    injected_at: float  # seconds since wsmon started
    down_s: float | None  # kill → TargetDown
    up_s: float | None  # restart answered → TargetUp
    ok: bool


def read_recording(path: Path) -> list[Any]:
    from wsmon.store.reader import RecordingReader

    with RecordingReader(path) as reader:
        return list(reader.iter_events())


def check_outages(events: list[Any], outages: list[Outage], interval: float, t0: float) -> list[Seen]:
    from wsmon.core.events import TargetDown, TargetUp

    limit = 2 * interval
    rows = []
    for i, outage in enumerate(outages):
        assert outage.back is not None
        later = [o.killed for o in outages[i + 1 :] if o.target == outage.target]
        until = later[0] if later else float("inf")
        for watcher in WATCHERS[outage.target]:
            down = next(
                (
                    e
                    for e in events
                    if isinstance(e, TargetDown) and e.target == watcher and outage.killed <= e.mono < until
                ),
                None,
            )
            up = None
            if down is not None:
                ups = (e for e in events if isinstance(e, TargetUp) and e.target == watcher)
                up = next((e for e in ups if e.mono > down.mono), None)
            down_s = down.mono - outage.killed if down is not None else None
            up_s = up.mono - outage.back if up is not None and up.mono < until else None
            ok = down_s is not None and up_s is not None and down_s <= limit and up_s <= limit
            rows.append(Seen(outage.target, watcher, outage.killed - t0, down_s, up_s, ok))
    return rows


def server_cuts(events: list[Any]) -> int:
    """Tap connections the recording shows ended by the server without a close frame (the kills)."""
    from wsmon.core.events import ConnectionClosed

    return sum(
        1
        for e in events
        if isinstance(e, ConnectionClosed) and e.source == "tap" and e.code == 1006
        if e.reason.startswith("server")
    )


def check_drops(events: list[Any], drops: list[Drop]) -> tuple[int, list[str]]:
    """How many dropped clients the recording shows as a 1006 the client caused, and those it does not."""
    from wsmon.core.events import ConnectionClosed, ConnectionOpened

    opened: dict[str, list[tuple[float, str]]] = {}
    closed: dict[str, ConnectionClosed] = {}
    for event in events:
        if isinstance(event, ConnectionOpened) and event.source == "tap":
            opened.setdefault(event.peer, []).append((event.mono, event.conn))
        elif isinstance(event, ConnectionClosed) and event.source == "tap":
            closed[event.conn] = event
    seen, missing = 0, []
    for drop in drops:
        conns = [conn for mono, conn in opened.get(f"127.0.0.1:{drop.port}", []) if mono <= drop.at]
        close = closed.get(conns[-1]) if conns else None
        if close is not None and close.code == 1006 and close.reason.startswith("client"):
            seen += 1
        else:
            shown = f"{close.code} {close.reason!r}" if close else "no close" if conns else "no connection"
            missing.append(f"{drop.how} drop of port {drop.port}: {shown}")
    return seen, missing


def source_failures(events: list[Any]) -> list[str]:
    """A source of wsmon that raised (the session restarts it): a defect even if wsmon lived on."""
    from wsmon.core.events import LogLine

    return [e.text for e in events if isinstance(e, LogLine) and e.source == "wsmon" and e.level == "error"]


# --- report ----------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:7.0f} ms"


def outage_table(rows: list[Seen], interval: float) -> str:
    lines = [
        f"outages (limit: each within two intervals = {2 * interval * 1000:.0f} ms)",
        f"  {'fault':9} {'at':>6}  {'watcher':10} {'kill → DOWN':>12} {'restart → UP':>13}  verdict",
    ]
    for row in rows:
        verdict = "ok" if row.ok else "MISSED"
        lines.append(
            f"  {row.fault:9} {row.injected_at:5.1f}s  {row.watcher:10} {_ms(row.down_s):>12} "
            f"{_ms(row.up_s):>13}  {verdict}"
        )
    return "\n".join(lines)


def summarise(result: dict[str, Any]) -> str:
    t = result["clients"]
    rss = result["rss"]
    out = [
        outage_table([Seen(**row) for row in result["outage_rows"]], result["interval"]),
        "",
        f"outages injected {result['outages_injected']} "
        f"(server {result['injected_by_target'].get('server', 0)}, "
        f"redis {result['injected_by_target'].get('redis', 0)}, "
        f"postgres {result['injected_by_target'].get('postgres', 0)}); "
        f"seen by every watcher within two intervals: {result['outages_seen']}",
        f"clients dropped without a close frame {len(result['drops'])}; "
        f"seen in the recording as a client's 1006: {result['drops_seen']}; connections the recording "
        f"shows cut by the server (1006): {result['server_cuts_recorded']}",
        f"connections {t['connections']} (connect failures during outages {t['connect_failures']}); "
        f"messages sent {t['sent']:,} at {result['msgs_per_s']:.0f} msg/s, "
        f"{result['msgs_per_s_server_up']:.0f} msg/s while the server was up (asked {result['rate']:.0f})",
        f"compared: {t['compared_connections']} connections closed normally, {t['compared_messages']:,} "
        f"messages, {t['compared_bytes']:,} bytes each way; altered: {t['altered_bytes']} bytes in "
        f"{t['altered_messages']} messages; sha256 mismatches {t['digest_mismatches']}; lost echoes "
        f"{t['lost_echoes']}",
        f"excluded: {t['cut_by_server_kill']} cut by a server kill, "
        f"{t['dropped_by_us']} dropped by the soak, {t['cut_unexplained']} cut with no fault near",
        f"wsmon RSS: start ({rss['from']:.0f} s in) {rss['start']:.1f} MiB, middle {rss['middle']:.1f} MiB, "
        f"end {rss['end']:.1f} MiB, peak {rss['peak']:.1f} MiB; allowed growth {rss['allowed_growth']:.1f} "
        f"MiB {rss['judged']}; "
        f"CPU {result['cpu_percent']:.0f} % of one core",
        f"wsmon exit: {result['exit_code']}{' (exited early!)' if result['exited_early'] else ''}; "
        f"traceback on stderr: {'yes' if result['traceback'] else 'no'}; "
        f"source failures: {len(result['source_failures'])}",
    ]
    for text in result["drops_missing"][:10] + result["source_failures"][:10] + t["unexplained"]:
        out.append(f"  ! {text}")
    out.append("")
    out.append("checks: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in result["checks"].items()))
    return "\n".join(out)


def judge(result: dict[str, Any]) -> dict[str, bool]:
    t = result["clients"]
    return {
        "wsmon ran to the end": not result["exited_early"] and result["exit_code"] in (0, 1),
        "no traceback": not result["traceback"],
        "no source failed": not result["source_failures"],
        "every outage seen in time": result["outages_seen"] == len(result["outage_rows"]) > 0,
        "every drop recorded": result["drops_seen"] == len(result["drops"]) > 0,
        "zero bytes altered": t["compared_bytes"] > 0
        and t["altered_bytes"] == t["altered_messages"] == t["digest_mismatches"] == t["lost_echoes"] == 0,
        "no unexplained cuts": t["cut_unexplained"] == 0,
        "RSS flat": result["rss"]["end"]
        <= result["rss"][result["rss"]["judged_from"]] + result["rss"]["allowed_growth"],
    }


# --- main ------------------------------------------------------------------------------------------


def soak(plan: Plan, workdir: Path) -> dict[str, Any]:
    import services

    with contextlib.ExitStack() as stack:  # everything started is stopped, also on Ctrl-C
        redis = services.PrivateRedis()
        stack.callback(redis.close)
        postgres = services.PrivatePostgres()
        stack.callback(postgres.close)
        echo = EchoServer(services.free_port(), workdir / "echo.log")
        stack.callback(echo.close)
        redis.start()
        postgres.start()
        echo.start()
        tap = services.free_port()
        record = workdir / "soak.wsmon"
        stderr_path = workdir / "wsmon.stderr"
        cmd = wsmon_command(plan, echo.port, tap, redis.url, postgres.url(), record)
        with open(workdir / "wsmon.stdout", "wb") as out, open(stderr_path, "wb") as err:
            wsmon = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=workdir, env=wsmon_env(workdir))
        started = time.monotonic()
        stack.callback(_stop, wsmon)
        services.wait_until(lambda: services.port_open("127.0.0.1", tap), 30, "wsmon's tap to listen")
        sampler = Sampler(wsmon)
        sampler.start()
        faults = Faults({"server": echo, "redis": redis, "postgres": postgres}, plan.outage)
        clients = Clients(f"ws://127.0.0.1:{tap}", plan.connections, plan.rate, plan.lifetime, plan.seed)
        load_started = time.monotonic()
        asyncio.run(drive(plan, clients, faults, started))
        load_s = time.monotonic() - load_started
        code = wsmon.wait(timeout=plan.duration + 60)
        sampler.stop()
        stderr = stderr_path.read_text(errors="replace")
        events = read_recording(record)
        return _result(plan, started, load_s, code, stderr, events, sampler, faults, clients)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _result(
    plan: Plan,
    started: float,
    load_s: float,
    code: int,
    stderr: str,
    events: list[Any],
    sampler: Sampler,
    faults: Faults,
    clients: Clients,
) -> dict[str, Any]:
    rows = check_outages(events, faults.outages, plan.interval, started)
    drops_seen, drops_missing = check_drops(events, clients.drops)
    start_sample = sampler.at(started + plan.rss_from)
    after_fill = plan.rss_from >= STATE_FILL_S
    end_sample = sampler.at(started + plan.duration - 4.0)
    middle_sample = sampler.at((start_sample[0] + end_sample[0]) / 2)
    cpu_window = max(end_sample[0] - start_sample[0], 1e-9)
    # While the server is down (kill to restart, and the clients' reconnect) nothing can be sent.
    server_down_s = sum((o.back or o.killed) - o.killed for o in faults.outages if o.target == "server")
    by_target: dict[str, int] = {}
    for outage in faults.outages:
        by_target[outage.target] = by_target.get(outage.target, 0) + 1
    result: dict[str, Any] = {
        "duration": plan.duration,
        "interval": plan.interval,
        "warmup": plan.warmup,
        "connections": plan.connections,
        "rate": plan.rate,
        "msgs_per_s": clients.tally.sent / max(load_s, 1e-9),
        "msgs_per_s_server_up": clients.tally.sent / max(load_s - server_down_s, 1e-9),
        "outages_injected": len(faults.outages),
        "injected_by_target": by_target,
        "outage_rows": [asdict(row) for row in rows],
        "outages_seen": sum(row.ok for row in rows),
        "drops": [asdict(drop) for drop in clients.drops],
        "drops_seen": drops_seen,
        "drops_missing": drops_missing,
        "server_cuts_recorded": server_cuts(events),
        "clients": asdict(clients.tally),
        "rss": {
            "start": start_sample[1],
            "middle": middle_sample[1],
            "end": end_sample[1],
            "peak": max(s[1] for s in sampler.samples),
            "from": plan.rss_from,
            "judged": "from the middle to the end (flat)"
            if after_fill
            else "from start to end (a bound: the run is shorter than the State's fill)",
            "judged_from": "middle" if after_fill else "start",
            "allowed_growth": FLAT_GROWTH_MIB if after_fill else SHORT_RUN_BOUND_MIB,
            "series": [(round(m - started, 1), round(r, 1)) for m, r, _ in sampler.samples],
        },
        "cpu_percent": 100.0 * (end_sample[2] - start_sample[2]) / cpu_window,
        "exit_code": code,
        "exited_early": sampler.exited_early_at is not None
        and sampler.exited_early_at < started + plan.duration - 1.0,
        "traceback": "Traceback" in stderr,
        "stderr_tail": stderr[-2000:],
        "source_failures": source_failures(events),
        "events": len(events),
    }
    result["checks"] = judge(result)
    result["passed"] = all(result["checks"].values())
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ci", action="store_true", help="the 60 s version run by tests/test_soak.py")
    parser.add_argument("--duration", type=float, help="seconds wsmon runs (default 300; 60 with --ci)")
    parser.add_argument("--interval", type=float, help="wsmon's poll interval (0.5 s; 1 s with --ci)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s over all connections")
    parser.add_argument("--warmup", type=float, help="seconds before the first fault (default 10)")
    parser.add_argument("--fault-every", type=float, help="seconds between kills (4 with --ci, else 6)")
    parser.add_argument("--outage", type=float, help="seconds a killed server stays down (2.5 intervals)")
    parser.add_argument("--drop-every", type=float, default=2.0, help="seconds between client drops")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (recording, logs)")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.echo_server:
        asyncio.run(serve_echo(args.echo_server))
        return 0
    missing = _missing_programs()
    if missing:
        print(f"soak: cannot run: {missing} not installed", file=sys.stderr)
        return 2
    plan = plan_from(args)
    workdir = Path(tempfile.mkdtemp(prefix="wsmon-soak-"))
    print(
        f"soak: {plan.duration:.0f} s, {plan.connections} connections at {plan.rate:.0f} msg/s through the "
        f"tap, interval {plan.interval} s, work dir {workdir}",
        flush=True,
    )
    try:
        result = soak(plan, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(summarise(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if result["passed"] else 1


def _missing_programs() -> str:
    import services

    missing = [] if shutil.which("redis-server") else ["redis-server"]
    bindir = services._pg_bindir()
    for name in ("initdb", "postgres", "pg_isready"):
        if bindir is None or not (bindir / name).exists():
            missing.append(name)
    return ", ".join(missing)


if __name__ == "__main__":
    sys.exit(main())
