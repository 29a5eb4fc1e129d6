"""Server log lines into events: pure, synchronous, testable without a process.

Understands the lines real loggers write in their default and common configurations — JSON from
winston, pino, bunyan, Python's logging with a JSON formatter, structlog, Go's slog and zap; key=value
text (logfmt, structlog's renderers); and plain text — and recognises what a line is about by
vocabulary (``wsmon.sources.logvocab``): a connection opened or closed, a delivery that succeeded or
failed, an error or a crash. ANSI colour codes are stripped everywhere, inside every field too.

Every line that is a warning or worse, or that no recogniser claimed, is kept as a LogLine with its
structured fields (capped, secrets masked), so nothing is lost. A line that cannot be decoded (a JSON
document nested 10,000 deep, say) is kept as a plain line: no line can stop a log source.

A "line" may be a folded block: an error line with its stack trace below it, joined by newlines (see
``wsmon.sources.logfile.StackFolder``); it is one LogLine of level error at least, and the source-code
lines a crash prints (Node's ``throw new …`` above the error) are part of it, never events of their own.

Custom rules (``wsmon.sources.logrules``) are tried before the built-in recognisers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from wsmon.core import events as ev
from wsmon.sources import logvocab as vocab
from wsmon.sources.logrules import Rule
from wsmon.sources.logvocab import strip_ansi

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
_MESSAGE_ID = re.compile(r"\b(msg[_-][\w.:-]+)")
_MESSAGE_WORD = re.compile(r"\b(?:message|msg)(?:[_ -]?id)?\s*[:=#]?\s*[\"']?(?P<id>[\w.:-]*\d[\w.:-]*)")
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
        "closed", "close", "closing", "opened", "open", "lost", "refused", "reset", "with", "from", "was",
        "is", "has", "had", "timed", "timeout", "not", "error", "errored", "dropped", "disconnected",
        "disconnect", "terminated", "ended", "failed", "connected", "count", "code", "the", "a", "an", "to",
        "for", "on", "in", "of", "and", "handshake", "aborted", "went", "gone", "stats", "state",
        "registered", "rejected", "sent", "received", "message", "id", "joined", "left", "established",
        "accepted", "hung", "unknown", "ready", "by", "at", "that", "which", "did", "does", "will", "count:",
    }
)  # fmt: skip
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
_TIME_KEYS = frozenset({"time", "timestamp", "ts", "@timestamp", "asctime", "v"})
_CLOSERS = {
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
_CLIENT_CLOSED = re.compile(
    r"by (?:the )?(?:client|peer|remote)|(?:client|peer|remote) (?:closed|hung up|left)"
)
_SERVER_CLOSED = re.compile(r"by (?:the )?server|server (?:closed|terminated|kicked)|\bkicked\b|\bevicted\b")
MAX_CLOSED_REMEMBERED = 10_000
MAX_TEXT_CHARS = 16_384  # a line kept as plain text after it failed to decode is cut here

_json_decoder = msgspec.json.Decoder()


class _Head(msgspec.Struct):
    """The only fields the pre-filter decodes: the message and the level, under their common names."""

    msg: str = ""
    message: str = ""
    event: str = ""
    level: str | int | float | None = None
    severity: str | int | None = None
    levelname: str | None = None
    lvl: str | int | None = None


_head_decoder = msgspec.json.Decoder(_Head)


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
    return record if isinstance(record, dict) else None


@dataclass(slots=True)
class _Line:
    """One line (or folded block) made ready for recognition."""

    message: str  # what the line says, colour removed
    level: str
    text: str  # what a LogLine keeps as its text
    flat: dict[str, Any]  # structured fields, nested objects as dotted keys
    skip: frozenset[str] = frozenset()  # keys not kept as fields (the message and the level)
    record: dict[str, Any] | None = None  # the JSON record, for custom rules
    crash: bool = False
    source_line: bool = False  # a source-code line printed above a crash, on its own
    lowered: str = field(default="", init=False)
    _roles: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.lowered = self.message.lower()

    @property
    def roles(self) -> dict[str, Any]:
        """The fields by role (connection, message id, close code …), worked out on first use."""
        if self._roles is None:
            self._roles = vocab.roles(self.flat)
        return self._roles


@dataclass(frozen=True, slots=True)
class Explanation:
    """What one log line was recognised as, and by which rule: for ``wsmon logs explain``."""

    events: list[ev.Event]
    why: str


Clock = Callable[[], tuple[float, float]]


class LogParser:
    """Turns one server's log lines into events. ``source`` names the target (e.g. "server")."""

    def __init__(self, source: str, clock: Clock, rules: Sequence[Rule] | None = None) -> None:
        self.source = source
        self.clock = clock
        self.rules = tuple(rules or ())
        self._open_since: dict[str, float] = {}
        # Connections this log has closed: a server that logs one close twice ("client left", then
        # "connection closed code=1000") must not count it twice. Bounded; a reopened id leaves it.
        self._closed_ids: dict[str, None] = {}

    def parse(self, line: str) -> list[ev.Event]:
        return self.explain(line).events

    def explain(self, line: str) -> Explanation:
        block = line.rstrip("\r\n")
        if not block.strip():
            return Explanation([], "blank")
        wall, mono = self.clock()
        try:
            if "\n" not in block and not self.rules:
                chatter = (
                    self._chatter(block, wall, mono)
                    if block[0] == "{"
                    else self._text_chatter(block, wall, mono)
                )
                if chatter is not None:
                    return chatter
            parsed = self._prepare(block)
            if self.rules:
                ruled = self._by_rules(parsed, wall, mono)
                if ruled is not None:
                    return ruled
            return self._recognise(parsed, wall, mono)
        except Exception as error:  # no line may stop the source: keep it as plain text
            text = vocab.mask_text(strip_ansi(block)[:MAX_TEXT_CHARS])
            match = _TEXT_LEVEL.search(text[:200])
            level = normalise_level(match.group(1)) if match else "info"
            note = f"not decoded ({type(error).__name__}): kept as a plain line"
            log = ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=self.source)
            return Explanation([log], note)

    # --- the pre-filter: most lines are chatter -------------------------------------------------

    def _chatter(self, block: str, wall: float, mono: float) -> Explanation | None:
        """The pre-filter. A JSON line is first decoded for its message and level alone (msgspec into
        a small Struct, skipping every other field); when the message names nothing wsmon recognises
        and the level is below a warning — most lines of a busy server — it is kept as its message and
        level, without the recognisers and without its other fields. None for any other line."""
        try:
            head = _head_decoder.decode(block)
        except msgspec.DecodeError:  # not JSON, not an object, a message that is not a string ...
            return None
        message = head.msg or head.message or head.event
        if not message:
            return None
        message = strip_ansi(message)  # winston's colorize() puts escape codes into the JSON strings
        if vocab.has_cue(message.lower()):
            return None
        raw_level = next(
            (x for x in (head.level, head.severity, head.levelname, head.lvl) if x is not None), None
        )
        level = normalise_level(raw_level) if raw_level is not None else "info"
        if _LEVEL_RANK.get(level, 2) >= 3:
            return None
        log = ev.LogLine(wall=wall, mono=mono, level=level, text=vocab.mask_text(message), source=self.source)
        return Explanation([log], "no event in its words, below a warning: kept as its message (pre-filter)")

    def _text_chatter(self, block: str, wall: float, mono: float) -> Explanation | None:
        """The pre-filter for a plain text line: none of the recognisers' words, no level above info."""
        plain = strip_ansi(block)
        lowered = plain.lower()
        if vocab.has_cue(lowered) or "warn" in lowered or "err" in lowered or "crit" in lowered:
            return None
        match = _TEXT_LEVEL.search(plain)
        level = normalise_level(match.group(1)) if match else "info"
        log = ev.LogLine(wall=wall, mono=mono, level=level, text=vocab.mask_text(plain), source=self.source)
        return Explanation([log], "no event in its words, below a warning: kept as it is (pre-filter)")

    # --- one line, ready for recognition --------------------------------------------------------

    def _prepare(self, block: str) -> _Line:
        head, _, continuation = block.partition("\n")
        stripped = head.lstrip()
        if stripped.startswith("{"):
            record = _decode_record(stripped)
            if record is not None:
                return _from_record(record, strip_ansi(continuation))
        return _from_text(strip_ansi(block))

    # --- custom rules ---------------------------------------------------------------------------

    def _by_rules(self, line: _Line, wall: float, mono: float) -> Explanation | None:
        # A rule's regex is searched in a JSON line's message, or in the whole (first) line of text.
        subject = line.message if line.record is not None else line.text.partition("\n")[0]
        for rule in self.rules:
            event = rule.apply(subject, line.record, wall=wall, mono=mono, source=self.source)
            if event is None:
                continue
            out: list[ev.Event] = [event]
            if _is_warning(line.level):
                out.append(self._log(line, wall, mono))
            return Explanation(out, f"custom rule {rule.name or '(unnamed)'}")
        return None

    # --- vocabulary -----------------------------------------------------------------------------

    def _recognise(self, line: _Line, wall: float, mono: float) -> Explanation:
        lowered = line.lowered
        if line.source_line:
            return Explanation([self._log(line, wall, mono)], "source line of a stack trace: kept, no event")
        if lowered == "connection stats":
            traffic = self._traffic(line, wall, mono)
            if traffic is not None:
                return Explanation([traffic], "traffic: 'connection stats'")
        if not vocab.has_cue(lowered):
            return Explanation([self._log(line, wall, mono)], _plain_why(line))
        failure = self._failure(line, wall, mono)
        if failure is not None:
            event, phrase = failure
            line.level = at_least(line.level, "error")
            return Explanation([event, self._log(line, wall, mono)], f"delivery failed: {phrase!r}")
        if not line.crash:
            for attempt in (self._closed, self._opened, self._delivered):
                found = attempt(line, wall, mono)
                if found is not None:
                    event, why = found
                    out: list[ev.Event] = [event]
                    if _is_warning(line.level):
                        out.append(self._log(line, wall, mono))
                    return Explanation(out, why)
        return Explanation([self._log(line, wall, mono)], _plain_why(line))

    def _failure(self, line: _Line, wall: float, mono: float) -> tuple[ev.DeliveryFailed, str] | None:
        lowered = line.lowered
        match = vocab.gated(vocab.FAIL_STRONG, vocab.STRONG_GATE, lowered)
        if match is None:
            weak = vocab.gated(vocab.FAIL_WEAK, vocab.WEAK_GATE, lowered)
            if weak is None and line.flat and vocab.SEND_CONTEXT.search(lowered):
                # "send" with error "write after end": the weak words may be in the error field
                error = vocab.error_text(line.flat).lower()
                weak = vocab.gated(vocab.FAIL_WEAK, vocab.WEAK_GATE, error) if error else None
            if weak is None:
                return None
            if not (vocab.SEND_CONTEXT.search(lowered) or _message_id(line)):
                return None
            match = weak
        message_id = _message_id(line)
        phrase = match.group(0)
        text_id, text_reason = _failure_from_text(line.message)
        reason = text_reason or vocab.error_text(line.flat) or _phrase_reason(line.message, match)
        conn = _conn_of(line, bare_id=False)  # a recipient that is not connected has no connection
        event = ev.DeliveryFailed(
            wall=wall,
            mono=mono,
            message_id=message_id or text_id,
            conn=conn,
            reason=vocab.mask_text(reason) if reason else "delivery failed",
            source=self.source,
        )
        return event, phrase

    def _closed(self, line: _Line, wall: float, mono: float) -> tuple[ev.ConnectionClosed, str] | None:
        match = vocab.gated(vocab.CLOSE, vocab.CLOSE_GATE, line.lowered)
        if match is None and "code" not in line.lowered and "code" not in line.roles:
            return None  # neither a word nor a code of a close: skip the code searches
        code = _close_code(line, close_words=match is not None)
        if match is None and code is None:
            return None
        conn = _conn_of(line)
        if not conn:
            return None
        if conn in self._closed_ids:
            return None  # already closed by an earlier line of this log: kept as a log line only
        self._closed_ids[conn] = None
        if len(self._closed_ids) > MAX_CLOSED_REMEMBERED:
            del self._closed_ids[next(iter(self._closed_ids))]
        opened = self._open_since.pop(conn, None)
        duration = _duration_s(line.flat)
        event = ev.ConnectionClosed(
            wall=wall,
            mono=mono,
            conn=conn,
            code=1005 if code is None else code,
            reason=vocab.mask_text(_text_of(line.roles.get("reason"))),
            closed_by=_closer(line),  # type: ignore[arg-type]
            duration_s=duration if duration is not None else (mono - opened if opened is not None else None),
            source=self.source,
        )
        said = repr(match.group(0)) if match else "a close code"
        return event, f"connection closed: {said}" + ("" if code is not None else ", no code given: 1005")

    def _opened(self, line: _Line, wall: float, mono: float) -> tuple[ev.ConnectionOpened, str] | None:
        match = vocab.gated(vocab.OPEN, vocab.OPEN_GATE, line.lowered)
        if match is None or _NOT_OPENING.search(line.lowered):
            return None
        conn = _conn_of(line)
        if not conn:
            return None
        self._open_since[conn] = mono
        self._closed_ids.pop(conn, None)
        event = ev.ConnectionOpened(
            wall=wall,
            mono=mono,
            conn=conn,
            peer=_peer_of(line),
            path=_text_of(line.flat.get("path", line.flat.get("url", ""))),
            source=self.source,
        )
        return event, f"connection opened: {match.group(0)!r}"

    def _delivered(self, line: _Line, wall: float, mono: float) -> tuple[ev.LatencySample, str] | None:
        match = vocab.gated(vocab.DELIVERED, vocab.DELIVERED_GATE, line.lowered)
        if match is None:
            return None
        latency = _latency_ms(line.roles, line.message)
        if latency is None:
            return None  # a success without a latency is kept as a line; there is no event to count it
        sample = ev.LatencySample(
            wall=wall, mono=mono, kind="delivery", ms=latency, target=self.source, ref=_message_id(line)
        )
        return sample, f"delivered: {match.group(0)!r} with a latency"

    def _traffic(self, line: _Line, wall: float, mono: float) -> ev.Traffic | None:
        conn = _conn_of(line)
        if not conn:
            return None
        flat = line.flat
        return ev.Traffic(
            wall=wall,
            mono=mono,
            conn=conn,
            msgs_in=int(_number(flat.get("msgs_in"), 0)),
            msgs_out=int(_number(flat.get("msgs_out"), 0)),
            bytes_in=int(_number(flat.get("bytes_in"), 0)),
            bytes_out=int(_number(flat.get("bytes_out"), 0)),
            interval_s=_number(flat.get("interval_ms"), 1000.0) / 1000.0,
        )

    def _log(self, line: _Line, wall: float, mono: float) -> ev.LogLine:
        fields = vocab.kept_fields(line.flat.items(), line.skip) if line.flat else {}
        return ev.LogLine(
            wall=wall,
            mono=mono,
            level=_level_for_text(line.level, line.text),
            text=vocab.mask_text(line.text),
            source=self.source,
            fields=fields,
        )


# --- building a _Line ---------------------------------------------------------------------------


def _from_record(record: dict[str, Any], continuation: str) -> _Line:
    flat = vocab.flatten(record)
    message_key = _first_key(record, vocab.MESSAGE_KEYS)
    message = record.get(message_key, "") if message_key else ""
    if isinstance(message, dict | list):
        message = ""
    if not message:
        err = record.get("err", record.get("error"))
        if isinstance(err, dict):
            message = err.get("message") or err.get("type") or err.get("name") or ""
    message = strip_ansi(str(message))
    level_key = _first_key(record, vocab.LEVEL_KEYS)
    level = normalise_level(record[level_key]) if level_key else "info"
    text = f"{message}\n{continuation}" if continuation else message
    crash = bool(continuation) or _crashed(message.lower())
    if continuation:
        level = at_least(level, "error")
    skip = _SKIPS.get((message_key, level_key))
    if skip is None:
        skip = _SKIPS[(message_key, level_key)] = frozenset(k for k in (message_key, level_key, "v") if k)
    return _Line(message, level, text, flat, skip, record, crash=crash)


# The keys a kept line leaves out (its message and its level), by which keys those were.
_SKIPS: dict[tuple[str, str], frozenset[str]] = {}


def _first_key(record: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        if key in record:
            return key
    return ""


def _from_text(block: str) -> _Line:
    head, _, continuation = block.partition("\n")
    if _SOURCE_LINE.match(head) and not continuation:
        return _Line(head, "info", block, {}, source_line=True)
    message = head
    crash = bool(continuation)
    node_crash = bool(continuation) and bool(_NODE_LOCATION.match(head))
    if node_crash:
        message = _node_crash_message(block) or head
    elif head.startswith(_PY_TRACEBACK):
        message = _python_exception_line(block) or head
    flat: dict[str, Any] = {}
    tail = _json_tail(message)
    if tail is not None:  # "info: Client connected {"connectionId":"c1"}": winston's simple format
        message, flat = message[: len(message) - len(tail[0])].rstrip(), tail[1]
    elif "=" in message:
        flat = vocab.key_values(message)
        first = vocab.first_key_value(message)
        if first > 0 and not any(k in flat for k in ("msg", "message", "event")):
            message = message[:first].rstrip()  # structlog's console renderer: the words, then key=value
    level_match = _TEXT_LEVEL.search(head)
    level = normalise_level(flat["level"]) if "level" in flat else None
    if level is None:
        level = normalise_level(level_match.group(1)) if level_match else "info"
    said = next((flat[k] for k in ("msg", "message", "event") if flat.get(k)), "")
    skip = frozenset({"msg", "message", "event", "level"}) if said else frozenset({"level"})
    if crash:
        level = at_least(level, "fatal" if node_crash else "error")
    crash = crash or _crashed(message.lower())
    return _Line(said or message, level, block, flat, skip, crash=crash)


def _json_tail(text: str) -> tuple[str, dict[str, Any]] | None:
    """The JSON object a text line ends with, if it does: (its text, its fields flattened)."""
    if not text.endswith("}"):
        return None
    start = text.find(" {")
    while start != -1:
        candidate = text[start + 1 :]
        try:
            record = _json_decoder.decode(candidate)
        except msgspec.DecodeError:
            start = text.find(" {", start + 1)
            continue
        return (candidate, vocab.flatten(record)) if isinstance(record, dict) else None
    return None


def _node_crash_message(block: str) -> str:
    """The error line of Node's crash output: after the source line and its caret, or the first line
    that names an Error."""
    lines = block.split("\n")
    after_caret = False
    for text in lines[1:]:
        if _CARET.match(text):
            after_caret = True
            continue
        if after_caret and text.strip():
            return text.strip()
    return next((t.strip() for t in lines[1:] if _ERROR_LINE.match(t)), "")


def _python_exception_line(block: str) -> str:
    for text in reversed(block.split("\n")):
        if text.strip() and not text[0].isspace():
            return text.strip()
    return ""


def _crashed(lowered: str) -> bool:
    return vocab.gated(vocab.CRASH, ("uncaught", "unhandled", "fatal", "panic"), lowered) is not None


def _plain_why(line: _Line) -> str:
    if line.crash:
        return "crash or stack trace: kept as an error line"
    if _is_warning(line.level):
        return f"no event in its words; kept ({line.level})"
    return "no event in its words; kept as a log line"


# --- fields -------------------------------------------------------------------------------------


def _text_of(value: Any) -> str:
    return "" if value is None else vocab.text_of(value)


def _conn_of(line: _Line, *, bare_id: bool = True) -> str:
    """The connection a line is about; a bare ``id`` field counts only on lines about a connection."""
    found = line.roles.get("conn")
    if found is not None:
        return _text_of(found)
    if bare_id and line.record is not None and "id" in line.flat:
        value = line.flat["id"]
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return _text_conn(line.message, exclude_message_ids=True)


def _peer_of(line: _Line) -> str:
    """The client's address: a peer field (with the port field beside it, if any), or "from 1.2.3.4:5678"."""
    peer = _text_of(line.roles.get("peer"))
    port = line.flat.get("remotePort", line.flat.get("remote_port"))
    if peer and isinstance(port, int) and not isinstance(port, bool) and not peer.endswith(f":{port}"):
        return f"{peer}:{port}"
    if peer:
        return peer
    said = _TEXT_PEER.search(line.message)
    return f"{said.group('peer')}:{said.group('port')}" if said else ""


def _message_id(line: _Line) -> str:
    found = line.roles.get("message_id")
    if found is None and line.record is not None:
        found = line.flat.get("id")  # a bare "id" on a line about a delivery names the message
    if found is not None and not isinstance(found, bool | dict | list):
        return _text_of(found)
    matched = _MESSAGE_ID.search(line.message) or _MESSAGE_WORD.search(line.message)
    return matched.group(1).rstrip(".,;:") if matched else ""


def _close_code(line: _Line, *, close_words: bool) -> int | None:
    code = _as_close_code(line.roles.get("code"))
    if code is not None:
        return code
    if close_words or _CLOSE_CONTEXT.search(line.message):
        code = _as_close_code(line.flat.get("code"))
        if code is not None:
            return code
    return _text_close_code(line.message)


def _closer(line: _Line) -> str:
    said = line.roles.get("closer")
    if said is not None:
        return _CLOSERS.get(_text_of(said).lower(), "unknown")
    if _CLIENT_CLOSED.search(line.lowered):
        return "client"
    if _SERVER_CLOSED.search(line.lowered):
        return "server"
    return "unknown"


def _duration_s(flat: dict[str, Any]) -> float | None:
    for key in ("duration_ms", "durationMs"):
        value = flat.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) / 1000.0
    return None


_TEXT_PEER = re.compile(
    r"\bfrom\s+\[?(?P<peer>(?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)\]?:(?P<port>\d{1,5})\b"
)
_TEXT_MS = re.compile(r"\b(?:in|took|after|latency:?)\s+(\d+(?:\.\d+)?)\s?ms\b")


def _latency_ms(roles: dict[str, Any], message: str = "") -> float | None:
    for role, scale in (("latency_ms", 1.0), ("latency_s", 1000.0)):
        value = roles.get(role)
        if not isinstance(value, int | float | str):
            continue
        try:
            number = float(str(value).removesuffix("ms")) if isinstance(value, str) else float(value)
        except ValueError:
            continue
        if number >= 0:
            return number * scale
    said = _TEXT_MS.search(message)  # "delivered to client c1 in 0.42 ms"
    return float(said.group(1)) if said else None


def _level_for_text(level: str, text: str) -> str:
    """Lines that name a refusal or a timeout are errors, an invalid message format a warning at least."""
    lowered = text.lower()
    if "refused" not in lowered and "timed" not in lowered and "invalid" not in lowered:
        return level  # the regexes below cannot match: skip them, this runs for every kept line
    if _REFUSED.search(text) or _TIMEOUT.search(text):
        return at_least(level, "error")
    if _INVALID_FORMAT.search(text):
        return at_least(level, "warn")
    return level


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


def _as_close_code(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 1000 <= value <= 4999:
        return value
    return None


def _text_close_code(text: str) -> int | None:
    match = _CLOSE_CODE.search(text)
    if match is None and _CLOSE_CONTEXT.search(text):
        match = _BARE_CODE.search(text)
        if match is not None:
            return int(match.group("code") or match.group("paren"))
    return int(match.group("code")) if match else None


def _text_conn(text: str, *, exclude_message_ids: bool = False) -> str:
    """A connection id named in free text: ``conn=c12``, ``clientId: abc``, ``connection c12``."""
    for pattern in (_CONN_KEY_VALUE, _CONN_WORD):
        for match in pattern.finditer(text):
            found = match.group("id").rstrip(".,;:)/'\"")
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


__all__ = ["Explanation", "LogParser", "at_least", "normalise_level", "recognise", "strip_ansi"]
