"""What depends only on a message, a level or a logger's keys, worked out once and remembered.

A logger writes the same few messages, levels and field names line after line (the ids are in the
fields), so the pre-filter's verdict, the vocabulary's matches (``_Words``) and the roles of the
fields (``_Shape``) are remembered by the text or keys they depend on. Each memo is bounded: when a
logger puts ids in its messages it is emptied and starts again; texts longer than _MEMO_MAX_CHARS are
never remembered. ``_forget`` empties them all (for tests: the full path with nothing remembered).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from wsmon.core.events import Closer
from wsmon.sources.logs import scan
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.text import (
    _LEVEL_RANK,
    _LEVELS_SEEN,
    _NOT_OPENING,
    _TEXT_MS,
    _closer_said,
    _crashed,
    _level_floor,
    normalise_level,
)
from wsmon.sources.logs.vocabulary import strip_ansi

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
    for memo in (_CHATTER_SEEN, _LEVELS_SEEN, _WORDS_SEEN, _SHAPES, _KV_SHAPES, vocab._RUN_CUES):
        memo.clear()
    for memo in (scan._WORD_FLAGS, scan._LINES):
        memo.clear()


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


class _Words:
    """What a message says in the vocabulary's terms: each pattern is searched once, when first asked
    for, and a JSON line's _Words are shared by every line with the same message."""

    __slots__ = ("_close", "_closer", "_crashed", "_delivered", "_level_floor", "_masked", "_not_opening",
                 "_open", "_said_ms", "_send", "_strong", "_weak", "cue", "lowered", "message",
                 "scanned")  # fmt: skip

    def __init__(self, message: str, lowered: str, scanned: int | None = None) -> None:
        self.message = message
        self.lowered = lowered
        self.scanned = scanned  # the message's flags from ``scan``, when it was scanned
        self.cue = vocab.has_cue(lowered) if scanned is None else bool(scanned & scan.CUE)
        self._strong = self._weak = self._send = self._close = self._open = _UNSET
        self._not_opening = self._delivered = self._crashed = self._said_ms = _UNSET
        self._masked = self._level_floor = _UNSET
        self._closer: Closer = _UNSET

    def _gated(self, pattern: re.Pattern[str], gate: tuple[str, ...], bit: int) -> re.Match[str] | None:
        """``vocab.gated``; for a scanned message its gate is read from the scan's flags."""
        if self.scanned is None:
            return vocab.gated(pattern, gate, self.lowered)
        return pattern.search(self.lowered) if scan.gate_open(self.scanned, bit, self.lowered) else None

    @property
    def strong(self) -> re.Match[str] | None:
        if self._strong is _UNSET:
            self._strong = self._gated(vocab.FAIL_STRONG, vocab.STRONG_GATE, scan.STRONG)
        return self._strong

    @property
    def weak(self) -> re.Match[str] | None:
        if self._weak is _UNSET:
            self._weak = self._gated(vocab.FAIL_WEAK, vocab.WEAK_GATE, scan.WEAK)
        return self._weak

    @property
    def send(self) -> bool:
        if self._send is _UNSET:
            self._send = vocab.SEND_CONTEXT.search(self.lowered) is not None
        return self._send

    @property
    def close(self) -> re.Match[str] | None:
        if self._close is _UNSET:
            self._close = self._gated(vocab.CLOSE, vocab.CLOSE_GATE, scan.CLOSING)
        return self._close

    @property
    def open(self) -> re.Match[str] | None:
        if self._open is _UNSET:
            self._open = self._gated(vocab.OPEN, vocab.OPEN_GATE, scan.OPENING)
        return self._open

    @property
    def not_opening(self) -> bool:
        if self._not_opening is _UNSET:
            self._not_opening = _NOT_OPENING.search(self.lowered) is not None
        return self._not_opening

    @property
    def delivered(self) -> re.Match[str] | None:
        if self._delivered is _UNSET:
            self._delivered = self._gated(vocab.DELIVERED, vocab.DELIVERED_GATE, scan.DELIVERED)
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
    def closer(self) -> Closer:
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


def _words_seen(message: str, lowered: str = "", scanned: int | None = None) -> _Words:
    """A message's _Words, from the memo when it has been seen. ``lowered``: the message in lower case,
    when known; ``scanned``: its flags from ``scan``, when it was scanned."""
    words = _WORDS_SEEN.get(message)
    if words is None:
        words = _Words(message, lowered or message.lower(), scanned)
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


_KV_SHAPES: dict[tuple[tuple[str, ...], frozenset[str]], _Shape] = {}


def _kv_shape(flat: dict[str, str], skip: frozenset[str]) -> _Shape:
    """What a key=value text line's keys say (its message and level keys are ``skip``): what the
    recognisers would work out from its keys line after line (roles, fields kept), worked out once."""
    keys = (tuple(flat), skip)
    shape = _KV_SHAPES.get(keys)
    if shape is None:
        roles = vocab.role_keys(flat)
        shape = _Shape(
            "",
            "",
            skip,
            roles,
            frozenset(role for role, _ in roles),
            vocab.kept_plan(flat, skip),
            any(key in flat for key in vocab.ERROR_NAMES),
            {},
        )
        _remember(_KV_SHAPES, keys, shape)  # key_values reads at most MAX_FIELDS pairs
    return shape


def _quiet(shape: _Shape, words: _Words) -> bool:
    """Whether no recogniser can make an event of a one-line JSON record with these keys and this
    message, whatever its values: LogParser._recognise's checks that depend on the words and keys only."""
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
