"""What pairing acks by value costs per message: the DeliveryMatcher fed the tap's traffic, in-process.

Each cycle is two text messages: a client's message (which becomes pending) and its ack. Shapes:

- flat:        {"type": "ack", "originalMessageId": …}: paired at the ack path;
- flat-off:    the same with match_values=false: the matcher as it was before pairing by value;
- nested:      {"type": "ack", "payload": {"originalMessageId": …, "status": "delivered"}}: by value;
- nested-off:  the same nested acks with match_values=false (reference: what the search adds);
- unrelated:   server messages that ack nothing while ids are outstanding: the walk finds nothing.
- wide:        nested acks padded with 40 unrelated string fields (the walk reads them all).

``--outstanding`` ids wait at all times (the matcher's index is a dict, so its size should not matter).

Cases alternate within each round and are timed in CPU time (the machine may be shared); the best
round of each is shown.

    python bench/bench_ack_pairing.py [--messages 40000] [--outstanding 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wsmon.sources.delivery import DeliveryMatcher, DeliveryRules  # noqa: E402

Shape = Callable[[str], bytes]


def request(message_id: str) -> bytes:
    body = {"text": "hello there", "sentAt": 1733100000000}
    return json.dumps({"type": "message", "id": message_id, "to": "device_2", "payload": body}).encode()


def flat(message_id: str) -> bytes:
    return json.dumps({"type": "ack", "originalMessageId": message_id, "status": "delivered"}).encode()


def nested(message_id: str) -> bytes:
    payload = {"originalMessageId": message_id, "status": "delivered", "timestamp": 1733100000001}
    return json.dumps({"type": "ack", "payload": payload}).encode()


def unrelated(_message_id: str) -> bytes:
    payload = {"deviceId": "device_7", "status": "online", "lastSeen": "2026-12-02T03:00:00Z"}
    return json.dumps({"type": "presence", "payload": payload}).encode()


def wide(message_id: str) -> bytes:
    padding = {f"field{index}": f"value {index}" for index in range(40)}
    payload = {**padding, "originalMessageId": message_id, "status": "delivered"}
    return json.dumps({"type": "ack", "payload": payload}).encode()


def run(shape: Shape, rules: DeliveryRules, messages: int, outstanding: int) -> tuple[float, int]:
    """µs per message over ``messages`` messages (half requests, half acks), and deliveries paired."""
    matcher = DeliveryMatcher(rules, timeout_s=1e9)
    for index in range(outstanding):
        matcher.on_message("in", "c0", request(f"msg_old_{index}"), 0.0)
    cycles = messages // 2
    traffic = [(request(f"msg_{i}"), shape(f"msg_{i}")) for i in range(cycles)]
    paired = 0
    on_message = matcher.on_message
    start = time.process_time()
    for index, (sent, ack) in enumerate(traffic):
        on_message("in", "c1", sent, float(index))
        paired += len(on_message("out", "c1", ack, float(index)))
    elapsed = time.process_time() - start
    return elapsed / (cycles * 2) * 1e6, paired


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--outstanding", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    off = DeliveryRules(match_values=False)
    cases: dict[str, tuple[Shape, DeliveryRules]] = {
        "flat": (flat, DeliveryRules()),
        "flat-off": (flat, off),
        "nested": (nested, DeliveryRules()),
        "nested-off": (nested, off),
        "unrelated": (unrelated, DeliveryRules()),
        "wide": (wide, DeliveryRules()),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    paired: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, (shape, rules) in cases.items():
            us, paired[name] = run(shape, rules, args.messages, args.outstanding)
            timings[name].append(us)
    print(f"{args.messages:,} messages a case, {args.outstanding:,} ids outstanding, best of {args.rounds}")
    best = {name: min(values) for name, values in timings.items()}
    for name in cases:
        share = f"paired {paired[name]:,} of {args.messages // 2:,}"
        print(f"  {name:<11} {best[name]:6.2f} µs/message   {share}")
    print(
        f"nested / flat: {best['nested'] / best['flat']:.2f}"
        f"   flat / flat-off: {best['flat'] / best['flat-off']:.2f}"
        f"   unrelated / flat-off: {best['unrelated'] / best['flat-off']:.2f}"
    )


if __name__ == "__main__":
    main()
