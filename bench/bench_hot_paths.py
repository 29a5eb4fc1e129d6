"""Two of wsmon's per-event hot paths timed alone, in CPU time (issue 13's profile at 1,000 × 1 msg/s):

- the last minute's latency percentiles, asked three times per judge tick (judge, header, limits strip)
  while 1,000 samples/s arrive: a full window of 70,000 samples, then 250 samples and 3 queries a tick;
- the tap's wire parser, one short text frame per read in each direction (a masked one from the client,
  an unmasked one from the server), as at the demo's steady load.

    python bench/bench_hot_paths.py [--ticks 200] [--frames 100000]

Run it with PYTHONPATH at two checkouts in turn to compare them; the load average is printed beside.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from websockets.frames import Frame, Opcode

from wsmon.core.percentiles import Distribution
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--frames", type=int, default=100_000)
    args = parser.parse_args()
    tick_ms = percentiles_ms_per_tick(args.ticks)
    print(f"percentiles, 3 queries over a full minute per tick: {tick_ms:.2f} ms CPU")
    tick_ms = percentiles_ms_per_tick(args.ticks, late=0.3)
    print(f"  the same with 30 % of the samples 50 ms out of order: {tick_ms:.2f} ms CPU")
    frame_us = wire_us_per_frame(args.frames)
    print(f"wire parser, one {len(PAYLOAD)}-byte text frame per read: {frame_us:.2f} µs CPU")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
