"""Server log lines into events: pure, synchronous, testable without a process.

Understands JSON lines in the common shapes — pino and bunyan (``msg``, numeric ``level``, ``time``),
winston (``message``, ``level`` often ANSI-coloured, ``timestamp``), structlog (``event``, ``level``,
``timestamp``) — and plain text. ANSI colour codes are stripped everywhere, inside JSON string values
too. Recognisers turn the lines that matter into typed events; every line that is a warning or worse,
or that no recogniser claimed, is still kept as a LogLine so nothing is lost.

A "line" may be a folded block: an error line with its stack trace below it, joined by newlines (see
``wsmon.sources.logfile.StackFolder``); it is one LogLine of level error at least.

Custom rules (``wsmon.sources.logrules``) are tried before the built-in recognisers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from wsmon.core import events as ev
from wsmon.sources.logrules import Rule

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
_LEVEL_RANK = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4, "fatal": 5}
_TEXT_LEVEL = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL)\b", re.IGNORECASE
)
_DELIVERY_FAILED = re.compile(
    r"(?:MessageDeliveryError|delivery failed)[:\s-]*(?:Message delivery failed:\s*)?(?P<id>[\w.:-]+)?"
    r"(?:\s*-\s*(?P<reason>.+))?",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"\b(msg[_-][\w.:-]+)")
# "closed with code 1006", "close code: 1005", "closeCode=1011"; codes are 1000-4999.
_CLOSE_CODE = re.compile(
    r"(?:\bclos\w*\s+(?:\w+\s+)?with\s+(?:close\s+)?code|\bclose[\s_-]*code)\s*[:=#]?\s*(?P<code>[1-4]\d{3})\b",
    re.IGNORECASE,
)
_BARE_CODE = re.compile(r"\bcode\s*[:=]\s*(?P<code>[1-4]\d{3})\b", re.IGNORECASE)
_CLOSE_CONTEXT = re.compile(r"clos|disconnect|terminat|hang\s*up|hung\s*up", re.IGNORECASE)
_CONN_KEY_VALUE = re.compile(
    r"\b(?:conn(?:ection)?|client|socket)[_-]?(?:id)?\s*[:=]\s*[\"']?(?P<id>[\w.:/-]+)", re.IGNORECASE
)
_CONN_WORD = re.compile(r"\b(?:connection|conn|client|socket)\s+#?(?P<id>[\w.:/-]+)", re.IGNORECASE)
_NOT_AN_ID = frozenset(
    {
        "closed", "close", "closing", "opened", "open", "lost", "refused", "reset", "with", "from", "was",
        "is", "has", "had", "timed", "timeout", "not", "error", "errored", "dropped", "disconnected",
        "disconnect", "terminated", "ended", "failed", "connected", "count", "code", "the", "a", "an", "to",
        "for", "on", "in", "of", "and", "handshake", "aborted", "went", "gone", "stats", "state",
        "registered", "rejected", "sent", "received", "message", "id",
    }
)  # fmt: skip
_CONN_FIELDS = (
    "conn",
    "connectionId",
    "connection_id",
    "conn_id",
    "connId",
    "clientId",
    "client_id",
    "socketId",
    "socket_id",
)
_REFUSED = re.compile(r"ECONNREFUSED|connection refused", re.IGNORECASE)
_TIMEOUT = re.compile(r"ETIMEDOUT|ESOCKETTIMEDOUT|\btimed out\b", re.IGNORECASE)
_INVALID_FORMAT = re.compile(r"invalid message format", re.IGNORECASE)

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


def at_least(level: str, floor: str) -> str:
    """The more severe of two levels; a level wsmon does not know ranks as info."""
    return level if _LEVEL_RANK.get(level, 2) >= _LEVEL_RANK[floor] else floor


def recognise(text: str) -> str:
    """What kind of trouble a log text shows, for whoever groups log lines later: "refused",
    "timeout", "invalid_format", "delivery", "stack" or "" for none of these."""
    if _REFUSED.search(text):
        return "refused"
    if _TIMEOUT.search(text):
        return "timeout"
    if _INVALID_FORMAT.search(text):
        return "invalid_format"
    lowered = text.lower()
    if "messagedeliveryerror" in lowered or "delivery failed" in lowered or "connection not open" in lowered:
        return "delivery"
    if "\n" in text:
        return "stack"
    return ""


def _decode_record(head: str) -> dict[str, Any] | None:
    try:
        record = _json_decoder.decode(head)
    except msgspec.DecodeError:
        if "\x1b" not in head:
            return None
        # A raw escape byte inside a JSON string is invalid JSON; without the colour codes it is not.
        try:
            record = _json_decoder.decode(strip_ansi(head))
        except msgspec.DecodeError:
            return None
    if not isinstance(record, dict):
        return None
    if "\x1b" in head or "\\u001b" in head.lower():
        record = {k: strip_ansi(v) if isinstance(v, str) else v for k, v in record.items()}
    return record


Clock = Callable[[], tuple[float, float]]


class LogParser:
    """Turns one server's log lines into events. ``source`` names the target (e.g. "server")."""

    def __init__(self, source: str, clock: Clock, rules: Sequence[Rule] | None = None) -> None:
        self.source = source
        self.clock = clock
        self.rules = tuple(rules or ())
        self._open_since: dict[str, float] = {}

    def parse(self, line: str) -> list[ev.Event]:
        block = line.rstrip("\r\n")
        if not block.strip():
            return []
        wall, mono = self.clock()
        head, _, continuation = block.partition("\n")
        record = _decode_record(head) if head.lstrip().startswith("{") else None
        if self.rules:
            ruled = self._by_rules(record, head, continuation, wall, mono)
            if ruled is not None:
                return ruled
        if record is not None:
            return self._from_record(record, strip_ansi(continuation), wall, mono)
        return self._from_text(strip_ansi(block), wall, mono)

    # --- custom rules ---------------------------------------------------------------------------

    def _by_rules(
        self, record: dict[str, Any] | None, head: str, continuation: str, wall: float, mono: float
    ) -> list[ev.Event] | None:
        if record is not None:
            text, level = _message(record), _record_level(record)
        else:
            text = strip_ansi(head)
            match = _TEXT_LEVEL.search(text)
            level = normalise_level(match.group(1)) if match else "info"
        for rule in self.rules:
            event = rule.apply(text, record, wall=wall, mono=mono, source=self.source)
            if event is None:
                continue
            out: list[ev.Event] = [event]
            if continuation:
                level = at_least(level, "error")
                text = f"{text}\n{strip_ansi(continuation)}"
            if _LEVEL_RANK.get(level, 2) >= _LEVEL_RANK["warn"]:
                out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=self.source))
            return out
        return None

    # --- JSON -----------------------------------------------------------------------------------

    def _from_record(
        self, record: dict[str, Any], continuation: str, wall: float, mono: float
    ) -> list[ev.Event]:
        message = _message(record)
        level = _record_level(record)
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
                    ev.LatencySample(
                        wall=wall,
                        mono=mono,
                        kind="delivery",
                        ms=float(latency),
                        target=source,
                        ref=str(record.get("msg_id", record.get("messageId", "")) or ""),
                    )
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
        text = f"{message}\n{continuation}" if continuation else message
        if continuation:
            level = at_least(level, "error")
        level = _level_for_text(level, text)

        if lowered == "connection closed" and conn:
            close_code: int | None = int(_number(record.get("code"), 1006))
            close_conn = conn
        else:
            close_code = _record_close_code(record, message)
            close_conn = (
                (conn or _record_conn(record) or _text_conn(message)) if close_code is not None else ""
            )
        if close_code is not None and close_conn:
            out.append(self._closed(close_conn, close_code, record, wall, mono))
            if _LEVEL_RANK.get(level, 2) >= _LEVEL_RANK["warn"]:
                out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=source))
            return out

        failure = self._delivery_failure(message, record)
        if failure is not None:
            message_id, reason = failure
            out.append(
                ev.DeliveryFailed(
                    wall=wall, mono=mono, message_id=message_id, conn=conn, reason=reason, source=source
                )
            )
        out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=source))
        return out

    def _closed(
        self, conn: str, code: int, record: dict[str, Any], wall: float, mono: float
    ) -> ev.ConnectionClosed:
        opened = self._open_since.pop(conn, None)
        duration_ms = record.get("duration_ms")
        duration = (
            float(duration_ms) / 1000.0
            if isinstance(duration_ms, int | float) and not isinstance(duration_ms, bool)
            else (mono - opened if opened is not None else None)
        )
        closed_by = str(record.get("closed_by", record.get("closedBy", "unknown")))
        if closed_by not in ("client", "server", "neither"):
            closed_by = "unknown"
        return ev.ConnectionClosed(
            wall=wall,
            mono=mono,
            conn=conn,
            code=code,
            reason=str(record.get("reason", "") or ""),
            closed_by=closed_by,  # type: ignore[arg-type]
            duration_s=duration,
            source=self.source,
        )

    @staticmethod
    def _delivery_failure(message: str, record: dict[str, Any]) -> tuple[str, str] | None:
        err = str(record.get("err", record.get("error", "")) or "")
        lowered = message.lower()
        if (
            "MessageDeliveryError" not in err
            and "messagedeliveryerror" not in lowered
            and "delivery failed" not in lowered
            and "connection not open" not in lowered
        ):
            return None
        message_id = str(record.get("msg_id", record.get("messageId", record.get("message_id", ""))) or "")
        found_id, reason = _failure_from_text(message)
        return message_id or found_id, reason or err or "delivery failed"

    # --- plain text -----------------------------------------------------------------------------

    def _from_text(self, block: str, wall: float, mono: float) -> list[ev.Event]:
        head = block.partition("\n")[0]
        level_match = _TEXT_LEVEL.search(head)
        level = normalise_level(level_match.group(1)) if level_match else "info"
        if "\n" in block:
            level = at_least(level, "error")
        level = _level_for_text(level, block)
        out: list[ev.Event] = []
        lowered = head.lower()
        if (
            "messagedeliveryerror" in lowered
            or "delivery failed" in lowered
            or "connection not open" in lowered
        ):
            message_id, reason = _failure_from_text(head)
            out.append(
                ev.DeliveryFailed(
                    wall=wall,
                    mono=mono,
                    message_id=message_id,
                    conn=_text_conn(head, exclude_message_ids=True),
                    reason=reason or "delivery failed",
                    source=self.source,
                )
            )
            level = at_least(level, "error")
            out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=block, source=self.source))
            return out
        code = _text_close_code(head)
        conn = _text_conn(head) if code is not None else ""
        if code is not None and conn:
            opened = self._open_since.pop(conn, None)
            out.append(
                ev.ConnectionClosed(
                    wall=wall,
                    mono=mono,
                    conn=conn,
                    code=code,
                    duration_s=mono - opened if opened is not None else None,
                    source=self.source,
                )
            )
            if _LEVEL_RANK.get(level, 2) >= _LEVEL_RANK["warn"]:
                out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=block, source=self.source))
            return out
        out.append(ev.LogLine(wall=wall, mono=mono, level=level, text=block, source=self.source))
        return out


def _message(record: dict[str, Any]) -> str:
    message = record.get("msg", record.get("message", record.get("event", "")))
    if not message:
        err = record.get("err", record.get("error"))
        if isinstance(err, dict):
            message = err.get("message") or err.get("type") or ""
    return strip_ansi(str(message if message is not None else ""))


def _record_level(record: dict[str, Any]) -> str:
    for key in ("level", "severity", "levelname", "log.level"):
        if key in record:
            return normalise_level(record[key])
    return "info"


def _level_for_text(level: str, text: str) -> str:
    """Lines that name a refusal or a timeout are errors, an invalid message format a warning at least."""
    if _REFUSED.search(text) or _TIMEOUT.search(text):
        return at_least(level, "error")
    if _INVALID_FORMAT.search(text):
        return at_least(level, "warn")
    return level


def _failure_from_text(text: str) -> tuple[str, str]:
    """(message id, reason) from a delivery failure's text; either may be empty."""
    match = _DELIVERY_FAILED.search(text)
    message_id = (match.group("id") or "") if match else ""
    reason = ((match.group("reason") or "") if match else "").strip()
    if not message_id:
        found = _MESSAGE_ID.search(text)
        message_id = found.group(1) if found else ""
    if not reason and "connection not open" in text.lower():
        reason = "Connection not open"
    return message_id, reason


def _as_close_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 1000 <= value <= 4999:
        return value
    return None


def _record_close_code(record: dict[str, Any], message: str) -> int | None:
    for key in ("closeCode", "close_code"):
        code = _as_close_code(record.get(key))
        if code is not None:
            return code
    code = _as_close_code(record.get("code"))
    if code is not None and _CLOSE_CONTEXT.search(message):
        return code
    return _text_close_code(message)


def _text_close_code(text: str) -> int | None:
    match = _CLOSE_CODE.search(text)
    if match is None and _CLOSE_CONTEXT.search(text):
        match = _BARE_CODE.search(text)
    return int(match.group("code")) if match else None


def _record_conn(record: dict[str, Any]) -> str:
    for key in (*_CONN_FIELDS, "id"):
        value = record.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


def _text_conn(text: str, *, exclude_message_ids: bool = False) -> str:
    """A connection id named in free text: ``conn=c12``, ``clientId: abc``, ``connection c12``."""
    for pattern in (_CONN_KEY_VALUE, _CONN_WORD):
        for match in pattern.finditer(text):
            found = match.group("id").rstrip(".,;:)/")
            if not found or found.lower() in _NOT_AN_ID:
                continue
            if exclude_message_ids and _MESSAGE_ID.fullmatch(found):
                continue
            return found
    return ""


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


__all__ = ["LogParser", "at_least", "normalise_level", "recognise", "strip_ansi"]
