"""Load generator for the demo server: a population of simulated devices, plus injected faults.

A stand-alone program (it imports nothing of wsmon's). Each simulated device registers, heartbeats,
sends messages to other devices and acks what it receives; a fault scheduler makes some of them misbehave
the way real clients do (vanish, close without a status, go silent, ...), so that every close code and
failure the dashboard knows about shows up within seconds. docs/demo.md lists the faults and their rates.

Three loads (``--load``), so that a figure measured under one means one thing:

- ``demo`` (the default): the devices above, with their faults and reconnects — something to look at;
- ``steady``: ``--clients`` connections held open, each sending ``--rate`` messages/s at an even pace,
  no faults, no late acks; a connection reconnects only if it is dropped. On stop the clients stop
  sending, let what is in flight arrive, then close with 1000;
- ``churn``: ``--connect-rate`` connections a second opened, registered, held ``--hold`` seconds and
  closed with 1000 — connection set-up and tear-down alone.

Run: ``python -m wsmon.demo.loadgen --url ws://127.0.0.1:PORT/ --clients 50``.

One file of about 650 lines, on purpose: a stand-alone program is read, run and copied beside
a server under test as one file, and its parts (the simulated device, the load and fault scheduler, the
tally its last line reports) are one protocol with the demo server, read together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

# Faults a second per client at --fault-rate 1: 50 clients give ~2 faults/s, so each kind comes
# round every ~4 s.
FAULTS_PER_CLIENT_SECOND = 0.04
MIN_FAULTS_PER_SECOND = 0.5

# The first round is in a fixed order so the slow-to-show faults start first: a silent client only
# shows up after the server's heartbeat timeout. Later rounds are shuffled and go silent twice, for the
# same reason (so several 1001s land within a short run).
FIRST_ROUND = ("silent", "vanish", "no_status", "bad_registration", "garbage", "over_capacity", "normal")

HEARTBEAT_INTERVAL = 2.0
SLOW_ACK_SHARE = 0.1
# After a vanish, others aim some messages at the vanished device while the server still has it
# registered (its stale grace), which is what produces "Connection not open" delivery failures.
VANISHED_TARGET_WINDOW = (0.05, 1.2)
# How many messages, across all clients, aim at each vanished device within that window: a few failures
# per vanish whatever the population, not one in a small run and dozens in a big one.
FAILURES_PER_VANISH = 5.0
CONNECT_TIMEOUT = 5.0
LOADS = ("demo", "steady", "churn")
# A steady population connects at this many connections a second, so its start is not a burst of
# refusals and timeouts (1,000 clients take 4 s).
STEADY_RAMP_PER_SECOND = 250.0
# Once stopping, steady clients send nothing new for this long and keep reading and acking, so every
# message and ack in flight arrives before the close: the tally then counts what a tap saw.
STEADY_DRAIN_S = 1.0
STEADY_TARGET_TRIES = 8
# Churn that falls this far behind its schedule (a busy machine) starts afresh rather than bursting.
CHURN_MAX_LAG_S = 1.0


async def send_empty_close(ws: ClientConnection) -> None:
    """Send a Close frame with no payload, which the peer reports as 1005 (no status received).

    ``close()`` refuses 1005 because that code must never appear on the wire. The sans-I/O protocol's
    ``send_close()`` with no code writes an empty Close frame; ``send_context()`` flushes it to the
    transport and then waits for the closing handshake, exactly as ``close()`` does.
    """
    try:
        async with ws.send_context():
            ws.protocol.send_close()
    except ConnectionClosed:
        pass


class Tally:
    """What the clients themselves saw: connections opened (handshake done), closes by code, refusals,
    the messages (data frames) they sent and read on connections that opened, and how long each opening
    took (TCP connect to the 101, as the client waits for it: ``connect_p50_ms`` / ``connect_p95_ms``).

    A close's code is the one of the first close frame on the wire, as a tap in between sees it: the one
    this client received when the server closed first, the one it sent when it closed first, 1006 when
    no close frame passed at all (including connections still open when the load generator exits).
    """

    PREFIX = "wsmon loadgen tally: "

    def __init__(self) -> None:
        self.opened = 0
        self.refused = 0
        self.sent = 0
        self.received = 0
        self.closes: dict[int, int] = {}
        self.connect_ms: list[float] = []
        self.live: set[ClientConnection] = set()
        self.watchers: set[asyncio.Task[None]] = set()

    def connected(self, ws: ClientConnection, ms: float) -> None:
        self.opened += 1
        self.connect_ms.append(ms)
        self.live.add(ws)
        watcher = asyncio.get_running_loop().create_task(self._closed(ws))
        self.watchers.add(watcher)
        watcher.add_done_callback(self.watchers.discard)

    async def _closed(self, ws: ClientConnection) -> None:
        await ws.wait_closed()
        self.settle(ws)

    def settle(self, ws: ClientConnection) -> None:
        if ws not in self.live:
            return
        self.live.discard(ws)
        code = first_close_code(ws)
        self.closes[code] = self.closes.get(code, 0) + 1

    def finish(self) -> None:
        for ws in list(self.live):
            self.settle(ws)

    def line(self) -> str:
        closes = {str(code): n for code, n in sorted(self.closes.items())}
        counts = {"opened": self.opened, "closes": closes, "refused": self.refused}
        ordered = sorted(self.connect_ms)
        timing = {f"connect_p{q}_ms": _nearest_rank(ordered, q) for q in (50, 95)}
        return self.PREFIX + json.dumps({**counts, "sent": self.sent, "received": self.received, **timing})


def _nearest_rank(ordered: list[float], q: int) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, -(-q * len(ordered) // 100) - 1))], 3)


def first_close_code(ws: ClientConnection) -> int:
    protocol = ws.protocol
    sent, rcvd = protocol.close_sent, protocol.close_rcvd
    if sent is not None and rcvd is not None:
        return int(rcvd.code if protocol.close_rcvd_then_sent else sent.code)
    if rcvd is not None:
        return int(rcvd.code)
    if sent is not None:
        return int(sent.code)
    return 1006


class SimClient:
    def __init__(self, gen: LoadGen, index: int, slow: bool) -> None:
        self.gen = gen
        self.index = index
        self.device = f"dev-{index}"
        self.slow = slow
        self.ws: ClientConnection | None = None
        self.healthy = False
        self.silent = False
        self.fault: str | None = None
        self.fault_event = asyncio.Event()
        self.garbage_due = False
        self.sent = 0

    def inject(self, kind: str) -> bool:
        if not self.healthy or self.fault is not None:
            return False
        if kind == "garbage":
            # Not session-ending: sent with the client's next heartbeat or message.
            self.garbage_due = True
            return True
        self.fault = kind
        self.healthy = False
        self.fault_event.set()
        return True

    async def run(self) -> None:
        rng = self.gen.rng
        # Spread the first connections over a ramp so the server log is not one burst.
        await self.gen.sleep(rng.uniform(0, self.gen.ramp_s))
        while not self.gen.stopping.is_set():
            ws = await self.gen.open_connection()
            if ws is None:
                return
            ended_by = await self.session(ws)
            if self.gen.stopping.is_set():
                return
            if ended_by == "vanish":
                # Longer than the others, so the server's stale entry is seen by senders first.
                delay = rng.uniform(VANISHED_TARGET_WINDOW[1], 2.0)
            else:
                delay = rng.uniform(0.5, 2.0)
            await self.gen.sleep(delay)

    async def session(self, ws: ClientConnection) -> str:
        self.fault = None
        self.fault_event = asyncio.Event()
        self.garbage_due = False
        self.silent = False
        try:
            await self.gen.send(ws, json.dumps({"type": "register", "device": self.device}))
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reply = json.loads(await self.gen.recv(ws))
            if not isinstance(reply, dict) or reply.get("type") != "registered":
                await ws.close(1000, "unexpected reply")
                return "refused"
        except (ConnectionClosed, TimeoutError, ValueError, OSError):
            await _abort(ws)
            return "refused"

        self.ws = ws
        self.healthy = True
        receiver = asyncio.create_task(self.receive(ws))
        stop_wait = asyncio.create_task(self.gen.stopping.wait())
        try:
            return await self.drive(ws, receiver, stop_wait)
        except (ConnectionClosed, OSError):
            return "closed"
        finally:
            self.healthy = False
            self.ws = None
            stop_wait.cancel()
            if not receiver.done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3):
                        await ws.wait_closed()
                receiver.cancel()
            await asyncio.gather(receiver, stop_wait, return_exceptions=True)

    async def drive(
        self, ws: ClientConnection, receiver: asyncio.Task[None], stop_wait: asyncio.Task[bool]
    ) -> str:
        fault_wait = asyncio.create_task(self.fault_event.wait())
        try:
            return await self._drive(ws, receiver, stop_wait, fault_wait)
        finally:
            fault_wait.cancel()

    async def _drive(
        self,
        ws: ClientConnection,
        receiver: asyncio.Task[None],
        stop_wait: asyncio.Task[bool],
        fault_wait: asyncio.Task[bool],
    ) -> str:
        rng = self.gen.rng
        now = time.monotonic()
        next_heartbeat = now + HEARTBEAT_INTERVAL
        next_message = now + self.gen.next_message_gap()
        while True:
            timeout = max(0.0, min(next_heartbeat, next_message) - time.monotonic())
            waiters = {receiver, fault_wait, stop_wait}
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if stop_wait.done():
                if self.gen.steady:
                    await self.drain(receiver)
                await ws.close(1000, "load generator stopping")
                return "stop"
            if receiver.done():
                return "closed"
            if fault_wait.done():
                return await self.misbehave(ws, self.fault or "", receiver)
            if self.garbage_due:
                self.garbage_due = False
                await self.gen.send(ws, "this is not {json")
            now = time.monotonic()
            if now >= next_heartbeat:
                await self.gen.send(ws, '{"type":"heartbeat"}')
                next_heartbeat = now + HEARTBEAT_INTERVAL
            if now >= next_message:
                target = self.gen.pick_target(self.index)
                if target is not None:
                    self.sent += 1
                    body = "x" * rng.randint(8, 200)
                    msg = {
                        "type": "message",
                        "id": f"msg_{self.index}_{self.sent}",
                        "to": target,
                        "body": body,
                    }
                    await self.gen.send(ws, json.dumps(msg))
                    if self.gen.steady:
                        # A message keeps the connection alive as well as a heartbeat does: a steady
                        # load's messages/s are its messages, not keep-alives.
                        next_heartbeat = now + HEARTBEAT_INTERVAL
                next_message = now + self.gen.next_message_gap()

    async def drain(self, receiver: asyncio.Task[None]) -> None:
        """Send nothing new, keep reading and acking, until what is in flight has arrived."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STEADY_DRAIN_S):
                await asyncio.shield(receiver)

    async def misbehave(self, ws: ClientConnection, kind: str, receiver: asyncio.Task[None]) -> str:
        if kind == "vanish":
            self.gen.vanished[self.device] = time.monotonic()
            # No close frame at all: the server sees the TCP connection drop (1006).
            ws.transport.abort()
        elif kind == "no_status":
            await send_empty_close(ws)
        elif kind == "normal":
            await ws.close(1000, "client leaving")
        elif kind == "silent":
            # Nothing more from this client, not even acks, until the server gives up on it (1001).
            self.silent = True
            stop_wait = asyncio.create_task(self.gen.stopping.wait())
            try:
                await asyncio.wait({receiver, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
            if not receiver.done():
                await ws.close(1000, "load generator stopping")
        return kind

    async def receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self.gen.tally.received += 1
                try:
                    data = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(data, dict) or data.get("type") != "message" or self.silent:
                    continue
                msg_id = data.get("id")
                if not isinstance(msg_id, str):
                    continue
                if self.slow:
                    self.gen.spawn(self.ack_later(ws, msg_id, self.gen.rng.uniform(0.1, 0.6)))
                else:
                    await self.gen.send(ws, json.dumps({"type": "ack", "id": msg_id}))
        except (ConnectionClosed, OSError):
            pass

    async def ack_later(self, ws: ClientConnection, msg_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.silent:
            return
        with contextlib.suppress(ConnectionClosed, OSError):
            await self.gen.send(ws, json.dumps({"type": "ack", "id": msg_id}))


class LoadGen:
    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.load: str = args.load
        self.steady = self.load == "steady"
        self.rate: float = args.rate
        # Only the demo's load misbehaves: steady and churn measure a server that is left alone.
        self.fault_rate: float = args.fault_rate if self.load == "demo" else 0.0
        self.connect_rate: float = args.connect_rate
        self.hold: float = args.hold
        self.rng = random.Random(args.seed)
        self.stopping = asyncio.Event()
        n = 0 if self.load == "churn" else max(1, args.clients)
        self.ramp_s = max(0.5, n / STEADY_RAMP_PER_SECOND) if self.steady else 0.5
        share = 0.0 if self.steady else args.slow_acks
        slow_count = round(n * share) if share != SLOW_ACK_SHARE else max(1, round(n * share))
        slow = set(self.rng.sample(range(n), min(n, slow_count))) if n > 1 and share > 0 else set()
        self.clients = [SimClient(self, i, i in slow) for i in range(n)]
        self.vanished: dict[str, float] = {}
        messages_in_window = (
            n * max(self.rate, 0.01) * (VANISHED_TARGET_WINDOW[1] - VANISHED_TARGET_WINDOW[0])
        )
        self.vanished_target_share = min(0.5, FAILURES_PER_VANISH / max(messages_in_window, 1e-9))
        self.side_tasks: set[asyncio.Task[Any]] = set()
        self.fault_counts: dict[str, int] = {}
        self.bursts = 0
        self.tally = Tally()

    async def sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()

    def next_message_gap(self) -> float:
        if self.rate <= 0:
            return 3600.0
        if self.steady:
            # An even pace, a little jittered so that the clients do not fall into step.
            return self.rng.uniform(0.9, 1.1) / self.rate
        return self.rng.expovariate(self.rate)

    async def send(self, ws: ClientConnection, text: str) -> None:
        await ws.send(text)
        self.tally.sent += 1

    async def recv(self, ws: ClientConnection) -> str | bytes:
        data = await ws.recv()
        self.tally.received += 1
        return data

    def pick_target(self, sender: int) -> str | None:
        now = time.monotonic()
        lo, hi = VANISHED_TARGET_WINDOW
        fresh = [d for d, t in self.vanished.items() if lo <= now - t <= hi and d != f"dev-{sender}"]
        for device in [d for d, t in self.vanished.items() if now - t > hi]:
            del self.vanished[device]
        if fresh and self.rng.random() < self.vanished_target_share:
            return self.rng.choice(fresh)
        if len(self.clients) < 2:
            return None
        # A steady load's messages go to devices that are registered (not to ones still connecting
        # during the ramp), so that every one of them is a delivery, not an "unknown device" error.
        for _ in range(STEADY_TARGET_TRIES if self.steady else 1):
            other = self.rng.randrange(len(self.clients) - 1)
            if other >= sender:
                other += 1
            if not self.steady or self.clients[other].healthy:
                return f"dev-{other}"
        return None

    async def open_connection(self) -> ClientConnection | None:
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                return await self.connect(open_timeout=CONNECT_TIMEOUT)
            except InvalidURI:
                raise
            except (OSError, InvalidHandshake, TimeoutError):
                # Connection refused (server not up yet, or restarting): retry with a short backoff.
                await self.sleep(backoff * self.rng.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 2.0)
        return None

    async def connect(self, **options: Any) -> ClientConnection:
        """Every connection goes through here, so the tally sees each one opened or refused."""
        started = time.perf_counter()
        try:
            ws = await connect(self.url, proxy=None, ping_interval=None, compression=None, **options)
        except InvalidURI:
            raise
        except (OSError, InvalidHandshake, TimeoutError):
            self.tally.refused += 1
            raise
        except asyncio.CancelledError:
            raise
        self.tally.connected(ws, (time.perf_counter() - started) * 1000.0)
        return ws

    # --- churn --------------------------------------------------------------------------------------

    async def churn_loop(self) -> None:
        """Open --connect-rate connections a second on an even schedule, each one a short session."""
        if self.connect_rate <= 0:
            return
        gap = 1.0 / self.connect_rate
        due = time.monotonic()
        index = 0
        while not self.stopping.is_set():
            self.spawn(self.churn_connection(index))
            index += 1
            due += gap
            lag = time.monotonic() - due
            if lag > CHURN_MAX_LAG_S:
                due += lag
            await self.sleep(due - time.monotonic())

    async def churn_connection(self, index: int) -> None:
        """Connect, register, stay --hold seconds, close with 1000."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                ws = await self.connect()
        except (OSError, InvalidHandshake, TimeoutError):
            return
        try:
            await self.send(ws, json.dumps({"type": "register", "device": f"churn-{index}"}))
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self.recv(ws)
            await self.sleep(self.hold)
            await ws.close(1000, "churn")
        except (ConnectionClosed, OSError, TimeoutError):
            pass
        finally:
            await _abort(ws)

    # --- faults -------------------------------------------------------------------------------------

    async def fault_loop(self) -> None:
        if self.fault_rate <= 0:
            return
        per_second = self.fault_rate * max(
            MIN_FAULTS_PER_SECOND, FAULTS_PER_CLIENT_SECOND * len(self.clients)
        )
        mean_gap = 1.0 / per_second
        # Let the population register first.
        await self.sleep(1.0)
        deck: list[str] = list(FIRST_ROUND)
        while not self.stopping.is_set():
            if not deck:
                deck = [*FIRST_ROUND, "silent"]
                self.rng.shuffle(deck)
            kind = deck.pop(0)
            if not self.fire(kind):
                # No healthy client just now: keep the kind for the next turn.
                deck.insert(0, kind)
            await self.sleep(mean_gap * self.rng.uniform(0.5, 1.5))

    def fire(self, kind: str) -> bool:
        if kind == "bad_registration":
            self.spawn(self.bad_registration())
        elif kind == "over_capacity":
            self.spawn(self.over_capacity())
        else:
            candidates = [c for c in self.clients if c.healthy and c.fault is None]
            if not candidates:
                return False
            self.rng.choice(candidates).inject(kind)
        self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
        return True

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    async def bad_registration(self) -> None:
        # During a burst the server would refuse it with 1013 before it could be rejected with 1008.
        while self.bursts and not self.stopping.is_set():
            await asyncio.sleep(0.1)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                ws = await self.connect()
                try:
                    await self.send(ws, '{"type":"register"}')
                    await ws.wait_closed()
                finally:
                    await _abort(ws)
        except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
            pass

    async def over_capacity(self) -> None:
        # Enough extra connections to overrun a server run with --max-connections clients + 5.
        burst = 6 + len(self.clients) // 10
        self.bursts += 1
        try:
            await asyncio.gather(*(self.extra_connection() for _ in range(burst)), return_exceptions=True)
        finally:
            self.bursts -= 1

    async def extra_connection(self) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                ws = await self.connect()
        except (OSError, InvalidHandshake, TimeoutError):
            return
        try:
            # Held open briefly: the server refuses the ones over its limit at once with 1013.
            await self.sleep(1.0)
            await ws.close(1000, "burst over")
        except (ConnectionClosed, OSError):
            pass
        finally:
            await _abort(ws)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def run(self, duration: float) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        if duration > 0:
            loop.call_later(duration, self.stopping.set)
        print(f"wsmon loadgen: {self.describe()} -> {self.url}", file=sys.stderr, flush=True)
        tasks = [asyncio.create_task(c.run()) for c in self.clients]
        tasks.append(asyncio.create_task(self.fault_loop()))
        if self.load == "churn":
            tasks.append(asyncio.create_task(self.churn_loop()))
        await self.stopping.wait()
        # Clients close cleanly (1000) on their own once stopping is set; do not wait long on a server
        # that stopped answering (whoever sent SIGTERM may follow with SIGKILL after a few seconds).
        grace = 3.0 + (STEADY_DRAIN_S if self.steady else 0.0)
        _done, pending = await asyncio.wait(tasks + list(self.side_tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self.fault_counts:
            summary = ", ".join(f"{k}={v}" for k, v in sorted(self.fault_counts.items()))
            print(f"wsmon loadgen: faults injected: {summary}", file=sys.stderr, flush=True)
        # Let the tally's watchers see the closes that just completed; what is still open is dropped
        # without a close frame when this process exits (1006 on the wire).
        await asyncio.sleep(0)
        self.tally.finish()
        print(self.tally.line(), flush=True)

    def describe(self) -> str:
        if self.load == "churn":
            return f"churn, {self.connect_rate:g} connections/s held {self.hold:g} s"
        return (
            f"{self.load}, {len(self.clients)} clients × {self.rate:g} msg/s"
            f" ({len(self.clients) * self.rate:g} msg/s), fault-rate {self.fault_rate:g}"
        )


async def _abort(ws: ClientConnection) -> None:
    if ws.transport is not None and not ws.transport.is_closing():
        ws.transport.abort()
    with contextlib.suppress(Exception):
        await ws.wait_closed()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wsmon.demo.loadgen",
        description="Simulated devices for wsmon's demo server, with injected faults.",
    )
    parser.add_argument("--url", required=True, help="server URL, e.g. ws://127.0.0.1:8765/")
    parser.add_argument(
        "--load",
        choices=LOADS,
        default="demo",
        help="demo: devices with faults; steady: --clients held open at --rate each, no faults; "
        "churn: --connect-rate connections/s opened and closed (default demo)",
    )
    parser.add_argument(
        "--connect-rate", type=float, default=50.0, help="churn: connections opened a second (default 50)"
    )
    parser.add_argument(
        "--hold", type=float, default=1.0, help="churn: seconds each connection stays open (default 1)"
    )
    parser.add_argument("--clients", type=int, default=50, help="simulated devices (default 50)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="messages per second per client (default 1.0)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=1.0,
        help="multiplier for the fault rate; 0 = no faults (default 1.0)",
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run; 0 = until SIGTERM/SIGINT (default 0)"
    )
    parser.add_argument(
        "--slow-acks",
        type=float,
        default=SLOW_ACK_SHARE,
        help=f"share of clients that ack 100-600 ms late (default {SLOW_ACK_SHARE}; 0 = none)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(LoadGen(args).run(args.duration))
    except InvalidURI as exc:
        print(f"wsmon loadgen: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
