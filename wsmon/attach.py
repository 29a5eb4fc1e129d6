"""`wsmon attach`, `wsmon check` and `wsmon run`'s watching: the sources that watch the resolved
targets (wsmon.config resolves them from flags, environment and wsmon.toml), and the one pass of
checks `wsmon check` makes over them.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsmon.config import AttachOptions
from wsmon.core.events import LogLine
from wsmon.core.limits import Limit
from wsmon.core.redact import redact_argv, redact_url
from wsmon.outputs.publish import Publisher
from wsmon.session import Session, Source
from wsmon.sources.base import CheckResult, now
from wsmon.sources.feeds import FeedSource, FeedSpec
from wsmon.sources.http import HealthSource, MetricsSource
from wsmon.sources.logs.source import LogFileSource, StdinLogSource
from wsmon.sources.postgres import PostgresSource
from wsmon.sources.probe import ProbeConfig, ProbeSource
from wsmon.sources.process import ProcessSource, pid_from_name, pid_from_port
from wsmon.sources.redis_source import RedisSource
from wsmon.sources.server import ServerSource, check_program
from wsmon.sources.tap import TapSource

CHECK_TIMEOUT_S = 10.0


# --- sources ---------------------------------------------------------------------------------------


def build_sources(options: AttachOptions) -> list[Source]:
    sources: list[Source] = []
    server: ServerSource | None = None
    if options.server:
        server = ServerSource(options.server, target="server", rules=options.log_rules)
        sources.append(server)
    for number, spec in enumerate(options.taps, 1):
        tap = TapSource(
            spec.listen.host,
            spec.listen.port,
            spec.upstream,
            target=tap_names(options)[number - 1],
            interval=options.interval,
            ca_file=options.ca_file or "",
            rules=options.delivery_rules,
            delivery_timeout_s=options.delivery_timeout,
            # The tap fronts the server whose log wsmon reads: the tap's rows own the counts.
            covers=log_names(options),
            starting=server is not None,
            workers=options.tap_workers,
        )
        if server is not None:
            server.exit_listeners.append(tap.upstream_exited)
        sources.append(tap)
    for name, path in zip(log_names(options)[1 if server else 0 :], options.logs, strict=True):
        if path == "-":
            follow = options.follow is True
            sources.append(StdinLogSource(target="stdin", parser_rules=options.log_rules, follow=follow))
        else:
            follow = options.follow is not False
            sources.append(LogFileSource(path, target=name, parser_rules=options.log_rules, follow=follow))
    for number, spec in enumerate(options.feeds, 1):
        sources.append(FeedSource(spec, target="feed" if len(options.feeds) == 1 else f"feed{number}"))
    if options.url and options.probes > 0:
        sources.append(ProbeSource(_probe_config(options)))
    process = _process_source(options, server)
    if process is not None:
        sources.append(process)
    if options.redis:
        sources.append(RedisSource(options.redis, interval=options.interval))
    if options.postgres:
        sources.append(PostgresSource(options.postgres, interval=options.interval))
    if options.health:
        sources.append(HealthSource(options.health, interval=options.interval))
    if options.metrics:
        sources.append(MetricsSource(options.metrics, interval=options.interval, series=options.series))
    return sources


def tap_names(options: AttachOptions) -> list[str]:
    return ["tap"] if len(options.taps) == 1 else [f"tap{n}" for n in range(1, len(options.taps) + 1)]


def log_names(options: AttachOptions) -> list[str]:
    """The targets whose lines are the server's log: a --server's output, then each --log."""
    names = ["server"] if options.server else []
    for number, path in enumerate(options.logs, 1):
        names.append("stdin" if path == "-" else "log" if len(options.logs) == 1 else f"log{number}")
    return names


def starting_targets(options: AttachOptions) -> list[str]:
    """With --server, wsmon starts the server: it and whatever watches it are STARTING until they first
    answer, so the server's start-up is not reported as their outage."""
    if not options.server:
        return []
    names = ["server", *tap_names(options)]
    if options.url and options.probes > 0:
        names.append("websocket")
    if options.process_wanted():
        names.append("process")
    names += [name for name in ("health", "metrics") if getattr(options, name)]
    return names


def _probe_config(options: AttachOptions) -> ProbeConfig:
    assert options.url is not None
    return ProbeConfig(
        url=options.url,
        count=max(options.probes, 1),
        interval=options.interval,
        reconnect_every=options.reconnect_every,
        request=options.request,
        reply_contains=options.reply_contains,
        ca_file=options.ca_file,
        insecure=options.insecure,
        headers=tuple(options.headers),
        subprotocols=tuple(options.subprotocols),
        origin=options.origin,
        first_exchange=tuple(options.first_exchange),
    )


def _process_source(options: AttachOptions, server: ServerSource | None) -> ProcessSource | None:
    port = options.process_port()
    common = {"interval": options.interval, "cpu_basis": options.cpu_basis}
    if server is not None and options.pid is None and options.process is None:
        # The server wsmon started is the process to watch, whatever port it listens on.
        return ProcessSource(lambda: server.pid, port=port, **common)
    if options.pid is not None:
        return ProcessSource.for_pid(options.pid, port=port, **common)
    if options.process is not None:
        return ProcessSource.for_name(options.process, port=port, **common)
    if port is not None:
        return ProcessSource.for_port(port, **common)
    return None


def targets_of(options: AttachOptions) -> list[dict[str, str]]:
    out = []
    for name in ("url", "redis", "postgres", "health", "metrics"):
        value = getattr(options, name)
        if value:
            # The same name and kind as the source's TargetAdded, so header and events agree.
            target = "websocket" if name == "url" else name
            kind = {"url": "websocket", "health": "http", "metrics": "http"}.get(name, name)
            out.append({"name": target, "kind": kind, "address": redact_url(value)})
    if options.process_wanted():
        how = (
            f"pid {options.pid}"
            if options.pid is not None
            else f"name {options.process}"
            if options.process
            else f"port {options.process_port()}"
        )
        out.append({"name": "process", "kind": "process", "address": how})
    return out


def reads_finite_logs_only(options: AttachOptions) -> bool:
    """Only saved logs read to their end (no --follow), nothing live: a headless session can end with
    them (`wsmon attach --log - --headless < saved.log`)."""
    if options.configured() != ["logs"] or options.follow is True:
        return False
    return options.follow is False or all(path == "-" for path in options.logs)


def build_attach_session(
    options: AttachOptions, *, limits: tuple[Limit, ...], record: Path | None, duration: float | None
) -> Session:
    title = "attach · " + (redact_url(options.url) if options.url else ", ".join(options.configured()))
    session = Session(
        build_sources(options),
        title=title,
        limits=limits,
        record=record,
        command="wsmon attach " + " ".join(options.configured()),
        targets=targets_of(options),
        duration=duration,
        starting=starting_targets(options),
    )
    add_publisher(session, options)
    return session


def add_publisher(session: Session, options: AttachOptions) -> None:
    """`--publish`: the session's events to the fleet's stream; its outages are the session's log lines."""
    if not options.publish:
        return

    def report(text: str) -> None:
        wall, mono = now()
        session.emit(LogLine(wall=wall, mono=mono, level="warn", text=text, source="wsmon"))

    session.sinks.append(Publisher(options.publish, options.node or socket.gethostname(), on_error=report))


# --- check -----------------------------------------------------------------------------------------


@dataclass
class CheckRow:
    target: str
    address: str
    result: CheckResult


async def _check_process(options: AttachOptions) -> CheckResult:
    started = time.perf_counter()
    port = options.process_port()
    if options.pid is not None:
        import psutil

        ok = psutil.pid_exists(options.pid)
        error = "" if ok else f"no process with pid {options.pid}"
    elif options.process is not None:
        ok = await asyncio.to_thread(pid_from_name, options.process) is not None
        error = "" if ok else f"no process named {options.process!r}"
    else:
        assert port is not None
        ok = await asyncio.to_thread(pid_from_port, port) is not None
        error = "" if ok else f"no process of this user is listening on port {port}"
    ms = (time.perf_counter() - started) * 1000.0
    hint = "" if ok else "start the server, or run wsmon as the server's user"
    return CheckResult(ok=ok, latency_ms=ms, error=error, hint=hint, kind="" if ok else "missing")


async def _check_server_command(command: str) -> CheckResult:
    """`--server CMD` is started by wsmon later: what can be checked now is that its program exists."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return CheckResult(ok=False, error=f"not a command line: {exc}", kind="usage")
    return check_program(argv)


async def _check_log_file(path: str) -> CheckResult:
    """A `--log FILE` must exist and be readable now; `-` (stdin) needs nothing."""
    started = time.perf_counter()
    error, hint = "", ""
    if path != "-":
        if not os.path.exists(path):
            error, hint = "no such file", "start the server first, or check the path"
        elif os.path.isdir(path):
            error, hint = "a directory, not a file", "give the log file itself"
        elif not os.access(path, os.R_OK):
            error, hint = "not readable", "run wsmon as a user who may read it"
    ms = (time.perf_counter() - started) * 1000.0
    return CheckResult(ok=not error, latency_ms=ms, error=error, hint=hint, kind="missing" if error else "")


def _tap_check(options: AttachOptions, upstream: str) -> Any:
    """A tap is only as good as its upstream: connect to it as a probe would."""
    config = ProbeConfig(url=upstream, count=1, ca_file=options.ca_file, insecure=options.insecure)
    return ProbeSource(config).check()


def _feed_check(spec: FeedSpec) -> Any:
    source = PostgresSource(spec.url) if spec.kind == "postgres" else RedisSource(spec.url)
    return source.check()


def _shown_command(command: str) -> str:
    try:
        return shlex.join(redact_argv(shlex.split(command)))
    except ValueError:
        return redact_url(command)


def server_notice(options: AttachOptions) -> str:
    """The line said before a server command is started, naming where it came from."""
    if not options.server:
        return ""
    origin = "--server" if options.server_where in ("", "--server") else options.server_where
    return f"wsmon: starting the server command from {origin}: {_shown_command(options.server)}"


def _numbered(kind: str, count: int, number: int) -> str:
    return kind if count == 1 else f"{kind}{number}"


async def run_checks(options: AttachOptions) -> list[CheckRow]:
    """One pass over every configured target, concurrently, each bounded in time."""
    jobs: list[tuple[str, str, Any]] = []
    if options.server:
        jobs.append(("server", _shown_command(options.server), _check_server_command(options.server)))
    for number, tap in enumerate(options.taps, 1):
        name = _numbered("tap", len(options.taps), number)
        jobs.append((name, redact_url(tap.upstream), _tap_check(options, tap.upstream)))
    for number, path in enumerate(options.logs, 1):
        name = "stdin" if path == "-" else _numbered("log", len(options.logs), number)
        jobs.append((name, path, _check_log_file(path)))
    for number, feed in enumerate(options.feeds, 1):
        jobs.append((_numbered("feed", len(options.feeds), number), feed.shown, _feed_check(feed)))
    if options.publish:
        jobs.append(("publish", redact_url(options.publish), RedisSource(options.publish).check()))
    if options.url:
        jobs.append(("websocket", redact_url(options.url), ProbeSource(_probe_config(options)).check()))
    locatable = options.pid is not None or options.process is not None or options.process_port() is not None
    if locatable:
        jobs.append(("process", targets_of(options)[-1]["address"], _check_process(options)))
    if options.redis:
        jobs.append(("redis", redact_url(options.redis), RedisSource(options.redis).check()))
    if options.postgres:
        jobs.append(("postgres", redact_url(options.postgres), PostgresSource(options.postgres).check()))
    if options.health:
        jobs.append(("health", redact_url(options.health), HealthSource(options.health).check()))
    if options.metrics:
        jobs.append(
            (
                "metrics",
                redact_url(options.metrics),
                MetricsSource(options.metrics, series=options.series).check(),
            )
        )

    async def bounded(coro: Any) -> CheckResult:
        try:
            return await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT_S)
        except TimeoutError:
            return CheckResult(ok=False, error=f"no answer within {CHECK_TIMEOUT_S:.0f} s", kind="timeout")
        except Exception as exc:  # a check must report, never crash the table
            return CheckResult(ok=False, error=str(exc) or type(exc).__name__, kind="error")

    results = await asyncio.gather(*(bounded(job) for _, _, job in jobs))
    return [CheckRow(name, address, result) for (name, address, _), result in zip(jobs, results, strict=True)]
