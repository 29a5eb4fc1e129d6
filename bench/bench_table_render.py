"""CPU cost of the connections table against a stock DataTable, measured in the same run.

Each case runs headless for ``--seconds`` with 50 or 1,000 rows; four times a second five rows get
one new cell value (the ``changing`` cases) or nothing changes at all (``idle``). The figure is
CPU seconds per wall second of this process (``time.process_time``), i.e. the fraction of one core.

Headless Textual composes every update but writes nothing; unless ``--no-encode`` is given, each
update is also encoded into the escape sequences a terminal would receive, so the figure includes
that cost too. The real-terminal figure for the whole dashboard is measured separately (tmux).

    python bench/bench_table_render.py [--seconds 10] [--rows 50 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from wsmon.core import events as ev
from wsmon.core.closecodes import close_code_label
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import Reducer
from wsmon.core.state import State
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import ConnectionsTable

SIZE = (160, 60)
TICK_S = 0.25
CHANGED_PER_TICK = 5
COLUMNS = ("id", "peer", "state", "age", "msgs in", "msgs out", "last close", "closed by")


class BenchApp(App[None]):
    """Holds one table; ``encode`` turns each compositor update into terminal bytes, as a driver would."""

    def __init__(self, table_factory: Callable[[], Any], encode: bool) -> None:
        super().__init__()
        self._table_factory = table_factory
        self._encode = encode
        self.encoded_bytes = 0

    def compose(self) -> ComposeResult:
        yield self._table_factory()

    def _display(self, screen: Any, renderable: Any) -> None:
        super()._display(screen, renderable)
        if self._encode and renderable is not None and hasattr(renderable, "render_segments"):
            self.encoded_bytes += len(renderable.render_segments(self.console))


def _opened_events(rows: int) -> list[ev.Event]:
    # Opened two hours before "now", so the age column stays "2h00m" during the run for both tables.
    return [
        ev.ConnectionOpened(
            wall=0.0, mono=float(i) * 1e-3, conn=f"conn-{i:05d}", peer=f"10.1.{i // 250}.{i % 250}:4{i:04d}"
        )
        for i in range(rows)
    ]


class ConnectionsCase:
    name = "ConnectionsTable"

    def __init__(self, rows: int) -> None:
        self.reducer = Reducer()
        self.reducer.apply_many(_opened_events(rows))
        self.reducer.apply(ev.Marker(wall=0.0, mono=7200.0, text="now"))
        self.rows = rows
        self.mono = 7200.0
        self.table = ConnectionsTable()

    def mounted(self) -> None:
        self.table.update_from(self.reducer.state)

    def tick(self, n: int, changing: bool) -> None:
        if changing:
            for k in range(CHANGED_PER_TICK):
                self.mono += 0.001
                # Newest first: the highest-numbered rows are the ones on screen, as in the DataTable case.
                row = self.rows - 1 - (n * CHANGED_PER_TICK + k) % min(self.rows, 50)
                conn = f"conn-{row:05d}"
                self.reducer.apply(ev.Traffic(wall=0.0, mono=self.mono, conn=conn, msgs_in=1))
        # The app's timer calls this every tick whether or not anything changed.
        self.table.update_from(self.reducer.state)


class DataTableCase:
    name = "DataTable"

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.counts = [0] * rows
        self.table: DataTable[str] = DataTable()

    def mounted(self) -> None:
        for column in COLUMNS:
            self.table.add_column(column, key=column)
        for i in range(self.rows):
            self.table.add_row(
                f"conn-{i:05d}",
                f"10.1.{i // 250}.{i % 250}:4{i:04d}",
                "OPEN",
                "2h00m",
                "0",
                "0",
                close_code_label(None),
                "",
                key=f"conn-{i:05d}",
            )

    def tick(self, n: int, changing: bool) -> None:
        if not changing:
            return
        for k in range(CHANGED_PER_TICK):
            i = (n * CHANGED_PER_TICK + k) % min(self.rows, 50)
            self.counts[i] += 1
            self.table.update_cell(f"conn-{i:05d}", "msgs in", str(self.counts[i]))


async def measure(case: Any, seconds: float, changing: bool, encode: bool) -> tuple[float, int]:
    app = BenchApp(lambda: case.table, encode)
    async with app.run_test(size=SIZE) as pilot:
        case.mounted()
        await pilot.pause()
        n = 0

        def tick() -> None:
            nonlocal n
            n += 1
            case.tick(n, changing)

        app.set_interval(TICK_S, tick)
        await asyncio.sleep(1.0)  # warm-up: first full paint and caches
        gc.collect()
        cpu0, wall0, bytes0 = time.process_time(), time.perf_counter(), app.encoded_bytes
        await asyncio.sleep(seconds)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        return (cpu1 - cpu0) / (wall1 - wall0), app.encoded_bytes - bytes0


class SyntheticFeed:
    """A live-looking session for the whole-dashboard case: traffic on a quarter of the connections
    every tick, a delivery latency sample per message, one process sample a second."""

    mode = "live"
    paused = False
    notice = ""
    limits = DEFAULT_LIMITS
    title = "bench · ws://127.0.0.1:9/"

    def __init__(self, rows: int) -> None:
        self.reducer = Reducer()
        self.reducer.apply_many(_opened_events(rows))
        self.rows = rows
        self.mono = 7200.0
        self._stop = asyncio.Event()
        self._n = 0

    @property
    def state(self) -> State:
        return self.reducer.state

    def toggle_pause(self) -> None:
        pass

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self._stop.wait()

    def tick(self) -> None:
        self._n += 1
        self.mono += TICK_S
        events: list[ev.Event] = []
        busy = max(1, self.rows // 4)
        for k in range(busy):
            conn = f"conn-{(self._n * busy + k) % self.rows:05d}"
            events.append(ev.Traffic(wall=0.0, mono=self.mono, conn=conn, msgs_in=1, msgs_out=1))
            events.append(ev.LatencySample(wall=0.0, mono=self.mono, kind="delivery", ms=2.0 + k % 7))
        if self._n % 4 == 0:
            events.append(
                ev.ProcessSample(
                    wall=0.0,
                    mono=self.mono,
                    target="server",
                    pid=1,
                    cpu_percent=20.0 + self._n % 30,
                    rss_bytes=(100 + self._n % 50) << 20,
                    threads=8,
                    fds=self.rows + 20,
                    tcp={"ESTABLISHED": self.rows, "LISTEN": 1},
                )
            )
        self.reducer.apply_many(events)


async def measure_dashboard(rows: int, seconds: float, encode: bool) -> tuple[float, int]:
    feed = SyntheticFeed(rows)

    class Dashboard(WsmonApp):
        encoded_bytes = 0

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            if encode and renderable is not None and hasattr(renderable, "render_segments"):
                self.encoded_bytes += len(renderable.render_segments(self.console))

    app = Dashboard(feed)
    async with app.run_test(size=SIZE):
        app.set_interval(TICK_S, feed.tick)
        await asyncio.sleep(1.0)
        gc.collect()
        cpu0, wall0, bytes0 = time.process_time(), time.perf_counter(), app.encoded_bytes
        await asyncio.sleep(seconds)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        feed.stop()
        return (cpu1 - cpu0) / (wall1 - wall0), app.encoded_bytes - bytes0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 1000])
    parser.add_argument("--no-encode", action="store_true", help="skip encoding updates into terminal bytes")
    parser.add_argument("--no-dashboard", action="store_true", help="skip the whole-dashboard cases")
    args = parser.parse_args()
    encode = not args.no_encode

    print(
        f"{args.seconds:g} s a case, {SIZE[0]}x{SIZE[1]} headless, {CHANGED_PER_TICK} cells every {TICK_S} s,"
        f" encode={'on' if encode else 'off'}"
    )
    print(f"{'case':<34}{'% of a core':>12}{'bytes/s':>12}")
    for rows in args.rows:
        for changing in (True, False):
            figures = {}
            for factory in (ConnectionsCase, DataTableCase):
                case = factory(rows)
                cpu, written = await measure(case, args.seconds, changing, encode)
                figures[case.name] = cpu
                label = f"{case.name} {rows} rows {'changing' if changing else 'idle'}"
                print(f"{label:<34}{cpu * 100:>11.2f}%{written / args.seconds:>12,.0f}", flush=True)
            ours = figures["ConnectionsTable"]
            ratio = figures["DataTable"] / ours if ours > 0 else float("inf")
            print(f"{'  → DataTable / ConnectionsTable':<34}{ratio:>11.1f}×", flush=True)
    if not args.no_dashboard:
        print("whole dashboard (WsmonApp + reducer), synthetic live session:")
        for rows in args.rows:
            cpu, written = await measure_dashboard(rows, args.seconds, encode)
            label = f"WsmonApp {rows} connections"
            print(f"{label:<34}{cpu * 100:>11.2f}%{written / args.seconds:>12,.0f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
