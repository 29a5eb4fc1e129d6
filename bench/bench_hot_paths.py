"""Two of wsmon's per-event hot paths timed alone, in CPU time (issue 13's profile at 1,000 × 1 msg/s):

- the last minute's latency percentiles, asked three times per judge tick (judge, header, limits strip)
  while 1,000 samples/s arrive: a full window of 70,000 samples, then 250 samples and 3 queries a tick;
- the tap's wire parser, one short text frame per read in each direction (a masked one from the client,
  an unmasked one from the server), as at the demo's steady load;
- a tap worker's whole Python path per frame (issue 13's worker profile): tapped connections
  (``TappedConnection`` in a ``TapRelays`` with the demo's delivery rules) carry the demo's exchange —
  a message in, its copy out to the other device, "accepted" out, the device's ack in, "delivered"
  out — one frame per read; the transports are stubs, so the sockets' own cost is left out. Between
  two connections, and spread over ``--connections`` (1,000: each message between the next two in
  turn, so the parsers' and relays' state is as cold as in a worker carrying that many).

    python bench/bench_hot_paths.py [--ticks 200] [--frames 100000] [--connections 1000]

Run it with PYTHONPATH at two checkouts in turn to compare them; the load average is printed beside.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from websockets.frames import Frame, Opcode

from wsmon.core.percentiles import Distribution
from wsmon.demo.runner import DEMO_DELIVERY_RULES
from wsmon.sources.tap_ipc import Sent
from wsmon.sources.tap_relay import TappedConnection
from wsmon.sources.tap_relays import TapRelays
from wsmon.sources.wire import (
    CloseFrame,
    ControlFrame,
    DataFrame,
    Message,
    ParseError,
    ParserFull,
    RequestHead,
    ResponseHead,
    WireParser,
)

REQUEST = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)
PAYLOAD = b'{"type":"chat","id":"m-123456","room":"r1","text":"hello there, this is a message"}'


def percentiles_ms_per_tick(ticks: int, late: float = 0.0) -> float:
    """``late``: the share of samples stamped 50 ms early, as when two sources' samples interleave."""
    rng = random.Random(1)
    dist = Distribution()
    mono = 0.0

    def add() -> None:
        nonlocal mono
        mono += 0.001
        dist.add(mono - (0.05 if rng.random() < late else 0.0), rng.random() * 10)

    for _ in range(70_000):
        add()
    spent = 0.0
    for _ in range(ticks):
        for _ in range(250):
            add()
        started = time.process_time()
        dist.window_percentiles(mono, (95,))
        dist.window_percentiles(mono, (50, 95))
        dist.window_percentiles(mono, (95,))
        spent += time.process_time() - started
    return spent / ticks * 1e3


class _Counting:
    """A WireObserver that only counts messages, so the parser's own time is what is measured."""

    def __init__(self) -> None:
        self.messages = 0

    def on_request(self, request: RequestHead) -> None: ...
    def on_response(self, response: ResponseHead) -> None: ...
    def on_data_frame(self, frame: DataFrame) -> None: ...
    def on_message(self, message: Message) -> None:
        self.messages += 1

    def on_frame_message(self, direction: str, kind: str, size: int, payload: bytes | None) -> None:
        self.messages += 1

    def on_control(self, control: ControlFrame) -> None: ...
    def on_close(self, close: CloseFrame) -> None: ...
    def on_parse_error(self, error: ParseError) -> None:
        raise RuntimeError(f"parse error: {error}")

    def on_parser_full(self, full: ParserFull) -> None:
        raise RuntimeError(f"parser full: {full}")


def wire_us_per_frame(frames: int) -> float:
    observer = _Counting()
    wire = WireParser(observer, payloads=True)
    wire.from_client(REQUEST)
    wire.from_server(RESPONSE)
    inbound = Frame(Opcode.TEXT, PAYLOAD).serialize(mask=True)
    outbound = Frame(Opcode.TEXT, PAYLOAD).serialize(mask=False)
    started = time.process_time()
    for _ in range(frames // 2):
        wire.from_client(inbound)
        wire.from_server(outbound)
    spent = time.process_time() - started
    if observer.messages != frames // 2 * 2:
        raise RuntimeError(f"parsed {observer.messages} messages of {frames // 2 * 2}")
    return spent / (frames // 2 * 2) * 1e6


class _Transport:
    """Stands for a socket's transport: takes the bytes and drops them."""

    def write(self, data: bytes) -> None: ...

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else None


def _connection(relays: TapRelays) -> TappedConnection:
    pair = relays.new_pair(_Transport())  # type: ignore[arg-type]
    pair.upstream = _Transport()  # type: ignore[assignment]
    pair.from_client(REQUEST)
    pair.from_upstream(RESPONSE)
    return pair


def relay_us_per_frame(messages: int, connections: int) -> tuple[float, int]:
    """CPU µs per frame through ``connections`` tapped connections, and the deliveries paired (one per
    message)."""
    sent: list[Sent] = []
    relays = TapRelays(sent.append, target="tap", upstream_url="ws://127.0.0.1:1/", rules=DEMO_DELIVERY_RULES)
    pairs = [_connection(relays) for _ in range(max(2, connections))]
    reads: list[tuple[TappedConnection, bool, bytes]] = []
    for number in range(messages):
        sender = pairs[2 * number % len(pairs)]
        receiver = pairs[(2 * number + 1) % len(pairs)]
        message_id = f"msg_1_{number}"
        body = "x" * (8 + number % 193)
        text = f'{{"type": "message", "id": "{message_id}", "to": "dev-2", "body": "{body}"}}'
        forwarded = f'{{"type":"message","id":"{message_id}","from":"dev-1","body":"{body}"}}'
        ack = f'{{"type": "ack", "id": "{message_id}"}}'
        reads.append((sender, True, Frame(Opcode.TEXT, text.encode()).serialize(mask=True)))
        reads.append((receiver, False, Frame(Opcode.TEXT, forwarded.encode()).serialize(mask=False)))
        accepted = f'{{"type":"accepted","id":"{message_id}"}}'.encode()
        reads.append((sender, False, Frame(Opcode.TEXT, accepted).serialize(mask=False)))
        reads.append((receiver, True, Frame(Opcode.TEXT, ack.encode()).serialize(mask=True)))
        delivered = f'{{"type":"delivered","id":"{message_id}"}}'.encode()
        reads.append((sender, False, Frame(Opcode.TEXT, delivered).serialize(mask=False)))
    sent.clear()
    started = time.process_time()
    for pair, from_client, data in reads:
        if from_client:
            pair.from_client(data)
        else:
            pair.from_upstream(data)
    spent = time.process_time() - started
    deliveries = sum(1 for item in sent if getattr(item, "kind", "") == "delivery")
    return spent / len(reads) * 1e6, deliveries


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=1000, help="tapped connections, for the relay")
    args = parser.parse_args()
    tick_ms = percentiles_ms_per_tick(args.ticks)
    print(f"percentiles, 3 queries over a full minute per tick: {tick_ms:.2f} ms CPU")
    tick_ms = percentiles_ms_per_tick(args.ticks, late=0.3)
    print(f"  the same with 30 % of the samples 50 ms out of order: {tick_ms:.2f} ms CPU")
    frame_us = wire_us_per_frame(args.frames)
    print(f"wire parser, one {len(PAYLOAD)}-byte text frame per read: {frame_us:.2f} µs CPU")
    messages = args.frames // 5
    for connections in sorted({2, args.connections}):
        runs = []
        for _ in range(3):  # the least of three: the machine is shared
            relay_us, deliveries = relay_us_per_frame(messages, connections)
            if deliveries != messages:
                raise RuntimeError(f"paired {deliveries} deliveries of {messages}")
            runs.append(relay_us)
        label = f"tap relay, the demo's 5-frame exchange over {connections} connections, per frame"
        print(f"{label}: {min(runs):.2f} µs CPU")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
