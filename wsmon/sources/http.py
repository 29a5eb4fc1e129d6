"""HTTP health and Prometheus metrics URLs, polled with httpx.

A health URL is up when it answers 2xx (and its JSON body's "status", when there is one, is not a
failure word); a metrics URL is up when it answers 2xx with text that Prometheus' parser reads. Every
poll is an HttpSample; up and down are events; failures retry with backoff and recover by themselves.
Proxies from the environment are ignored: wsmon talks to the server directly.
"""

from __future__ import annotations

import abc
import json
import math
import re
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from wsmon.core import events as ev
from wsmon.core.redact import redact_url
from wsmon.sources.base import CheckResult, Down, Emit, PolledSource, Retell, Up, now

TIMEOUT_S = 5.0
# A JSON health body whose "status" is one of these is down even when the HTTP status says 200.
FAILING_HEALTH = frozenset(
    {"down", "fail", "failed", "failure", "error", "unhealthy", "critical", "out_of_service"}
)
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass
class Outcome:
    """One poll, judged: what the events say about it."""

    ok: bool
    status: int | None = None
    ms: float | None = None
    health: str = ""
    series: dict[str, float] = field(default_factory=dict)
    error: str = ""
    kind: str = ""
    missing: list[str] = field(default_factory=list)  # named series the scrape did not have

    def summary(self) -> str:
        """'HTTP 200 · status ok': the line that says what the target answered."""
        parts = [f"HTTP {self.status}"] if self.status is not None else []
        if self.health:
            parts.append(f"status {self.health}")
        return " · ".join(parts)


class _HttpPoller(PolledSource):
    kind = "http"
    retell = Retell.ERROR  # a down target whose error changes (refused, then 503) says so

    def __init__(self, url: str, *, interval: float, target: str, timeout: float = TIMEOUT_S) -> None:
        super().__init__(target, interval)
        self.url = url
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None  # one for the whole run: connections are reused
        self._hinted: set[str] = set()

    @property
    def address(self) -> str:
        return redact_url(self.url)

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            trust_env=False, follow_redirects=True, timeout=self.timeout, headers=self._headers()
        )

    def _headers(self) -> dict[str, str]:
        return {"User-Agent": "wsmon"}

    async def poll_once(self, emit: Emit) -> Up | Down:
        if self._client is None:
            self._client = self._new_client()
        outcome = await self._poll(self._client)
        wall, mono = now()
        emit(
            ev.HttpSample(
                wall=wall,
                mono=mono,
                target=self.target,
                status=outcome.status,
                ms=outcome.ms,
                health=outcome.health,
                series=outcome.series,
                error=outcome.error,
            )
        )
        then = self._after(outcome, wall, mono)
        if outcome.ok:
            return Up(outcome.summary(), then)
        return Down(outcome.error, outcome.kind, then)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def check(self) -> CheckResult:
        """One poll, for `wsmon check`."""
        async with self._new_client() as client:
            outcome = await self._poll(client)
        if outcome.ok:
            return CheckResult(ok=True, latency_ms=outcome.ms)
        return CheckResult(
            ok=False, latency_ms=outcome.ms, error=outcome.error, kind=outcome.kind, hint=_hint(outcome)
        )

    async def _poll(self, client: httpx.AsyncClient) -> Outcome:
        started = time.perf_counter()
        try:
            response = await client.get(self.url)
        except httpx.HTTPError as exc:
            kind, error = classify_http_error(exc)
            return Outcome(ok=False, error=error, kind=kind)
        except Exception as exc:  # a malformed URL, an odd transport error: down, never a crash
            return Outcome(ok=False, error=str(exc) or type(exc).__name__, kind="error")
        ms = (time.perf_counter() - started) * 1000.0
        return self._judge(response, ms)

    @abc.abstractmethod
    def _judge(self, response: httpx.Response, ms: float) -> Outcome:
        """The answer, judged: up or down, and what to show of it."""

    def _after(self, outcome: Outcome, wall: float, mono: float) -> list[ev.Event]:
        """What follows the poll's UP or DOWN: a hint for each named series the scrape first lacked."""
        hints: list[ev.Event] = []
        for name in outcome.missing:
            if name not in self._hinted:
                self._hinted.add(name)
                text = f"series {name} not found in the metrics"
                hints.append(ev.Hint(wall=wall, mono=mono, target=self.target, text=text))
        return hints


class HealthSource(_HttpPoller):
    """Polls a health URL: status, latency, and the JSON body's "status" field."""

    def __init__(
        self, url: str, interval: float = 1.0, target: str = "health", timeout: float = TIMEOUT_S
    ) -> None:
        super().__init__(url, interval=interval, target=target, timeout=timeout)
        self._last_answer: tuple[int | None, str] | None = None

    def _judge(self, response: httpx.Response, ms: float) -> Outcome:
        health = body_status(response)
        outcome = Outcome(ok=True, status=response.status_code, ms=ms, health=health)
        if not response.is_success:
            outcome.ok, outcome.kind, outcome.error = False, "http", outcome.summary()
        elif health.lower() in FAILING_HEALTH:
            outcome.ok, outcome.kind, outcome.error = False, "unhealthy", outcome.summary()
        return outcome

    def _after(self, outcome: Outcome, wall: float, mono: float) -> list[ev.Event]:
        after = super()._after(outcome, wall, mono)
        if outcome.ms is not None:
            wall, mono = now()
            latency = ev.LatencySample(wall=wall, mono=mono, kind="http", ms=outcome.ms, target=self.target)
            after.append(latency)
        answer = (outcome.status, outcome.health) if outcome.status is not None else (None, outcome.error)
        if answer != self._last_answer:
            self._last_answer = answer
            wall, mono = now()
            text = f"{self.target}: {outcome.summary() if outcome.status is not None else outcome.error}"
            level = "info" if outcome.ok else "warn"
            after.append(ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=self.target))
        return after


class MetricsSource(_HttpPoller):
    """Scrapes a Prometheus metrics URL and emits the values of the series named in wsmon.toml.

    A series is named ``metric`` or ``metric{label="value",...}``; when several samples match (other
    labels differ), their values are summed. A counter may be named without its ``_total`` suffix.
    """

    def __init__(
        self,
        url: str,
        interval: float = 1.0,
        series: list[str] | None = None,
        target: str = "metrics",
        timeout: float = TIMEOUT_S,
    ) -> None:
        super().__init__(url, interval=interval, target=target, timeout=timeout)
        self.series = list(series or [])
        self._selectors = [parse_selector(name) for name in self.series]

    def _headers(self) -> dict[str, str]:
        # The classic text format: what prometheus_client's parser reads (not OpenMetrics).
        return {"User-Agent": "wsmon", "Accept": "text/plain;version=0.0.4"}

    def _judge(self, response: httpx.Response, ms: float) -> Outcome:
        outcome = Outcome(ok=True, status=response.status_code, ms=ms)
        if not response.is_success:
            outcome.ok, outcome.kind, outcome.error = False, "http", outcome.summary()
            return outcome
        try:
            outcome.series, outcome.missing = pick_series(response.text, self.series, self._selectors)
        except Exception as exc:  # the parser raises ValueError, and worse on some garbage
            outcome.ok, outcome.kind = False, "invalid"
            outcome.error = f"metrics not parseable: {exc}"
        return outcome


def body_status(response: httpx.Response) -> str:
    """The JSON body's "status" field as text, or "" when the body is not a JSON object with one."""
    if "json" not in response.headers.get("content-type", "") and not response.content.lstrip().startswith(
        b"{"
    ):
        return ""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    if not isinstance(body, dict) or "status" not in body:
        return ""
    value = body["status"]
    return value if isinstance(value, str) else json.dumps(value)


def parse_selector(text: str) -> tuple[str, dict[str, str]]:
    """'ws_clients{state="open"}' → ('ws_clients', {'state': 'open'})."""
    name, brace, rest = text.strip().partition("{")
    labels: dict[str, str] = {}
    if brace:
        body = rest.rstrip().removesuffix("}")
        position = 0
        while position < len(body):
            match = _LABEL.match(body, position)
            if match is None:
                raise ValueError(f"bad series selector: {text!r}")
            labels[match.group(1)] = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
            position = match.end()
    return name.strip(), labels


def pick_series(
    text: str, names: list[str], selectors: list[tuple[str, dict[str, str]]]
) -> tuple[dict[str, float], list[str]]:
    """The values of the named series in a scrape, and the names it did not have."""
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    values: dict[str, float] = {}
    missing: list[str] = []
    for name, (metric, labels) in zip(names, selectors, strict=True):
        matched = [s for s in samples if s.name == metric and labels.items() <= s.labels.items()]
        if not matched:  # a counter named by its family: the sample is metric_total
            matched = [
                s for s in samples if s.name == f"{metric}_total" and labels.items() <= s.labels.items()
            ]
        if not matched:
            missing.append(name)
            continue
        total = math.fsum(s.value for s in matched)
        if math.isfinite(total):  # NaN (an empty summary) cannot go through JSON exports
            values[name] = total
    return values, missing


def classify_http_error(exc: httpx.HTTPError) -> tuple[str, str]:
    """(kind, one-line error) for a request that got no response."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", "timed out"
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        if "refused" in lowered or "all connection attempts failed" in lowered:
            return "refused", "connection refused (ECONNREFUSED)"
        if "ssl" in lowered or "certificate" in lowered:
            return "tls", f"TLS: {text}"
        if "name or service" in lowered or "nodename" in lowered or "name resolution" in lowered:
            return "dns", f"name not resolved: {text}"
        return "refused", text
    if isinstance(exc, httpx.TooManyRedirects):
        return "http", "too many redirects"
    return "error", text


def _hint(outcome: Outcome) -> str:
    if outcome.kind == "refused":
        return "nothing listens there: is the server running, on this host and port?"
    if outcome.kind == "timeout":
        return f"no answer within {TIMEOUT_S:g} s: is the server overloaded or blocked?"
    if outcome.kind == "tls":
        return "the certificate was not accepted"
    if outcome.status in (401, 403):
        return "the endpoint wants credentials"
    if outcome.status == 404:
        return "no such path: check the URL in wsmon.toml"
    if outcome.kind == "invalid":
        return "the URL does not serve Prometheus text: is it the metrics endpoint?"
    return ""
