"""The source contract (wsmon.sources.base): every source is a Source, a PolledSource turns its passes
into UP and DOWN, and the session stops sources by their StopOrder."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil

from services import Collector, free_port, running

import wsmon.sources
from wsmon import session as session_module
from wsmon.core import events as ev
from wsmon.session import Session
from wsmon.sources.base import (
    CheckResult,
    Down,
    Emit,
    PolledSource,
    Retell,
    Source,
    StopOrder,
    TargetStatus,
    Up,
)

INTERVAL = 0.05


def _classes_with_a_run_emit() -> dict[str, type]:
    """Every class defined in wsmon.sources whose ``run`` is a coroutine taking ``emit``: a source."""
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(wsmon.sources.__path__, "wsmon.sources."):
        module = importlib.import_module(module_info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            run = getattr(cls, "run", None)
            if cls.__module__ != module.__name__ or not inspect.iscoroutinefunction(run):
                continue
            if "emit" in inspect.signature(run).parameters:
                found[f"{module.__name__}.{name}"] = cls
    return found


def test_every_source_in_wsmon_sources_is_a_source_with_the_contract_implemented() -> None:
    sources = _classes_with_a_run_emit()
    names = {qualified.rsplit(".", 1)[1] for qualified in sources}
    expected = {"ProbeSource", "TapSource", "ProcessSource", "ServerSource", "FeedSource", "RedisSource"}
    expected |= {"PostgresSource", "HealthSource", "MetricsSource", "LogFileSource", "StdinLogSource"}
    assert expected <= names, expected - names  # the discovery finds them all
    for qualified, cls in sources.items():
        assert issubclass(cls, Source), f"{qualified} is not a Source"
        assert isinstance(cls.stop_order, StopOrder), qualified
        assert isinstance(cls.retell, Retell), qualified
        if inspect.isabstract(cls):
            assert cls in (Source, PolledSource) or cls.__name__.startswith("_"), f"{qualified} is abstract"
            continue
        assert inspect.iscoroutinefunction(cls.check), qualified
        assert inspect.iscoroutinefunction(cls.stop), qualified


class TcpPort(PolledSource):
    """The smallest polled source: a pass is a TCP connection to a real port."""

    kind = "tcp"

    def __init__(self, port: int) -> None:
        super().__init__("port", INTERVAL)
        self.port = port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def poll_once(self, emit: Emit) -> Up | Down:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            return Down(exc.strerror or str(exc), "refused")
        writer.close()
        await writer.wait_closed()
        return Up("listening")

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


async def _passes(collector: Collector, kind: type[ev.Event], count: int) -> None:
    """Let ``count`` more passes run after the last event of ``kind``."""
    await collector.wait_for(kind)
    await asyncio.sleep(INTERVAL * count * 2)


async def test_a_polled_source_says_down_once_and_up_once_however_many_passes() -> None:
    port = free_port()  # closed: nothing listens there
    collector = Collector()
    async with running(TcpPort(port), collector):
        await _passes(collector, ev.TargetDown, 4)
        server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", port)
        async with server:
            await _passes(collector, ev.TargetUp, 4)
    transitions = [type(e) for e in collector.events if isinstance(e, ev.TargetUp | ev.TargetDown)]
    assert transitions == [ev.TargetDown, ev.TargetUp]
    added = collector.events[0]
    assert isinstance(added, ev.TargetAdded) and added.kind == "tcp" and added.target == "port"


def test_a_down_target_is_retold_as_its_retell_says() -> None:
    def downs(retell: Retell, failures: list[tuple[str, str]]) -> list[str]:
        events: list[ev.Event] = []
        status = TargetStatus("t", retell)
        for error, kind in failures:
            status.mark_down(events.append, error, kind)
        return [e.error for e in events if isinstance(e, ev.TargetDown)]

    failures = [("HTTP 503", "http"), ("HTTP 500", "http"), ("refused", "refused"), ("refused", "refused")]
    assert downs(Retell.KIND, failures) == ["HTTP 503", "refused"]
    assert downs(Retell.ERROR, failures) == ["HTTP 503", "HTTP 500", "refused"]
    stopped = [("stopped", "stopped"), ("exited", "exited"), ("no process", "missing")]
    assert downs(Retell.FROM_STOPPED, stopped) == ["stopped", "exited"]


class Staged(Source):
    """Notes when it was stopped, and whether its run() ended by itself or was cancelled."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name)
        self.log = log
        self._stopped = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        try:
            await self._stopped.wait()
            self.log.append(f"{self.target} ended")
        except asyncio.CancelledError:
            self.log.append(f"{self.target} cancelled")
            raise

    async def stop(self) -> None:
        self.log.append(f"{self.target} stop")
        if self.stop_ends_run:
            self._stopped.set()

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


class Clients(Staged):
    stop_order = StopOrder.CLIENTS
    stop_ends_run = True


class Owned(Staged):
    stop_order = StopOrder.OWNED
    stop_ends_run = True


async def test_the_session_stops_clients_then_watchers_then_what_it_owns() -> None:
    log: list[str] = []
    sources = [
        Owned("server", log),
        Staged("probe", log),
        Clients("clients", log),
    ]
    await asyncio.wait_for(Session(sources, title="stages", duration=0.1).run(), timeout=10)
    assert log == [
        "clients stop",
        "clients ended",  # its run() was given the moment to end by itself
        "probe stop",
        "probe cancelled",  # a watcher's stop() asks nothing: it is cancelled
        "server stop",
        "server ended",
    ]
    assert "getattr(source" not in inspect.getsource(session_module)
