"""A child process for the process-source tests: burns a known share of one core and holds a known
amount of memory; optionally listens on a TCP port and holds every connection it accepts.

Prints "ready PORT" (0 when not listening) once its memory is touched. Exits with ``--exit-code``
when a line (or end of file) arrives on stdin.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

PAGE = 4096
# A share missed while the scheduler ran something else is forgiven beyond this much, so the burner
# never catches up with a long burst that would skew a later measuring window.
MAX_DEBT_S = 0.05


def touch(mib: int) -> bytearray:
    """Allocate ``mib`` MiB and write to every page, so all of it is resident."""
    buf = bytearray(mib * 1024 * 1024)
    pages = len(range(0, len(buf), PAGE))
    buf[::PAGE] = b"\x01" * pages
    return buf


def burn(share: float) -> None:
    """Use ``share`` of one core, judged by this process's own CPU time, in ~1 ms slices."""
    wall0, cpu0 = time.monotonic(), time.process_time()
    while True:
        if share <= 0:
            time.sleep(3600)
            continue
        wall, cpu = time.monotonic(), time.process_time()
        owed = share * (wall - wall0) - (cpu - cpu0)
        if owed > MAX_DEBT_S:
            wall0, cpu0 = wall, cpu
        elif owed > 0:
            until = wall + 0.001
            while time.monotonic() < until:
                pass
        else:
            time.sleep(min(0.002, -owed / share))


def listen(port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    held: list[socket.socket] = []

    def accept_forever() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)  # never read or closed: a client's close leaves it in CLOSE_WAIT

    threading.Thread(target=accept_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--share", type=float, default=0.0, help="share of one core to burn, 0..1")
    parser.add_argument("--mib", type=int, default=0, help="MiB to allocate and touch")
    parser.add_argument("--listen", type=int, default=None, help="TCP port to listen on (0: any)")
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--tag", default="", help="a marker for finding this process by command line")
    args = parser.parse_args()

    memory = touch(args.mib)
    port = listen(args.listen).getsockname()[1] if args.listen is not None else 0

    def exit_on_stdin() -> None:
        sys.stdin.readline()
        os._exit(args.exit_code)

    threading.Thread(target=exit_on_stdin, daemon=True).start()
    print(f"ready {port}", flush=True)
    burn(args.share)
    del memory


if __name__ == "__main__":
    main()
