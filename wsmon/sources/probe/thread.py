"""The probes' own thread and event loop, so the session's loop (the dashboard starting, a slow
frame) cannot delay the timestamps taken around a handshake or a ping."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from wsmon.core import events as ev
from wsmon.sources.base import Emit
from wsmon.sources.probe.config import CLOSE_TIMEOUT_S

# How long stopping waits for the probe thread to close its connections (a close frame each).
STOP_TIMEOUT_S = CLOSE_TIMEOUT_S + 3.0


def thread_safe(loop: asyncio.AbstractEventLoop, emit: Emit) -> Emit:
    """An emit callable from another thread: the event is applied on ``loop``, in order."""

    def forward(event: ev.Event) -> None:
        with contextlib.suppress(RuntimeError):  # the session's loop has closed: nobody to tell
            loop.call_soon_threadsafe(emit, event)

    return forward


class LoopThread:
    """Runs one coroutine on a thread with its own event loop, for as long as the awaiting task runs.

    Cancelling the awaiting task cancels the coroutine on its thread and waits (up to STOP_TIMEOUT_S)
    for it to finish cleaning up, so what it emits while closing still arrives before ``run`` returns.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._ready = threading.Event()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    async def run(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        session_loop = asyncio.get_running_loop()
        finished: asyncio.Future[BaseException | None] = session_loop.create_future()

        def report(outcome: BaseException | None) -> None:
            if not finished.done():
                finished.set_result(outcome)

        def main() -> None:
            outcome: BaseException | None = None
            try:
                asyncio.run(self._main(make))
            except BaseException as exc:  # handed to the awaiting task, which raises it there
                outcome = exc
            with contextlib.suppress(RuntimeError):
                session_loop.call_soon_threadsafe(report, outcome)

        threading.Thread(target=main, name=self.name, daemon=True).start()
        try:
            outcome = await asyncio.shield(finished)
        except asyncio.CancelledError:
            self._stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(finished), STOP_TIMEOUT_S)
            raise
        if outcome is not None and not isinstance(outcome, asyncio.CancelledError):
            raise outcome

    async def _main(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._ready.set()
        if self._stop_requested:  # stopped before this thread got going
            return
        await make()

    def _stop(self) -> None:
        self._stop_requested = True
        if self._ready.is_set() and self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._task.cancel)
