"""A tap worker: the process that forwards the clients' bytes and reads their frames, away from the screen.

``python -m wsmon.sources.tap_worker CONFIG`` (CONFIG: a ``tap_ipc.WorkerConfig`` as JSON) accepts on the
listening socket the session opened and handed down, relays every connection (``tap_relays.py``), and
sends what it saw in batches — at most ``batch_s`` old, or ``BATCH_ITEMS`` items — over the Unix socket
the session handed down with it. It runs on uvloop when asked and importable. It stops when the session
closes its end of that socket, or on SIGTERM: it then cuts its connections ("wsmon stopped"), sends the
closes, and exits. SIGINT is left to the session (a Ctrl-C reaches the whole terminal's group).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time

import msgspec

from wsmon.sources.tap_ipc import LISTEN_BACKLOG, Sent, UpstreamNote, WorkerConfig, frame
from wsmon.sources.tap_lag import LoopLag
from wsmon.sources.tap_relays import TapRelays

BATCH_ITEMS = 512  # sent at once past this many, not at the next tick
STOP_DRAIN_S = 0.5  # after cutting the connections, the longest wait for their closes to be seen


class _Batcher:
    """Items into batches on the session's socket."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.items: list[Sent] = []

    def add(self, item: Sent) -> None:
        self.items.append(item)
        if len(self.items) >= BATCH_ITEMS:
            self.flush()

    def flush(self) -> None:
        if self.items and not self.writer.is_closing():
            items, self.items = self.items, []
            self.writer.write(frame(items))


async def serve(config: WorkerConfig) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=config.ipc_fd))
    batcher = _Batcher(writer)
    relays = TapRelays(
        batcher.add,
        target=config.target,
        upstream_url=config.upstream_url,
        rules=config.rules,
        delivery_timeout_s=config.delivery_timeout_s,
        conn_prefix=f"w{config.worker}.{config.generation}." if config.worker or config.generation else "",
        pair_here=config.pair_here,
        ca_file=config.ca_file,
    )
    servers: list[asyncio.Server] = []
    for fd in config.listen_fds:
        listening = socket.socket(fileno=fd)
        listening.setblocking(False)
        servers.append(await loop.create_server(relays.protocol, sock=listening, backlog=LISTEN_BACKLOG))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    batcher.add(UpstreamNote("ready"))
    batcher.flush()
    lag = LoopLag(relays.saturation)
    lag.start()
    session_gone = loop.create_task(reader.read())  # the session sends nothing: EOF is "stop"
    stopping = loop.create_task(stop.wait())
    next_tick = time.monotonic() + config.interval
    try:
        while not (session_gone.done() or stopping.done()):
            # A plain sleep, not asyncio.wait on the two tasks: that made a waiter, a timeout and two
            # done-callbacks 20 times a second, a good part of an idle worker's cost. A stop is seen
            # within one batch interval all the same.
            await asyncio.sleep(config.batch_s)
            if time.monotonic() >= next_tick:
                next_tick += config.interval
                relays.tick()
            else:
                relays.check_saturation()  # at once, not at the next tick: it decides how samples count
            batcher.flush()
            if writer.transport.get_write_buffer_size() > 0:
                await writer.drain()
    except ConnectionError:
        return  # the session is gone: nobody to tell
    finally:
        lag.stop()
        for server in servers:
            server.close()
        relays.abort_all("wsmon stopped")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_DRAIN_S):
                while relays.pairs:
                    await asyncio.sleep(0.01)
        relays.release(everything=True)
        batcher.flush()
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(STOP_DRAIN_S):
                await writer.drain()
        writer.close()
        for task in (session_gone, stopping):
            task.cancel()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m wsmon.sources.tap_worker CONFIG_JSON", file=sys.stderr)
        return 2
    config = msgspec.json.decode(argv[1], type=WorkerConfig)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if config.uvloop:
        try:
            import uvloop
        except ImportError:  # the session asked for it because it found it: a broken install
            pass
        else:
            uvloop.run(serve(config))
            return 0
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
