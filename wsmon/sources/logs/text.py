"""What free text says, by its words: a level, a close code, a connection id, a refusal, a crash.

The regexes the recognisers search a message (or a plain text line) with, and the functions around
them; Node's and Python's crash shapes are here too, since the stack folder (``folding``) must fold
exactly what the parser reads as one crash. Pure, no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from wsmon.core.events import Closer
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.quickre import quick
from wsmon.sources.logs.vocabulary import strip_ansi

_PINO_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
_LEVEL_WORDS = {
    "warning": "warn",
    "err": "error",
    "critical": "fatal",
    "crit": "fatal",
    "panic": "fatal",
    "dpanic": "fatal",
    "emerg": "fatal",
    "alert": "fatal",
    "notice": "info",
    "verbose": "debug",
    "silly": "trace",
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
_MESSAGE_ID = quick(r"\b(msg[_-][\w.:-]+)")
_MESSAGE_WORD = quick(r"\b(?:message|msg)(?:[_ -]?id)?\s*[:=#]?\s*[\"']?(?P<id>[\w.:-]*\d[\w.:-]*)")
# "closed with code 1006", "close code: 1005", "closeCode=1011", "(1000)"; codes are 1000-4999.
_CLOSE_CODE = re.compile(
    r"(?:\bclos\w*\s+(?:\w+\s+)?with\s+(?:close\s+)?code|\bclose[\s_-]*code)\s*[:=#]?\s*(?P<code>[1-4]\d{3})\b",
    re.IGNORECASE,
)
_BARE_CODE = re.compile(
    r"\bcode\s*[:=]?\s*[\"']?(?P<code>[1-4]\d{3})\b|\((?P<paren>[1-4]\d{3})\b", re.IGNORECASE
)
_CLOSE_CONTEXT = re.compile(r"clos|disconnect|terminat|hang\s*up|hung\s*up|left|went away", re.IGNORECASE)
_CONN_KEY_VALUE = re.compile(
    r"\b(?:conn(?:ection)?|client|socket|sid)[_-]?(?:id)?\s*[:=]\s*[\"']?(?P<id>[\w.:/-]+)", re.IGNORECASE
)
_CONN_WORD = re.compile(
    r"\b(?:connection|conn|client|socket|peer|session)\s+#?[\"']?(?P<id>[\w.:/-]+)", re.IGNORECASE
)
_NOT_AN_ID = frozenset(
    {
        "closed",
        "close",
        "closing",
        "opened",
        "open",
        "lost",
        "refused",
        "reset",
        "with",
        "from",
        "was",
        "is",
        "has",
        "had",
        "timed",
        "timeout",
        "not",
        "error",
        "errored",
        "dropped",
        "disconnected",
        "disconnect",
        "terminated",
        "ended",
        "failed",
        "connected",
        "count",
        "code",
        "the",
        "a",
        "an",
        "to",
        "for",
        "on",
        "in",
        "of",
        "and",
        "handshake",
        "aborted",
        "went",
        "gone",
        "stats",
        "state",
        "registered",
        "rejected",
        "sent",
        "received",
        "message",
        "id",
        "joined",
        "left",
        "established",
        "accepted",
        "hung",
        "unknown",
        "ready",
        "by",
        "at",
        "that",
        "which",
        "did",
        "does",
        "will",
        "count:",
    }
)
_REFUSED = re.compile(r"ECONNREFUSED|connection refused", re.IGNORECASE)
_TIMEOUT = re.compile(r"ETIMEDOUT|ESOCKETTIMEDOUT|\btimed out\b", re.IGNORECASE)
_INVALID_FORMAT = re.compile(r"invalid message format", re.IGNORECASE)
_NOT_OPENING = re.compile(r"fail|error|refus|not connected|lost|unable|could not|cannot|reject|timeout")
# Node's crash output starts with the source location, then the source line and a caret under it.
_NODE_LOCATION = re.compile(r"^(?:file://)?(?:/|[A-Za-z]:\\|\.{1,2}/)\S*:\d+\s*$")
_CARET = re.compile(r"^\s*\^+\s*$")
_SOURCE_LINE = re.compile(
    r"^\s+(?:throw|raise|await|return|new|const|let|var|if|yield|self\.|this\.)\b|^\s*\^+\s*$"
)
_ERROR_LINE = re.compile(r"^[\w.$]*(?:Error|Exception|Rejection)\b")
_PY_TRACEBACK = "Traceback (most recent call last)"
_CLOSERS: dict[str, Closer] = {
    "client": "client",
    "remote": "client",
    "peer": "client",
    "browser": "client",
    "server": "server",
    "local": "server",
    "self": "server",
    "us": "server",
    "neither": "neither",
    "network": "neither",
}
_CLIENT_CLOSED = quick(
    r"by (?:the )?(?:client|peer|remote)|(?:client|peer|remote) (?:closed|hung up|left)"
)
_SERVER_CLOSED = quick(r"by (?:the )?server|server (?:closed|terminated|kicked)|\bkicked\b|\bevicted\b")

# The case-insensitive patterns above cost a scan of the whole line each. For ASCII text (lower() then
# keeps every position) they are searched in the lower-cased text without IGNORECASE, and skipped where
# none of the words every match contains is there; non-ASCII text (where a Kelvin sign matches "k")
# takes the patterns as they are. Same matches, a fraction of the time.
_LEVEL_WORDS_ALL = (
    "trace", "debug", "info", "notice", "warn", "warning", "error", "err", "fatal", "critical"
)  # fmt: skip
_TEXT_LEVEL_LOWER = quick(rf"\b({'|'.join(_LEVEL_WORDS_ALL)})\b")
_LEVEL_WORDS_IN = ("trace", "debug", "info", "notice", "warn", "err", "fatal", "critical")
_CONN_KEY_VALUE_LOWER = quick(_CONN_KEY_VALUE.pattern)
_CONN_KEY_VALUE_WORDS = ("conn", "client", "socket", "sid")
_CONN_WORD_LOWER = quick(_CONN_WORD.pattern)
_CONN_WORD_WORDS = ("conn", "client", "socket", "peer", "session")
_CLOSE_CONTEXT_WORDS = ("clos", "disconnect", "terminat", "hang", "hung", "left", "went away")
_CLIENT_CLOSED_WORDS = ("client", "peer", "remote")
_SERVER_CLOSED_WORDS = ("server", "kicked", "evicted")


def _none_of(words: tuple[str, ...], lowered: str) -> bool:
    for word in words:  # noqa: SIM110 - a loop is faster than all() over a generator, per line
        if word in lowered:
            return False
    return True


def _level_said(text: str, lowered: str) -> str | None:
    """The level a text line names ("INFO", "warning" …), normalised; None when it names none."""
    if text.isascii():
        if _none_of(_LEVEL_WORDS_IN, lowered):
            return None
        match = _TEXT_LEVEL_LOWER.search(lowered)
    else:
        match = _TEXT_LEVEL.search(text)
    return normalise_level(match.group(1)) if match else None


def _close_context(text: str, lowered: str) -> bool:
    if text.isascii() and _none_of(_CLOSE_CONTEXT_WORDS, lowered):
        return False
    return _CLOSE_CONTEXT.search(text) is not None


def _closer_said(lowered: str) -> Closer:
    """Who closed, by the words: "client", "server" or "unknown"."""
    if not _none_of(_CLIENT_CLOSED_WORDS, lowered) and _CLIENT_CLOSED.search(lowered):
        return "client"
    if not _none_of(_SERVER_CLOSED_WORDS, lowered) and _SERVER_CLOSED.search(lowered):
        return "server"
    return "unknown"


def normalise_level(raw: Any) -> str:
    if type(raw) is str:  # a logger writes a handful of level strings, line after line
        level = _LEVELS_SEEN.get(raw)
        if level is None:
            level = _normalise_level(raw)
            if len(_LEVELS_SEEN) < 256:  # a bounded memo: a level field full of odd values is not cached
                _LEVELS_SEEN[raw] = level
        return level
    return _normalise_level(raw)


_LEVELS_SEEN: dict[str, str] = {}


def _normalise_level(raw: Any) -> str:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _PINO_LEVELS.get(int(raw) // 10 * 10, "info")
    if isinstance(raw, str):
        word = strip_ansi(raw).strip().lower()
        return _LEVEL_WORDS.get(word, word or "info")
    return "info"


def at_least(level: str, floor: str) -> str:
    """The more severe of two levels; a level wsmon does not know ranks as info."""
    return level if _LEVEL_RANK.get(level, 2) >= _LEVEL_RANK[floor] else floor


def _is_warning(level: str) -> bool:
    return _LEVEL_RANK.get(level, 2) >= 3


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
    if vocab.gated(vocab.FAIL_STRONG, vocab.STRONG_GATE, lowered):
        return "delivery"
    if "\n" in text:
        return "stack"
    return ""


def _crashed(lowered: str) -> bool:
    return vocab.gated(vocab.CRASH, vocab.CRASH_GATE, lowered) is not None


_TEXT_PEER = quick(
    r"\bfrom\s+\[?(?P<peer>(?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)\]?:(?P<port>\d{1,5})\b"
)
_TEXT_MS = quick(r"\b(?:in|took|after|latency:?)\s+(\d+(?:\.\d+)?)\s?ms\b")


def _level_for_text(level: str, text: str) -> str:
    """Lines that name a refusal or a timeout are errors, an invalid message format a warning at least."""
    floor = _level_floor(text)
    return at_least(level, floor) if floor else level


def _level_floor(text: str) -> str:
    lowered = text.lower()
    if "refused" not in lowered and "timed" not in lowered and "invalid" not in lowered:
        return ""  # the regexes below cannot match: skip them, this runs for every kept line
    if _REFUSED.search(text) or _TIMEOUT.search(text):
        return "error"
    if _INVALID_FORMAT.search(text):
        return "warn"
    return ""


def _failure_from_text(text: str) -> tuple[str, str]:
    """(message id, reason) from a delivery failure's text; either may be empty."""
    match = _DELIVERY_FAILED.search(text)
    message_id = (match.group("id") or "") if match else ""
    if not any(c.isdigit() for c in message_id):
        message_id = ""  # "delivery failed: unknown recipient": a word, not an id
    reason = ((match.group("reason") or "") if match else "").strip()
    if not message_id:
        found = _MESSAGE_ID.search(text)
        message_id = found.group(1) if found else ""
    if not reason and "connection not open" in text.lower():
        reason = "Connection not open"
    return message_id, reason


def _phrase_reason(message: str, match: re.Match[str]) -> str:
    """The failure's words as the server wrote them: from the matched phrase to the end of its clause."""
    after = message[match.end() :].lstrip()
    # "Delivery failed: unknown recipient x": what follows the phrase; else the phrase and its clause
    rest = after[1:].strip() if after[:1] in (":", "-") and len(after) > 2 else message[match.start() :]
    for stop in (" (", "; ", ", "):
        rest = rest.partition(stop)[0]
    return rest.strip().rstrip(".:")[:200]


def _text_close_code(text: str, lowered: str = "") -> int | None:
    lowered = lowered or text.lower()
    ascii_text = text.isascii()  # then a pattern cannot match where none of its words is
    match = None if ascii_text and "clos" not in lowered else _CLOSE_CODE.search(text)
    if match is None and _close_context(text, lowered):
        match = None if ascii_text and _none_of(("code", "("), lowered) else _BARE_CODE.search(text)
        if match is not None:
            return int(match.group("code") or match.group("paren"))
    return int(match.group("code")) if match else None


def _text_conn(text: str, *, exclude_message_ids: bool = False) -> str:
    """A connection id named in free text: ``conn=c12``, ``clientId: abc``, ``connection c12``."""
    if text.isascii():  # the patterns without IGNORECASE in the lower-cased text, where their words are
        lowered = text.lower()
        patterns = [
            pattern
            for pattern, words in (
                (_CONN_KEY_VALUE_LOWER, _CONN_KEY_VALUE_WORDS),
                (_CONN_WORD_LOWER, _CONN_WORD_WORDS),
            )
            if not _none_of(words, lowered)
        ]
    else:
        lowered, patterns = text, [_CONN_KEY_VALUE, _CONN_WORD]
    for pattern in patterns:
        for match in pattern.finditer(lowered):
            found = text[match.start("id") : match.end("id")].rstrip(".,;:)/'\"")
            if not found or found.lower() in _NOT_AN_ID:
                continue
            if exclude_message_ids and _MESSAGE_ID.fullmatch(found):
                continue
            return found
    return ""
