"""A raw line (or folded block) decoded into a ``_Line`` ready for recognition.

Its format is told by its content: a JSON record (winston, pino, bunyan, structlog, slog, zap …);
text ending in a JSON object (winston's simple format); key=value text (logfmt, structlog's console
renderer); plain text; a crash's output (Node's source line and caret, Python's traceback), whose
error line becomes the message. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.memos import _kv_shape, _Shape, _shape_of, _Words, _words_seen
from wsmon.sources.logs.scan import CRASHING, SECRET, Scanned, gate_open
from wsmon.sources.logs.text import (
    _CARET,
    _ERROR_LINE,
    _NODE_LOCATION,
    _PY_TRACEBACK,
    _SOURCE_LINE,
    _crashed,
    _level_said,
    at_least,
    normalise_level,
)
from wsmon.sources.logs.vocabulary import strip_ansi

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
    shape: _Shape | None = None  # the keys of a JSON line or a key=value one, read
    lowered: str = ""  # the message in lower case (worked out here when not given)
    maskless: bool = False  # known to hold nothing masking would change (its text is kept as it is)
    _words: _Words | None = None
    _roles: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.lowered:
            self.lowered = self.message.lower()

    @property
    def words(self) -> _Words:
        """What the message says in the vocabulary's terms, worked out on first use."""
        if self._words is None:
            self._words = _words_seen(self.message)  # lowered is message.lower() (__post_init__)
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


def _from_text(block: str, scanned: Scanned | None = None, lowered: str = "") -> _Line:
    """``scanned``: what ``scan.scan`` found in a one-line ASCII block, whose lower case is ``lowered``
    (its level, cues and secret words, then not searched for again)."""
    if scanned is not None and "=" in block:
        line = _from_logfmt(block, scanned, lowered)
        if line is not None:
            return line
    head, _, continuation = block.partition("\n")
    # a source line starts with a space or a caret (the pattern tries nothing else)
    if (head[:1].isspace() or head[:1] == "^") and _SOURCE_LINE.match(head) and not continuation:
        return _Line(head, "info", block, {}, source_line=True)
    message = head
    crash = bool(continuation)
    node_crash = bool(continuation) and bool(_NODE_LOCATION.match(head))
    if node_crash:
        message = _node_crash_message(block) or head
    elif head.startswith(_PY_TRACEBACK):
        message = _python_exception_line(block) or head
    flat: dict[str, Any] = {}
    pairs = False
    tail = _json_tail(message)
    if tail is not None:  # "info: Client connected {"connectionId":"c1"}": winston's simple format
        message, flat = message[: len(message) - len(tail[0])].rstrip(), tail[1]
    elif "=" in message:
        flat = vocab.key_values(message)
        pairs = bool(flat)
        if "msg" not in flat and "message" not in flat and "event" not in flat:
            first = vocab.first_key_value(message)
            if first > 0:
                message = message[:first].rstrip()  # structlog's console renderer: the words, then key=value
    level = normalise_level(flat["level"]) if "level" in flat else None
    if level is None:
        level = (scanned[1] if scanned is not None else _level_said(head, head.lower())) or "info"
    said = ""
    if flat:
        for key in _SAID_KEYS:
            said = flat.get(key) or ""
            if said:
                break
    skip = _SKIP_SAID if said else _SKIP_LEVEL
    shape = _kv_shape(flat, skip) if pairs else None  # the keys' roles, worked out once per keys
    if crash:
        level = at_least(level, "fatal" if node_crash else "error")
    if scanned is None:
        crash = crash or _crashed(message.lower())
        return _Line(said or message, level, block, flat, skip, crash=crash, shape=shape)
    # no secret word, no URL and no colour code left in the line: masking would leave it and every
    # part of it (a field's value) as they are
    maskless = not scanned[0] & SECRET and "://" not in block and "\x1b" not in block
    if said or message is not head:
        crash = _crashed(message.lower())
        return _Line(said or message, level, block, flat, skip, crash=crash, shape=shape, maskless=maskless)
    words = _words_seen(message, lowered, scanned[0])  # the words are the line's
    return _Line(message, level, block, flat, skip, crash=words.crashed, shape=shape, lowered=lowered,
                 _words=words, maskless=maskless)  # fmt: skip


def _from_logfmt(block: str, scanned: Scanned, lowered: str) -> _Line | None:
    """``_from_text`` of the commonest key=value line, worked out with fewer steps: one scanned line
    (``scanned``, ``lowered``: see ``_from_text``) whose pairs say its message (``msg=``, ``message=``
    or ``event=``), not a source line, a traceback's head or a line ending in a JSON object. None for
    any other line (``_from_text`` reads it then). tests/test_logparse_kvfast.py compares the two."""
    if "msg=" not in block and "message=" not in block and "event=" not in block:
        return None  # no pair can say the message
    if block[-1] == "}" or block[0].isspace() or block[0] == "^" or block.startswith(_PY_TRACEBACK):
        return None
    flat = vocab.key_values(block)
    said = flat.get("msg") or flat.get("message") or flat.get("event")
    if not said:
        return None
    level = normalise_level(flat["level"]) if "level" in flat else None
    if level is None:
        level = scanned[1] or "info"
    maskless = not scanned[0] & SECRET and "://" not in block and "\x1b" not in block
    crash = gate_open(scanned[0], CRASHING, lowered) and _crashed(lowered)  # its words known from the scan
    shape = _kv_shape(flat, _SKIP_SAID)
    return _Line(said, level, block, flat, _SKIP_SAID, crash=crash, shape=shape, maskless=maskless)


_SAID_KEYS = ("msg", "message", "event")
_SKIP_SAID = frozenset({*_SAID_KEYS, "level"})
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
