"""How long the dashboard takes to show a new State, and to answer a key, with 10,000 connections.

Goals (issue 12): with 10,000 tracked connections and 5,000 events/s, a new State is a drawn frame in
p95 ≤ 50 ms, and a key press is on screen in ≤ 100 ms. The dashboard's CPU at 50 clients (≤ 5 % of a
core, charts on) is measured in a real terminal by bench_dashboard_cpu.py; run that for the third goal.

`WsmonApp` runs headless (`run_test`, 160×50) on a feed whose Reducer already tracks the connections
and receives a generated stream (traffic, delivery latencies, opens and closes with codes, failures,
process samples) at the given rate in batches every 20 ms, as a live session's sources deliver them.

- frame: right after a batch, every widget is refreshed from the State (`refresh_from_state()` with
  figures and logs, what the app's timer does once a second) and the time runs until Textual hands the
  drawn update to the driver, which here also encodes it into the bytes a terminal would be sent.
  The app's own timer is slowed to once a minute so that only the measured refreshes draw.
- key: `space` is pressed and the time runs until the first drawn update whose header shows PAUSED
  (then `space` again, and the same until it no longer does).

    python bench/bench_dashboard_frames.py [--connections 10000] [--rate 5000] [--frames 60] [--keys 20]

Exits 1 when a goal is missed, like the other benches.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from bench_table_render import SyntheticFeed

from wsmon.core import events as ev
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import HeaderBar

SIZE = (160, 50)
BATCH_S = 0.02
FRAME_GOAL_MS = 50.0
KEY_GOAL_MS = 100.0
CLOSE_CODES = (1000, 1001, 1006, 1008, 1011, 1013)


class StreamFeed(SyntheticFeed):
    """SyntheticFeed's opened connections, a pause that really pauses, and a mixed stream at a rate."""

    def __init__(self, connections: int, rate: float) -> None:
        super().__init__(connections)
        self.per_batch = max(1, round(rate * BATCH_S))
        self.applied = 0
        self._next_conn = connections
        self._batches = 0

    def toggle_pause(self) -> None:
        self.paused = not self.paused

    def batch(self) -> None:
        """One BATCH_S worth of events, applied at once as the session's pump does."""
        self.mono += BATCH_S
        mono = self.mono
        events: list[ev.Event] = []
        for k in range(self.per_batch):
            n = self.applied + k
            conn = f"conn-{n * 7919 % self.rows:05d}"
            pick = n % 50
            if pick < 30:
                events.append(ev.Traffic(wall=0.0, mono=mono, conn=conn, msgs_in=1, msgs_out=1, bytes_in=130))
            elif pick < 45:
                events.append(ev.LatencySample(wall=0.0, mono=mono, kind="delivery", ms=2.0 + n % 40))
            elif pick < 47:
                events.append(
                    ev.DeliveryFailed(wall=0.0, mono=mono, message_id=f"m{n}", conn=conn, reason="timeout")
                )
            elif pick < 48:
                code = CLOSE_CODES[n % len(CLOSE_CODES)]
                events.append(
                    ev.ConnectionClosed(wall=0.0, mono=mono, conn=conn, code=code, closed_by="client")
                )
            elif pick == 48:
                events.append(ev.Traffic(wall=0.0, mono=mono, conn=conn, msgs_out=1, bytes_out=130))
            else:
                # New connections at a trickle: closed ones are kept too, so the tracked count only grows.
                self._next_conn += 1
                events.append(
                    ev.ConnectionOpened(
                        wall=0.0, mono=mono, conn=f"new-{self._next_conn}", peer="10.2.0.1:40000"
                    )
                )
        self._batches += 1
        if self._batches % round(1 / BATCH_S) == 0:  # a process sample a second
            events.append(
                ev.ProcessSample(
                    wall=0.0, mono=mono, target="server", pid=1, cpu_percent=30.0, rss_bytes=200 << 20,
                    threads=8, fds=self.rows + 20, tcp={"ESTABLISHED": self.rows, "LISTEN": 1},
                )
            )  # fmt: skip
        self.applied += len(events)
        self.reducer.apply_many(events)


class TimedApp(WsmonApp):
    """Notes when each update reaches the driver, and whether the header said PAUSED in it."""

    def __init__(self, feed: StreamFeed) -> None:
        super().__init__(feed, refresh_hz=1 / 60)
        self.drawn: list[tuple[float, bool]] = []
        self.encoded_bytes = 0

    def _display(self, screen: Any, renderable: Any) -> None:
        super()._display(screen, renderable)
        if renderable is not None and hasattr(renderable, "render_segments"):
            self.encoded_bytes += len(renderable.render_segments(self.console))
        self.drawn.append((time.perf_counter(), "PAUSED" in self.query_one(HeaderBar).text))


async def first_draw_after(app: TimedApp, start: float, paused: bool | None, timeout: float = 5.0) -> float:
    """Seconds from `start` to the first drawn update after it (whose header shows `paused`, if given)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for when, header_paused in app.drawn:
            if when > start and (paused is None or header_paused == paused):
                return when - start
        await asyncio.sleep(0.001)
    raise TimeoutError("no drawn update came")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> tuple[list[float], list[float], float, int]:
    feed = StreamFeed(args.connections, args.rate)
    app = TimedApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        app.set_interval(BATCH_S, feed.batch)
        await asyncio.sleep(1.0)  # first full paint, caches, a second of the stream
        gc.collect()
        applied0, wall0 = feed.applied, time.perf_counter()
        frames: list[float] = []
        for _ in range(args.frames):
            await asyncio.sleep(args.gap)
            app.drawn.clear()
            start = time.perf_counter()
            app.refresh_from_state()
            frames.append(await first_draw_after(app, start, None))
        keys: list[float] = []
        for _ in range(args.keys):
            await asyncio.sleep(args.gap)
            app.drawn.clear()
            start = time.perf_counter()
            await pilot.press("space")
            keys.append(await first_draw_after(app, start, feed.paused))
        rate = (feed.applied - applied0) / (time.perf_counter() - wall0)
        feed.stop()
        return frames, keys, rate, len(feed.state.connections)


def verdict(value: float, goal: float) -> str:
    return "MET" if value <= goal else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=5_000.0, help="events per second")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--keys", type=int, default=20, help="space presses (half pause, half resume)")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds of the stream between measurements")
    args = parser.parse_args(argv)

    frames, keys, rate, tracked = asyncio.run(run(args))
    frames_ms = [f * 1000 for f in frames]
    keys_ms = [k * 1000 for k in keys]
    print(
        f"WsmonApp headless {SIZE[0]}x{SIZE[1]}, {tracked:,} tracked connections, "
        f"{rate:,.0f} events/s applied (asked {args.rate:,.0f})"
    )
    rows = [
        ("State → drawn frame", frames_ms, "p95", percentile(frames_ms, 0.95), FRAME_GOAL_MS),
        ("key press → screen (space/PAUSED)", keys_ms, "max", max(keys_ms), KEY_GOAL_MS),
    ]
    print(f"{'figure':<36}{'n':>4}{'p50':>9}{'p95':>9}{'max':>9}   goal            verdict")
    missed = False
    for name, values, judged, figure, goal in rows:
        print(
            f"{name:<36}{len(values):>4}{statistics.median(values):>7.1f}ms{percentile(values, 0.95):>7.1f}ms"
            f"{max(values):>7.1f}ms   {judged} ≤ {goal:g} ms   {verdict(figure, goal)}"
        )
        missed = missed or figure > goal
    print(
        "The dashboard's CPU at 50 clients (goal ≤ 5 % of a core): "
        "python bench/bench_dashboard_cpu.py --clients 50 (real terminal, /proc)."
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
