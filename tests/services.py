"""Real Redis and PostgreSQL for tests: the machine's own (read-only use), or PRIVATE instances.

Private instances run on a free port in a temp dir, as child processes in their own process group, so
a test can kill -9 them and start them again on the same port without touching the machine's servers.
As root, PostgreSQL runs as the ``postgres`` user (it refuses to run as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psutil
import pytest
from helpers import free_port, wait_until

from wsmon.core.events import Event
from wsmon.core.redact import redact_url

REDIS_URL = os.environ.get("WSMON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("WSMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SHOWN_REDIS_URL = redact_url(REDIS_URL)
SHOWN_DATABASE_URL = redact_url(DATABASE_URL)
START_TIMEOUT = 30.0


def unavailable(reason: str) -> None:
    """Skip locally; in CI a missing service is a failure, not a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"required test service unavailable in CI: {reason}")
    pytest.skip(reason)



def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class _Private:
    """A server process in its own process group: killable as a whole, restartable on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"wsmon-{type(self).__name__.lower()}-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_tree(self, signum: int) -> None:
        # Not killpg alone: PostgreSQL's backends each call setsid() and leave the group.
        assert self.proc is not None
        try:
            tree = [psutil.Process(self.proc.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signum)

    def kill(self) -> None:
        """kill -9 the server and every process it started; the port is free when this returns."""
        if self.proc is None:
            return
        self._signal_tree(signal.SIGKILL)
        proc, self.proc = self.proc, None
        proc.wait(10)
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, f"port {self.port} to close")

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers, like a hung host."""
        self._signal_tree(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _spawn(self, argv: list[str], log: Path, user: str | None = None) -> None:
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=user,
                cwd=self.dir,
            )


class PrivateRedis(_Private):
    """``redis-server`` with no persistence; ``extra`` are config directives, e.g. ("--requirepass", "x")."""

    def __init__(self, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.binary = str(binary)
        self.extra = list(extra)
        super().__init__()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.dir),
            *self.extra,
        ]
        self._spawn(argv, self.dir / "redis.log")
        wait_until(self._ready, START_TIMEOUT, f"redis-server on port {self.port}")

    def _ready(self) -> bool:
        if not self.running:
            raise RuntimeError(f"redis-server exited: {(self.dir / 'redis.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


class PrivatePostgres(_Private):
    """A PostgreSQL cluster of its own (initdb into a temp dir); TCP connections need ``password``.

    The superuser is ``postgres`` with ``password``; the Unix socket in the temp dir trusts everyone.
    """

    def __init__(self, password: str = "pg-secret", *settings: str) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            unavailable("PostgreSQL server binaries (initdb, postgres) are not installed")
        assert bindir is not None
        self.bindir = bindir
        self.password = password
        self.settings = list(settings)
        self.user: str | None = None
        super().__init__()
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
            self.user = "postgres"
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.data = self.dir / "data"
        pwfile = self.dir / "pw"
        pwfile.write_text(password + "\n")
        if self.user:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.dir,
        )

    def url(self, user: str = "postgres", password: str | None = None, database: str = "postgres") -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=16MB",
            "-c",
            "max_connections=30",
            "-c",
            "deadlock_timeout=100ms",
            *self.settings,
        ]
        self._spawn(argv, self.dir / "postgres.log", user=self.user)
        wait_until(self._ready, START_TIMEOUT, f"postgres on port {self.port}")

    def _ready(self) -> bool:
        if not self.running:
            raise RuntimeError(f"postgres exited: {(self.dir / 'postgres.log').read_text()[-2000:]}")
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", str(self.dir), "-p", str(self.port)], check=False
        )
        return result.returncode == 0


@contextlib.contextmanager
def demo_server_process() -> Iterator[int]:
    """The reference WebSocket server (wsmon.demo.server) as a child process; yields its port."""
    import sys

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsmon.demo.server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 15, f"demo server on port {port}")
        yield port
    finally:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def private_redis(*extra: str) -> Iterator[PrivateRedis]:
    server = PrivateRedis(*extra)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def private_postgres(password: str = "pg-secret") -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(password)
    try:
        server.start()
        yield server
    finally:
        server.close()


class Collector:
    """The emit callback for a source under test: keeps every event and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._arrived = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()

    def of(self, kind: type[Event], after: int = 0) -> list[Event]:
        return [e for e in self.events[after:] if isinstance(e, kind)]

    async def wait_for(
        self,
        kind: type[Event],
        where: Callable[[Event], bool] = lambda e: True,
        *,
        after: int = 0,
        timeout: float = 10.0,
    ) -> Event:
        """The first ``kind`` event at index ``after`` or later that satisfies ``where``."""
        seen = after
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[seen:]:
                    if isinstance(event, kind) and where(event):
                        return event
                seen = max(seen, len(self.events))
                self._arrived.clear()
                await self._arrived.wait()


@contextlib.asynccontextmanager
async def running(source: object, collector: Collector) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``source.run(collector)`` as a task; on exit, check it never ended by itself, then cancel it."""
    task = asyncio.create_task(source.run(collector))  # type: ignore[attr-defined]
    try:
        yield task
        assert not task.done(), (
            f"run() ended by itself: {task.exception() if not task.cancelled() else 'cancelled'}"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
