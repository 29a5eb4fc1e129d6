"""Server log lines into events: pure, synchronous, testable without a process.

Understands the lines real loggers write in their default and common configurations — JSON from
winston, pino, bunyan, Python's logging with a JSON formatter, structlog, Go's slog and zap; key=value
text (logfmt, structlog's renderers); and plain text — and recognises what a line is about by
vocabulary (``wsmon.sources.logs.vocabulary``): a connection opened or closed, a delivery that succeeded or
failed, an error or a crash. ANSI colour codes are stripped everywhere, inside every field too.

Every line that is a warning or worse, or that no recogniser claimed, is kept as a LogLine with its
structured fields (capped, secrets masked), so nothing is lost. A line that cannot be decoded (a JSON
document nested 10,000 deep, say) is kept as a plain line: no line can stop a log source.

A "line" may be a folded block: an error line with its stack trace below it, joined by newlines (see
``wsmon.sources.logs.source.StackFolder``); it is one LogLine of level error at least, and the source-code
lines a crash prints (Node's ``throw new …`` above the error) are part of it, never events of their own.

Custom rules (``wsmon.sources.logs.rules``) are tried before the built-in recognisers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from wsmon.core import events as ev
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.rules import Rule
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

# The case-insensitive patterns above cost a scan of the whole line each. For ASCII text (lower() then
# keeps every position) they are searched in the lower-cased text without IGNORECASE, and skipped where
# none of the words every match contains is there; non-ASCII text (where a Kelvin sign matches "k")
# takes the patterns as they are. Same matches, a fraction of the time.
_TEXT_LEVEL_LOWER = re.compile(r"\b(trace|debug|info|notice|warn|warning|error|err|fatal|critical)\b")
_LEVEL_WORDS_IN = ("trace", "debug", "info", "notice", "warn", "err", "fatal", "critical")
_CONN_KEY_VALUE_LOWER = re.compile(_CONN_KEY_VALUE.pattern)
_CONN_KEY_VALUE_WORDS = ("conn", "client", "socket", "sid")
_CONN_WORD_LOWER = re.compile(_CONN_WORD.pattern)
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


def _closer_said(lowered: str) -> str:
    """Who closed, by the words: "client", "server" or "unknown"."""
    if not _none_of(_CLIENT_CLOSED_WORDS, lowered) and _CLIENT_CLOSED.search(lowered):
        return "client"
    if not _none_of(_SERVER_CLOSED_WORDS, lowered) and _SERVER_CLOSED.search(lowered):
        return "server"
    return "unknown"


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


def _chatter_kept(message: str, raw_level: Any) -> tuple[str, str] | None:
    """What the pre-filter keeps of a JSON line with this message and level: (level, text), or None
    when the line may be about something (a cue word) or is a warning or worse."""
    message = strip_ansi(message)  # winston's colorize() puts escape codes into the JSON strings
    if vocab.has_cue(message.lower()):
        return None
    level = normalise_level(raw_level) if raw_level is not None else "info"
    if _LEVEL_RANK.get(level, 2) >= 3:
        return None
    return level, vocab.mask_text(message)


# The pre-filter's verdicts by (message, level) as decoded: a busy server's chatter is a few messages.
_CHATTER_SEEN: dict[tuple[str, Any], tuple[str, str] | None] = {}


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


# --- memos: what depends only on a message, a level or a logger's keys is worked out once ----------
#
# A logger writes the same few messages, levels and field names line after line (the ids are in the
# fields), so the pre-filter's verdict, the vocabulary's matches and the roles of the fields are
# remembered by the text or keys they depend on. Each memo is bounded: when a logger puts ids in its
# messages it is emptied and starts again; texts longer than _MEMO_MAX_CHARS are never remembered.

_MEMO_ENTRIES = 4096
_MEMO_MAX_CHARS = 512
_UNSEEN: Any = object()
_UNSET: Any = object()


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Put ``value`` in a bounded memo; a full one is emptied first and starts again."""
    if len(memo) >= _MEMO_ENTRIES:
        memo.clear()
    memo[key] = value


def _forget() -> None:
    """Empty every memo (for tests: the full path with nothing remembered)."""
    for memo in (_CHATTER_SEEN, _LEVELS_SEEN, _WORDS_SEEN, _SHAPES):
        memo.clear()


class _Words:
    """What a message says in the vocabulary's terms: each pattern is searched once, when first asked
    for, and a JSON line's _Words are shared by every line with the same message."""

    __slots__ = ("_close", "_closer", "_crashed", "_delivered", "_level_floor", "_masked", "_not_opening",
                 "_open", "_said_ms", "_send", "_strong", "_weak", "cue", "lowered", "message")  # fmt: skip

    def __init__(self, message: str, lowered: str) -> None:
        self.message = message
        self.lowered = lowered
        self.cue = vocab.has_cue(lowered)
        self._strong = self._weak = self._send = self._close = self._open = _UNSET
        self._not_opening = self._delivered = self._crashed = self._said_ms = _UNSET
        self._masked = self._level_floor = self._closer = _UNSET

    @property
    def strong(self) -> re.Match[str] | None:
        if self._strong is _UNSET:
            self._strong = vocab.gated(vocab.FAIL_STRONG, vocab.STRONG_GATE, self.lowered)
        return self._strong

    @property
    def weak(self) -> re.Match[str] | None:
        if self._weak is _UNSET:
            self._weak = vocab.gated(vocab.FAIL_WEAK, vocab.WEAK_GATE, self.lowered)
        return self._weak

    @property
    def send(self) -> bool:
        if self._send is _UNSET:
            self._send = vocab.SEND_CONTEXT.search(self.lowered) is not None
        return self._send

    @property
    def close(self) -> re.Match[str] | None:
        if self._close is _UNSET:
            self._close = vocab.gated(vocab.CLOSE, vocab.CLOSE_GATE, self.lowered)
        return self._close

    @property
    def open(self) -> re.Match[str] | None:
        if self._open is _UNSET:
            self._open = vocab.gated(vocab.OPEN, vocab.OPEN_GATE, self.lowered)
        return self._open

    @property
    def not_opening(self) -> bool:
        if self._not_opening is _UNSET:
            self._not_opening = _NOT_OPENING.search(self.lowered) is not None
        return self._not_opening

    @property
    def delivered(self) -> re.Match[str] | None:
        if self._delivered is _UNSET:
            self._delivered = vocab.gated(vocab.DELIVERED, vocab.DELIVERED_GATE, self.lowered)
        return self._delivered

    @property
    def crashed(self) -> bool:
        if self._crashed is _UNSET:
            self._crashed = _crashed(self.lowered)
        return self._crashed

    @property
    def said_ms(self) -> float | None:
        """A latency in the words: "delivered to client c1 in 0.42 ms"."""
        if self._said_ms is _UNSET:
            said = _TEXT_MS.search(self.message) if "ms" in self.message else None  # every match has "ms"
            self._said_ms = float(said.group(1)) if said else None
        return self._said_ms

    @property
    def masked(self) -> str:
        """The message as a LogLine keeps it."""
        if self._masked is _UNSET:
            self._masked = vocab.mask_text(self.message)
        return self._masked

    @property
    def closer(self) -> str:
        """Who closed, by the words: "client", "server" or "unknown"."""
        if self._closer is _UNSET:
            self._closer = _closer_said(self.lowered)
        return self._closer

    @property
    def level_floor(self) -> str:
        """The level the words alone make a line at least ("" for none): see _level_for_text."""
        if self._level_floor is _UNSET:
            self._level_floor = _level_floor(self.message)
        return self._level_floor


_WORDS_SEEN: dict[str, _Words] = {}


def _words_seen(message: str) -> _Words:
    """A JSON logger's message's _Words, from the memo when it has been seen."""
    words = _WORDS_SEEN.get(message)
    if words is None:
        words = _Words(message, message.lower())
        if len(message) <= _MEMO_MAX_CHARS:
            _remember(_WORDS_SEEN, message, words)
    return words


class _Shape(NamedTuple):
    """What a JSON line's keys say, whatever their values: worked out once for each set of keys."""

    message_key: str
    level_key: str
    skip: frozenset[str]  # keys not kept as fields (the message and the level)
    roles: vocab.RoleKeys
    role_names: frozenset[str]  # the roles some key may give a value for
    kept: vocab.KeptPlan
    error_key: bool  # whether any key is one vocab.error_text reads
    quiet: dict[str, bool]  # by message: whether no recogniser can make an event of it (see _quiet)


_SHAPES: dict[tuple[Any, ...], _Shape] = {}
_SHAPE_MAX_KEYS = 64


def _shape_of(record: dict[str, Any], flat: dict[str, Any]) -> _Shape:
    # The top-level keys decide the message and level keys; the flattened ones the rest.
    keys: tuple[Any, ...] = tuple(flat) if flat is record else (tuple(record), tuple(flat))
    shape = _SHAPES.get(keys)
    if shape is None:
        message_key = _first_key(record, vocab.MESSAGE_KEYS)
        level_key = _first_key(record, vocab.LEVEL_KEYS)
        skip = frozenset(k for k in (message_key, level_key, "v") if k)
        roles = vocab.role_keys(flat)
        shape = _Shape(
            message_key,
            level_key,
            skip,
            roles,
            frozenset(role for role, _ in roles),
            vocab.kept_plan(flat, skip),
            any(key in flat for key in vocab.ERROR_NAMES),
            {},
        )
        if len(flat) <= _SHAPE_MAX_KEYS:
            _remember(_SHAPES, keys, shape)
    return shape


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
    shape: _Shape | None = None  # a JSON line's keys, read
    lowered: str = ""  # the message in lower case (worked out here when not given)
    _words: _Words | None = None
    _roles: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.lowered:
            self.lowered = self.message.lower()

    @property
    def words(self) -> _Words:
        """What the message says in the vocabulary's terms, worked out on first use."""
        if self._words is None:
            self._words = _Words(self.message, self.lowered)
        return self._words

    def may_have(self, role: str) -> bool:
        """False when no field of the line can have this role (known from its keys alone)."""
        return self.shape is None or role in self.shape.role_names

    def error_text(self) -> str:
        return vocab.error_text(self.flat) if self.shape is None or self.shape.error_key else ""

    @property
    def roles(self) -> dict[str, Any]:
        """The fields by role (connection, message id, close code …), worked out on first use."""
        if self._roles is None:
            shape = self.shape
            self._roles = vocab.roles(self.flat) if shape is None else vocab.roles_by(self.flat, shape.roles)
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
        return self._explain(line)[0]

    def explain(self, line: str) -> Explanation:
        events, why = self._explain(line)
        return Explanation(events, why)

    def _explain(self, line: str, *, shortcuts: bool = True) -> tuple[list[ev.Event], str]:
        """(events, why): ``parse`` needs no Explanation made for each line. Without ``shortcuts`` (the
        pre-filter and the quiet JSON line) every line goes through the recognisers: the full path the
        fast one is tested against (tests/test_logparse_fastpath.py)."""
        block = line.rstrip("\r\n")
        if not block or block.isspace():
            return [], "blank"
        wall, mono = self.clock()
        try:
            if shortcuts and "\n" not in block and not self.rules:
                if block[0] == "{":
                    chatter = self._chatter(block, wall, mono)
                    if chatter is not None:
                        return chatter
                    record = _decode_record(block)
                    if record is not None:
                        return self._recognise_record(record, wall, mono)
                else:
                    chatter = self._text_chatter(block, wall, mono)
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
            start = text[:200]
            level = _level_said(start, start.lower()) or "info"
            note = f"not decoded ({type(error).__name__}): kept as a plain line"
            log = ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=self.source)
            return [log], note

    # --- the pre-filter: most lines are chatter -------------------------------------------------

    def _chatter(self, block: str, wall: float, mono: float) -> tuple[list[ev.Event], str] | None:
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
        raw_level = head.level
        if raw_level is None:
            raw_level = head.severity
            if raw_level is None:
                raw_level = head.levelname if head.levelname is not None else head.lvl
        seen = (message, raw_level)
        kept = _CHATTER_SEEN.get(seen, _UNSEEN)
        if kept is _UNSEEN:
            kept = _chatter_kept(message, raw_level)
            if len(message) <= _MEMO_MAX_CHARS:
                _remember(_CHATTER_SEEN, seen, kept)
        if kept is None:
            return None
        log = ev.LogLine(wall=wall, mono=mono, level=kept[0], text=kept[1], source=self.source)
        return [log], "no event in its words, below a warning: kept as its message (pre-filter)"

    def _text_chatter(self, block: str, wall: float, mono: float) -> tuple[list[ev.Event], str] | None:
        """The pre-filter for a plain text line: none of the recognisers' words, no level above info."""
        plain = strip_ansi(block)
        lowered = plain.lower()
        if vocab.has_cue(lowered) or "warn" in lowered or "err" in lowered or "crit" in lowered:
            return None
        level = _level_said(plain, lowered) or "info"
        log = ev.LogLine(wall=wall, mono=mono, level=level, text=vocab.mask_text(plain), source=self.source)
        return [log], "no event in its words, below a warning: kept as it is (pre-filter)"

    def _recognise_record(
        self, record: dict[str, Any], wall: float, mono: float
    ) -> tuple[list[ev.Event], str]:
        """A one-line JSON record the pre-filter did not keep. When no recogniser can make an event of a
        line with its keys and message, whatever the values (known once per keys and message), it is
        kept as a log line at once; otherwise it goes through the recognisers."""
        flat, shape, message, level, words = _record_parts(record)
        quiet = shape.quiet.get(message)
        if quiet is None:
            quiet = _quiet(shape, words)
            if len(message) <= _MEMO_MAX_CHARS:
                _remember(shape.quiet, message, quiet)
        if not quiet:
            line = _Line(message, level, message, flat, shape.skip, record, words.crashed, shape=shape,
                         lowered=words.lowered, _words=words)  # fmt: skip
            return self._recognise(line, wall, mono)
        floor = words.level_floor
        log = ev.LogLine(
            wall=wall,
            mono=mono,
            level=at_least(level, floor) if floor else level,
            text=words.masked,
            source=self.source,
            fields=vocab.kept_by(flat, shape.kept) if flat else {},
        )
        return [log], _plain_why_of(words.crashed, level)

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

    def _by_rules(self, line: _Line, wall: float, mono: float) -> tuple[list[ev.Event], str] | None:
        # A rule's regex is searched in a JSON line's message, or in the whole (first) line of text.
        subject = line.message if line.record is not None else line.text.partition("\n")[0]
        for rule in self.rules:
            event = rule.apply(subject, line.record, wall=wall, mono=mono, source=self.source)
            if event is None:
                continue
            out: list[ev.Event] = [event]
            if _is_warning(line.level):
                out.append(self._log(line, wall, mono))
            return out, f"custom rule {rule.name or '(unnamed)'}"
        return None

    # --- vocabulary -----------------------------------------------------------------------------

    def _recognise(self, line: _Line, wall: float, mono: float) -> tuple[list[ev.Event], str]:
        lowered = line.lowered
        if line.source_line:
            return [self._log(line, wall, mono)], "source line of a stack trace: kept, no event"
        if lowered == "connection stats":
            traffic = self._traffic(line, wall, mono)
            if traffic is not None:
                return [traffic], "traffic: 'connection stats'"
        if not line.words.cue:
            return [self._log(line, wall, mono)], _plain_why(line)
        failure = self._failure(line, wall, mono)
        if failure is not None:
            event, phrase = failure
            line.level = at_least(line.level, "error")
            return [event, self._log(line, wall, mono)], f"delivery failed: {phrase!r}"
        if not line.crash:
            for attempt in (self._closed, self._opened, self._delivered):
                found = attempt(line, wall, mono)
                if found is not None:
                    event, why = found
                    out: list[ev.Event] = [event]
                    if _is_warning(line.level):
                        out.append(self._log(line, wall, mono))
                    return out, why
        return [self._log(line, wall, mono)], _plain_why(line)

    def _failure(self, line: _Line, wall: float, mono: float) -> tuple[ev.DeliveryFailed, str] | None:
        words = line.words
        match = words.strong
        if match is None:
            weak = words.weak
            if weak is None and line.flat and words.send:
                # "send" with error "write after end": the weak words may be in the error field
                error = line.error_text().lower()
                weak = vocab.gated(vocab.FAIL_WEAK, vocab.WEAK_GATE, error) if error else None
            if weak is None:
                return None
            if not (words.send or _message_id(line)):
                return None
            match = weak
        message_id = _message_id(line)
        phrase = match.group(0)
        text_id, text_reason = _failure_from_text(line.message)
        reason = text_reason or line.error_text() or _phrase_reason(line.message, match)
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
        match = line.words.close
        if (
            match is None
            and "code" not in line.lowered
            and not (line.may_have("code") and "code" in line.roles)
        ):
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
        match = line.words.open
        if match is None or line.words.not_opening:
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
        match = line.words.delivered
        if match is None:
            return None
        latency = None
        if line.may_have("latency_ms") or line.may_have("latency_s"):
            latency = _latency_ms(line.roles)
        if latency is None:
            latency = line.words.said_ms
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
        if line.text is line.message:  # a JSON line's text is its message: what the words say is known
            words = line.words
            floor = words.level_floor
            level = at_least(line.level, floor) if floor else line.level
            text = words.masked
        else:
            level = _level_for_text(line.level, line.text)
            text = vocab.mask_text(line.text)
        if not line.flat:
            fields: dict[str, str] = {}
        elif line.shape is not None:
            fields = vocab.kept_by(line.flat, line.shape.kept)
        else:
            fields = vocab.kept_fields(line.flat.items(), line.skip)
        return ev.LogLine(
            wall=wall,
            mono=mono,
            level=level,
            text=text,
            source=self.source,
            fields=fields,
        )


# --- building a _Line ---------------------------------------------------------------------------


def _from_record(record: dict[str, Any], continuation: str) -> _Line:
    flat, shape, message, level, words = _record_parts(record)
    text = f"{message}\n{continuation}" if continuation else message
    crash = bool(continuation) or words.crashed
    if continuation:
        level = at_least(level, "error")
    skip = shape.skip
    return _Line(
        message, level, text, flat, skip, record, crash, shape=shape, lowered=words.lowered, _words=words
    )


def _record_parts(record: dict[str, Any]) -> tuple[dict[str, Any], _Shape, str, str, _Words]:
    """A JSON record's fields flattened, what its keys say, its message, its level and its words."""
    flat = vocab.flatten(record)
    shape = _shape_of(record, flat)
    message_key = shape.message_key
    message = record.get(message_key, "") if message_key else ""
    if isinstance(message, dict | list):
        message = ""
    if not message:
        err = record.get("err", record.get("error"))
        if isinstance(err, dict):
            message = err.get("message") or err.get("type") or err.get("name") or ""
    message = strip_ansi(str(message))
    level_key = shape.level_key
    level = normalise_level(record[level_key]) if level_key else "info"
    return flat, shape, message, level, _words_seen(message)


def _quiet(shape: _Shape, words: _Words) -> bool:
    """Whether no recogniser can make an event of a one-line JSON record with these keys and this
    message, whatever its values: _recognise's checks that depend on the words and the keys only."""
    if words.lowered == "connection stats":
        return False  # traffic
    if not words.cue:
        return True
    if words.strong is not None or words.weak is not None or (words.send and shape.error_key):
        return False  # a failure
    if words.crashed:
        return True  # a crash is no open, close or delivery
    roles = shape.role_names
    if words.close is not None or "code" in words.lowered or "code" in roles:
        return False
    if words.open is not None and not words.not_opening:
        return False
    latency = "latency_ms" in roles or "latency_s" in roles or words.said_ms is not None
    return words.delivered is None or not latency


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
    level = normalise_level(flat["level"]) if "level" in flat else None
    if level is None:
        level = _level_said(head, head.lower()) or "info"
    said = ""
    if flat:
        said = next((flat[k] for k in ("msg", "message", "event") if flat.get(k)), "")
    skip = _SKIP_SAID if said else _SKIP_LEVEL
    if crash:
        level = at_least(level, "fatal" if node_crash else "error")
    crash = crash or _crashed(message.lower())
    return _Line(said or message, level, block, flat, skip, crash=crash)


_SKIP_SAID = frozenset({"msg", "message", "event", "level"})
_SKIP_LEVEL = frozenset({"level"})


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
    return _plain_why_of(line.crash, line.level)


def _plain_why_of(crash: bool, level: str) -> str:
    if crash:
        return "crash or stack trace: kept as an error line"
    if _is_warning(level):
        return f"no event in its words; kept ({level})"
    return "no event in its words; kept as a log line"


# --- fields -------------------------------------------------------------------------------------


def _text_of(value: Any) -> str:
    if type(value) is str and "\x1b" not in value:  # most ids: no colour to strip, no conversion
        return value.strip()
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
    if close_words or _close_context(line.message, line.lowered):
        code = _as_close_code(line.flat.get("code"))
        if code is not None:
            return code
    return _text_close_code(line.message, line.lowered)


def _closer(line: _Line) -> str:
    said = line.roles.get("closer")
    if said is not None:
        return _CLOSERS.get(_text_of(said).lower(), "unknown")
    return line.words.closer


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


def _latency_ms(roles: dict[str, Any]) -> float | None:
    """A latency from the fields (``latency_ms``, ``took`` …); the words' is ``_Words.said_ms``."""
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
    return None


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


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


__all__ = ["Explanation", "LogParser", "at_least", "normalise_level", "recognise", "strip_ansi"]
