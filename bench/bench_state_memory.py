"""Bounded State: RSS and the State's sizes while an hour of a big server's events is folded and recorded.

Goal (issue 13, item 3): at 10,000 connections and 5,000 events/s for an hour, the State and the
recorder stay within a fixed memory. The events carry their own clock, so a simulated hour runs in a
few minutes. They are what wsmon sees of such a server through its tap and its log:

- churn: connections opened and closed through the tap (with the tap's upstream address, so the
  server's log rows are matched to them, docs/design.md "One connection, two witnesses"), the server's
  log reporting the same opens and closes, close codes in a realistic mix;
- traffic: the tap's per-connection Traffic reports, for a rotating share of the open connections;
- deliveries: latency samples with their message ids, a few failures; log lines; probe pings; a
  process sample a second.

They are folded by the reducer and appended to a recording (flushed every half second of session time,
as the live session does), and RSS is printed at the start, every ``--every`` simulated minutes and at
the end, with the sizes of what the State keeps.

    python bench/bench_state_memory.py [--minutes 60] [--connections 10000] [--rate 5000] [--every 10]
                                       [--trace]

`--trace` (tracemalloc, several times slower) prints, at the end, the source lines whose live memory grew
most between the first periodic report and the end: what grows, if anything does.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.core.state import State, encode_state
from wsmon.store import RecordingWriter, new_header

CHURN_SHARE = 0.005  # of the open connections closed (and as many opened) a second: 50/s at 10,000
DELIVERY_SHARE = 0.2  # of the events: delivery latency samples
LOGS_PER_SECOND = 50
PINGS_PER_SECOND = 5
FAILURES_PER_SECOND = 3
CLOSE_CODES = (1000,) * 80 + (1001,) * 10 + (1006,) * 6 + (1005,) * 2 + (1011, 4000)


class Server:
    """The simulated server's open connections, each seen by the tap and by the server's log."""

    def __init__(self, connections: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 0
        self.open: list[tuple[str, str, str]] = []  # (tap id, server log id, tap's upstream address)
        self.wall0 = 1_760_000_000.0
        self.mono0 = 86_400.0
        self.cursor = 0
        self.target = connections

    def opened(self, wall: float, mono: float) -> list[ev.Event]:
        self.next_id += 1
        n = self.next_id
        tap_id, log_id = f"tap:{n}", f"c{n}"
        local = f"127.0.0.1:{20000 + n % 40000}"
        self.open.append((tap_id, log_id, local))
        bits = self.rng.getrandbits
        return [
            ev.ConnectionOpened(
                wall=wall,
                mono=mono,
                conn=tap_id,
                peer=f"10.{bits(8)}.{bits(8)}.{bits(8)}:{30000 + bits(14)}",
                path="/ws",
                handshake_ms=self.rng.lognormvariate(1, 0.4),
                source="tap",
                local=local,
            ),
            ev.ConnectionOpened(wall=wall, mono=mono + 0.001, conn=log_id, peer=local, source="server"),
        ]

    def closed(self, wall: float, mono: float) -> list[ev.Event]:
        index = self.rng.randrange(len(self.open))
        self.open[index], self.open[-1] = self.open[-1], self.open[index]
        tap_id, log_id, _local = self.open.pop()
        code = self.rng.choice(CLOSE_CODES)
        by = "neither" if code == 1006 else self.rng.choice(("client", "server"))
        return [
            ev.ConnectionClosed(
                wall=wall, mono=mono, conn=tap_id, code=code, closed_by=by, duration_s=60.0, source="tap"
            ),
            ev.ConnectionClosed(
                wall=wall, mono=mono + 0.001, conn=log_id, code=code, closed_by=by, source="server"
            ),
        ]

    def second(self, index: int, rate: int) -> list[ev.Event]:
        """One simulated second's events, in time order."""
        rng = self.rng
        uniform = rng.random
        bits = rng.getrandbits
        mono = self.mono0 + index
        wall = self.wall0 + index
        timed: list[ev.Event] = []
        churn = max(1, round(self.target * CHURN_SHARE))
        # Closes first: a connection opened during this second is not closed before it opened.
        for _ in range(churn):
            offset = uniform()
            timed += self.closed(wall + offset, mono + offset)
        for _ in range(churn):
            offset = uniform()
            timed += self.opened(wall + offset, mono + offset)
        deliveries = round(rate * DELIVERY_SHARE)
        for _ in range(deliveries):
            offset = uniform()
            timed.append(
                ev.LatencySample(
                    wall=wall + offset,
                    mono=mono + offset,
                    kind="delivery",
                    ms=rng.lognormvariate(1.5, 0.5),
                    target="tap",
                    ref=f"msg_{bits(48):012x}",
                )
            )
        for _ in range(FAILURES_PER_SECOND):
            offset = uniform()
            _tap, log_id, _local = self.open[bits(30) % len(self.open)]
            timed.append(
                ev.DeliveryFailed(
                    wall=wall + offset,
                    mono=mono + offset,
                    message_id=f"msg_{bits(48):012x}",
                    conn=log_id,
                    reason=rng.choice(("Connection not open", "no ack within 5 s")),
                    source="server",
                )
            )
        for _ in range(LOGS_PER_SECOND):
            offset = uniform()
            timed.append(
                ev.LogLine(
                    wall=wall + offset,
                    mono=mono + offset,
                    level="info",
                    text=f"device-{bits(14)} registered",
                    source="server",
                )
            )
        for _ in range(PINGS_PER_SECOND):
            offset = uniform()
            timed.append(
                ev.LatencySample(
                    wall=wall + offset, mono=mono + offset, kind="ping", ms=rng.lognormvariate(0.3, 0.3)
                )
            )
        timed.append(
            ev.ProcessSample(
                wall=wall + 0.5,
                mono=mono + 0.5,
                target="server",
                pid=4242,
                cpu_percent=20 + uniform() * 30,
                rss_bytes=(400 << 20) + bits(24),
                threads=8,
                fds=40 + len(self.open),
                cores=2,
            )
        )
        timed.sort(key=lambda event: event.mono)
        # The tap reports traffic for the connections that had some, at its interval's end.
        traffic = max(0, rate - len(timed))
        tick = mono + 0.999
        out: list[ev.Event] = timed
        for _ in range(traffic):
            self.cursor = (self.cursor + 1) % len(self.open)
            msgs = 1 + bits(2)
            out.append(
                ev.Traffic(
                    wall=wall + 0.999,
                    mono=tick,
                    conn=self.open[self.cursor][0],
                    msgs_in=msgs,
                    msgs_out=msgs + bits(1),
                    bytes_in=msgs * (60 + bits(6)),
                    bytes_out=msgs * (60 + bits(7)),
                    interval_s=1.0,
                )
            )
        return out

    def start(self) -> list[ev.Event]:
        """The population connecting before the hour starts."""
        out: list[ev.Event] = []
        for i in range(self.target):
            at = i / self.target
            out += self.opened(self.wall0 - 1 + at, self.mono0 - 1 + at)
        return out


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sizes(state: State) -> dict[str, int]:
    """What the State keeps that could grow with time or with the connections seen."""
    return {
        "conns": len(state.connections),
        "open": state.open_count,
        "closed_kept": len(state.closed_order),
        "timelines": len(state.timelines),
        "tl_entries": sum(len(entries) for entries in state.timelines.values()),
        "fine": len(state.timeline.fine),
        "coarse": len(state.timeline.coarse),
        "cpu_series": len(state.cpu.values),
        "msgs_by_s": len(state.msgs_by_second),
        "refs": len(state.delivery_refs),
        "relayed": len(state.relayed_peers),
        "log_peers": len(state.log_peers),
        "pending_closes": sum(map(len, state.tap_closes.values())) + sum(map(len, state.log_closes.values())),
        "failures": len(state.failures),
        "logs": len(state.logs),
        "lat_window": sum(len(d.window_v) for d in state.latency.values()),
    }


def chunks(server: Server, seconds: int, rate: int) -> Iterator[tuple[int, list[ev.Event]]]:
    """Half seconds of events, as the session flushes them, each with the seconds completed so far."""
    yield 0, server.start()
    for second in range(seconds):
        events = server.second(second, rate)
        half = len(events) // 2
        yield second, events[:half]
        yield second + 1, events[half:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes")
    parser.add_argument("--connections", type=int, default=10_000, help="open connections held")
    parser.add_argument("--rate", type=int, default=5_000, help="events a simulated second")
    parser.add_argument("--every", type=float, default=10.0, help="print every this many simulated minutes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="tracemalloc: what grew most, by line")
    args = parser.parse_args()
    if args.trace:
        tracemalloc.start()
    first: list[tracemalloc.Snapshot] = []

    seconds = round(args.minutes * 60)
    every = max(1, round(args.every * 60))
    server = Server(args.connections, args.seed)
    reducer = Reducer()
    state = reducer.state
    print(
        f"{args.connections:,} connections, {args.rate:,} events/s, {args.minutes:g} simulated minutes;"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    keys = list(sizes(state))
    print(f"{'sim min':>7} {'wall s':>7} {'events':>11} {'RSS MiB':>8}  " + " ".join(f"{k:>8}" for k in keys))

    def report(label: str, started: float, events: int) -> None:
        row = sizes(state)
        print(
            f"{label:>7} {time.perf_counter() - started:>7.1f} {events:>11,} {rss_mib():>8.1f}  "
            + " ".join(f"{row[k]:>8,}" for k in keys),
            flush=True,
        )

    started = time.perf_counter()
    report("start", started, 0)
    events = 0
    with tempfile.TemporaryDirectory(prefix="wsmon-bench-state-") as tmp:
        path = Path(tmp) / "hour.wsmon"
        header = new_header(f"bench: {args.connections} connections, {args.rate} events/s")
        with RecordingWriter(path, header, overwrite=True) as writer:
            reported = 0
            for done, part in chunks(server, seconds, args.rate):
                reducer.apply_many(part)
                writer.extend(part)
                writer.flush(state)
                events += len(part)
                if done and (done % every == 0 or done == seconds) and done != reported:
                    reported = done
                    report(f"{done / 60:g}", started, events)
                    if args.trace and not first:
                        first.append(tracemalloc.take_snapshot())
            # Closing writes a last keyframe: the encoded State and its compression, a transient peak.
            writer.close(state)
        file_mib = path.stat().st_size / 2**20
    report("closed", started, events)
    elapsed = time.perf_counter() - started
    print(
        f"{events:,} events in {elapsed:.0f} s ({events / elapsed:,.0f}/s); recording {file_mib:,.0f} MiB"
        f" ({file_mib * 2**20 / events:.1f} B/event); the State encoded (a full keyframe)"
        f" {len(encode_state(state)) / 2**20:.1f} MiB; load average {os.getloadavg()[0]:.2f}"
    )
    if first:
        print("\ngrew most since the first report (tracemalloc, by line):")
        for diff in tracemalloc.take_snapshot().compare_to(first[0], "lineno")[:12]:
            print(f"  {diff}")


if __name__ == "__main__":
    main()
