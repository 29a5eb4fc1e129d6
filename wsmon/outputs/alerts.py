"""Alert delivery: every AlertRaised / AlertCleared goes to a command's stdin or a chat webhook, as JSON.

The judge runs inside the session's tick, so ``on_event`` only formats the payload and queues it;
a task drains the queue. The queue is bounded and drops its oldest alert when full: a hung webhook
must never hold up the session. Failures become one line (the webhook's address without its secret
path); the URL itself and the command line are never printed, since both may carry tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from wsmon.children import GroupWatchdog, start_guarded_shell
from wsmon.core.events import AlertCleared, AlertRaised, Event
from wsmon.core.limits import DEFAULT_LIMITS, Limit, format_value
from wsmon.core.redact import redact_url
from wsmon.core.sink import Sink

QUEUE_SIZE = 100
FLUSH_TIMEOUT_S = 6.0  # below the session's per-sink stop timeout, so the session never waits on us
COMMAND_TIMEOUT_S = 10.0
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF_S = 0.5  # then 1.0: three attempts fit in the flush timeout when the host refuses fast
STDERR_SHOWN = 200
_LEVEL_WORDS = {"breach": "BREACH", "warn": "WARN", "ok": "CLEARED"}

ErrorReporter = Callable[[str], None]
_log = logging.getLogger("wsmon.outputs")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def alert_payload(
    event: Event, *, title: str = "", limits: tuple[Limit, ...] = DEFAULT_LIMITS
) -> dict[str, Any]:
    """The JSON an alert command or webhook receives; ``text`` is the line chat webhooks display."""
    limit = next((lim for lim in limits if lim.figure == getattr(event, "figure", None)), None)
    if isinstance(event, AlertRaised):
        kind, level, message = "alert", event.level, event.message
    elif isinstance(event, AlertCleared):
        kind, level, message = "alert.clear", "ok", ""
    else:
        raise TypeError(f"not an alert event: {type(event).__name__}")
    if not message:
        message = (
            f"{limit.label} {format_value(event.value, limit.unit)} (limit {limit.describe()})"
            if limit is not None
            else f"{event.figure} {event.value:g}"
        )
    who = f"wsmon [{title}]" if title else "wsmon"
    return {
        "type": kind,
        "figure": event.figure,
        "level": level,
        "value": _finite(event.value),
        "limit": _finite(event.limit if isinstance(event, AlertRaised) else limit.value if limit else None),
        "message": message,
        "wall": datetime.fromtimestamp(event.wall, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "session": title,
        "text": f"{who}: {_LEVEL_WORDS[level]} {message}",
    }


class _QueuedAlerts(Sink):
    """The shared half of both sinks: a bounded queue filled by ``on_event`` and drained by ``run``."""

    what = "alert output"

    def __init__(
        self,
        *,
        title: str = "",
        limits: tuple[Limit, ...] = DEFAULT_LIMITS,
        on_error: ErrorReporter | None = None,
        queue_size: int = QUEUE_SIZE,
        flush_timeout: float = FLUSH_TIMEOUT_S,
    ) -> None:
        self.title = title
        self.limits = limits
        self.on_error = on_error
        self.flush_timeout = flush_timeout
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._running = False

    def on_event(self, event: Event) -> None:
        if type(event) is not AlertRaised and type(event) is not AlertCleared:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
        self._queue.put_nowait(alert_payload(event, title=self.title, limits=self.limits))

    async def run(self) -> None:
        self._running = True
        try:
            while True:
                payload = await self._queue.get()
                try:
                    await self._deliver_one(payload)
                finally:
                    self._queue.task_done()
        finally:
            self._running = False

    async def stop(self) -> None:
        """Deliver what is queued, waiting at most ``flush_timeout``; then release resources."""
        try:
            if self._running:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), self.flush_timeout)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drain(), self.flush_timeout)
            left = self._queue.qsize()
            if left or self.dropped:
                self._report(f"{self.what}: {left + self.dropped} alert(s) not delivered")
        finally:
            await self.close()

    async def close(self) -> None:
        """Release what delivery holds open (the webhook's HTTP client)."""

    async def deliver(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _drain(self) -> None:
        while not self._queue.empty():
            payload = self._queue.get_nowait()
            try:
                await self._deliver_one(payload)
            finally:
                self._queue.task_done()

    async def _deliver_one(self, payload: dict[str, Any]) -> None:
        try:
            await self.deliver(payload)
            self.delivered += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed += 1
            self._report(f"{self.what} failed: {self._describe(exc)}")

    def _describe(self, exc: Exception) -> str:
        return str(exc) or type(exc).__name__

    def _report(self, line: str) -> None:
        if self.on_error is not None:
            self.on_error(line)
        else:
            _log.warning("%s", line)


class AlertCommandSink(_QueuedAlerts):
    """Runs ``cmd`` through the shell for each alert, with the alert's JSON on stdin."""

    what = "alert command"

    def __init__(self, cmd: str, *, timeout: float = COMMAND_TIMEOUT_S, **options: Any) -> None:
        super().__init__(**options)
        self.cmd = cmd
        self.timeout = timeout

    async def deliver(self, payload: dict[str, Any]) -> None:
        data = (json.dumps(payload) + "\n").encode()
        # Its own process group, so a timeout kills what the shell started too, not just the shell,
        # and a watchdog that ends that group if wsmon dies; stdout goes nowhere because the dashboard
        # owns the terminal.
        watchdog = GroupWatchdog()
        proc = await start_guarded_shell(
            self.cmd,
            watchdog=watchdog,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(data), self.timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill_group(proc)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise RuntimeError(f"timed out after {self.timeout:g} s and was killed") from None
        finally:
            await watchdog.stop()
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()
            said = f": {tail[-1][:STDERR_SHOWN]}" if tail else ""
            raise RuntimeError(f"exited with status {proc.returncode}{said}")


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class AlertWebhookSink(_QueuedAlerts):
    """POSTs each alert as JSON to ``url`` (Slack, Mattermost and Discord's /slack incoming webhooks)."""

    what = "alert webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = WEBHOOK_TIMEOUT_S,
        attempts: int = WEBHOOK_ATTEMPTS,
        backoff: float = WEBHOOK_BACKOFF_S,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.what = f"alert webhook {webhook_label(url)}"
        self._client: httpx.AsyncClient | None = None

    async def deliver(self, payload: dict[str, Any]) -> None:
        if self._client is None:
            # trust_env=False: a proxy or netrc from the environment must not see the alerts.
            self._client = httpx.AsyncClient(trust_env=False, timeout=self.timeout)
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await self._client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                error = type(exc).__name__ + (f": {exc}" if str(exc) else "")
                continue
            if response.is_success:
                return
            error = f"HTTP {response.status_code}"
            if response.is_client_error and response.status_code not in (408, 429):
                break  # the hook rejected the request itself: sending it again changes nothing
        raise RuntimeError(f"{error} after {attempt + 1} attempt(s)")

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _describe(self, exc: Exception) -> str:
        # Belt and braces: an httpx message may quote the URL, whose path is the hook's secret.
        return super()._describe(exc).replace(self.url, webhook_label(self.url))


def webhook_label(url: str) -> str:
    """The hook's origin only: Slack and Discord put the secret in the path, not in a query or password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    origin = redact_url(f"{parts.scheme}://{parts.netloc}") if parts.scheme else "***"
    return origin + ("/…" if parts.path.strip("/") or parts.query else "")
