"""Server log lines into events: pure, synchronous, testable without a process.

Understands JSON lines in the common shapes (pino/winston/bunyan/structlog: ``msg`` or ``message``,
``level`` as a word or a pino number, ``time``/``timestamp``) and plain text. Recognisers turn the
lines that matter into typed events; every line that is a warning or worse, or that no recogniser
claimed, is still kept as a LogLine so nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from wsmon.core import events as ev

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_PINO_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
_LEVEL_WORDS = {
    "warning": "warn",
    "err": "error",
    "critical": "fatal",
    "crit": "fatal",
    "panic": "fatal",
    "emerg": "fatal",
    "notice": "info",
    "verbose": "debug",
}
_TEXT_LEVEL = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL)\b", re.IGNORECASE
)
_DELIVERY_FAILED = re.compile(
    r"(?:MessageDeliveryError|delivery failed)[:\s-]*(?:Message delivery failed:\s*)?(?P<id>[\w.:-]+)?"
    r"(?:\s*-\s*(?P<reason>.+))?",
    re.IGNORECASE,
)

_json_decoder = msgspec.json.Decoder()


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


def normalise_level(raw: Any) -> str:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _PINO_LEVELS.get(int(raw) // 10 * 10, "info")
    if isinstance(raw, str):
        word = strip_ansi(raw).strip().lower()
        return _LEVEL_WORDS.get(word, word or "info")
    return "info"


Clock = Callable[[], tuple[float, float]]


class LogParser:
    """Turns one server's log lines into events. ``source`` names the target (e.g. "server")."""

    def __init__(self, source: str, clock: Clock) -> None:
        self.source = source
        self.clock = clock
        self._open_since: dict[str, float] = {}

    def parse(self, line: str) -> list[ev.Event]:
        line = line.rstrip("\r\n")
        if not line.strip():
            return []
        wall, mono = self.clock()
        if line.lstrip().startswith("{"):
            try:
                record = _json_decoder.decode(line)
            except msgspec.DecodeError:
                record = None
            if isinstance(record, dict):
                return self._from_record(record, wall, mono)
        return self._from_text(strip_ansi(line), wall, mono)

    # --- JSON -----------------------------------------------------------------------------------

    def _from_record(self, record: dict[str, Any], wall: float, mono: float) -> list[ev.Event]:
        message = strip_ansi(str(record.get("msg", record.get("message", record.get("event", "")))))
        level = normalise_level(record.get("level", record.get("severity", "info")))
        source = self.source
        conn = str(record.get("conn", record.get("connectionId", record.get("conn_id", "")))) or ""
        lowered = message.lower()
        out: list[ev.Event] = []

        if lowered == "connection stats" and conn:
            interval_ms = _number(record.get("interval_ms"), 1000.0)
            return [
                ev.Traffic(
                    wall=wall,
                    mono=mono,
                    conn=conn,
                    msgs_in=int(_number(record.get("msgs_in"), 0)),
                    msgs_out=int(_number(record.get("msgs_out"), 0)),
                    bytes_in=int(_number(record.get("bytes_in"), 0)),
                    bytes_out=int(_number(record.get("bytes_out"), 0)),
                    interval_s=interval_ms / 1000.0,
                )
            ]
        if lowered == "message delivered":
            latency = record.get("latency_ms")
            if isinstance(latency, int | float):
                return [
                    ev.LatencySample(wall=wall, mono=mono, kind="delivery", ms=float(latency), target=source)
                ]
            return []
        if lowered == "connection opened" and conn:
            self._open_since[conn] = mono
            return [
                ev.ConnectionOpened(
                    wall=wall,
                    mono=mono,
                    conn=conn,
                    peer=str(record.get("peer", "")),
                    path=str(record.get("path", "")),
                    source=source,
                )
            ]
        if lowered == "connection closed" and conn:
            code = int(_number(record.get("code"), 1006))
            opened = self._open_since.pop(conn, None)
            duration_ms = record.get("duration_ms")
            duration = (
                float(duration_ms) / 1000.0
                if isinstance(duration_ms, int | float)
                else (mono - opened if opened is not None else None)
            )
            closed_by = str(record.get("closed_by", "unknown"))
            if closed_by not in ("client", "server", "neither"):
                closed_by = "unknown"
            out.append(
                ev.ConnectionClosed(
                    wall=wall,
                    mono=mono,
                    conn=conn,
                    code=code,
                    reason=str(record.get("reason", "") or ""),
                    closed_by=closed_by,  # type: ignore[arg-type]
                    duration_s=duration,
                    source=source,
                )
            )
            if level in ("warn", "error", "fatal"):
                out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=message, source=source))
            return out

        failure = self._delivery_failure(message, record)
        if failure is not None:
            message_id, reason = failure
            out.append(
                ev.DeliveryFailed(
                    wall=wall, mono=mono, message_id=message_id, conn=conn, reason=reason, source=source
                )
            )
        out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=message, source=source))
        return out

    @staticmethod
    def _delivery_failure(message: str, record: dict[str, Any]) -> tuple[str, str] | None:
        err = str(record.get("err", record.get("error", "")) or "")
        if "MessageDeliveryError" not in err and "delivery failed" not in message.lower():
            return None
        match = _DELIVERY_FAILED.search(message)
        message_id = str(record.get("msg_id", record.get("messageId", "")) or "")
        reason = ""
        if match:
            message_id = message_id or (match.group("id") or "")
            reason = (match.group("reason") or "").strip()
        return message_id, reason or err or "delivery failed"

    # --- plain text -----------------------------------------------------------------------------

    def _from_text(self, line: str, wall: float, mono: float) -> list[ev.Event]:
        level_match = _TEXT_LEVEL.search(line)
        level = normalise_level(level_match.group(1)) if level_match else "info"
        out: list[ev.Event] = []
        lowered = line.lower()
        if "messagedeliveryerror" in lowered or "delivery failed" in lowered:
            match = _DELIVERY_FAILED.search(line)
            message_id = (match.group("id") or "") if match else ""
            reason = ((match.group("reason") or "") if match else "").strip() or "delivery failed"
            out.append(
                ev.DeliveryFailed(
                    wall=wall, mono=mono, message_id=message_id, reason=reason, source=self.source
                )
            )
            if level == "info":
                level = "error"
        out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=line, source=self.source))
        return out


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


__all__ = ["LogParser", "normalise_level", "strip_ansi"]
