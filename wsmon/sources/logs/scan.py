"""One pass over a plain text line's words for the pre-filter: its cues, its level, its secrets.

The pre-filter must know of a text line whether a recogniser may want it (a cue word of the vocabulary,
or a word of a warning or worse), the level it names, and whether masking could change it. Each is a
search of the whole line when done alone; here the line is cut into its words once (one
``bytes.translate`` and ``split``, in C) and each word's verdict on all three is remembered: a logger's
words repeat line after line, and its ids are digits, which are all made ``0`` here.

Only for ASCII text: a word is then exactly a run of ``\\w`` (letters, digits, ``_``), so a level word is
whole where ``\\b`` says so, and every cue or secret word, being letters only, lies within one word.
Pure, no I/O.
"""

from __future__ import annotations

import re

from wsmon.core.redact import CUE_ACROSS, CUE_WORDS
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.text import _LEVEL_WORDS_ALL, normalise_level
from wsmon.sources.logs.vocabulary import CUES

CUE = 1  # a word of the vocabulary (vocab.has_cue)
ALARM = 2  # "warn", "err", "crit": a line that may be a warning or worse
SECRET = 4  # a word masking looks for (redact.CUE_WORDS, CUE_ACROSS)
LEVEL = 8  # a level word, whole
# The recognisers' gates (vocab.*_GATE: a pattern is searched only where one of its words is): a word
# holding one of a gate's words of letters sets its bit; the gate's other words (with a space: "new ")
# are looked for in the line by ``gate_open``, only when the bit is not set.
STRONG, WEAK, CLOSING, OPENING, DELIVERED, CRASHING = 16, 32, 64, 128, 256, 512
GATES = {
    STRONG: vocab.STRONG_GATE,
    WEAK: vocab.WEAK_GATE,
    CLOSING: vocab.CLOSE_GATE,
    OPENING: vocab.OPEN_GATE,
    DELIVERED: vocab.DELIVERED_GATE,
    CRASHING: vocab.CRASH_GATE,
}
_WORD_GATES = tuple(
    (bit, tuple(word.encode() for word in words if re.fullmatch("[a-z]+", word)))
    for bit, words in GATES.items()
)
_SPACED_GATES = {
    bit: tuple(word for word in words if not re.fullmatch("[a-z]+", word)) for bit, words in GATES.items()
}
Scanned = tuple[int, str | None]  # (flags, level): what ``scan`` finds

_SPACED_CUES = tuple(cue for cue in CUES if not re.fullmatch("[a-z]+", cue))
_LETTER_CUES = re.compile("|".join(re.escape(c) for c in CUES if re.fullmatch("[a-z]+", c)).encode())
_SECRET_WORDS = re.compile("|".join(CUE_WORDS).encode())
_ALARMS = (b"warn", b"err", b"crit")
_LEVEL_OF: dict[bytes, str] = {word.encode(): normalise_level(word) for word in _LEVEL_WORDS_ALL}
# Lower-case ASCII into words: a-z and _ kept, every digit a 0, everything else a space.
_WORD_BYTES = bytes(
    c if 0x61 <= c <= 0x7A or c == 0x5F else 0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256)
)
_WORD_FLAGS: dict[bytes, int] = {}
# A line's words with its digits made 0s: a logger writes a few such lines over and over (its ids and
# times are numbers), so each one's verdict is remembered too.
_LINES: dict[bytes, Scanned] = {}
_LINE_MAX_BYTES = 512
_WORD_MAX_BYTES = 64  # longer words (a base64 blob) are searched, never remembered
_MEMO_ENTRIES = 4096


def _flags_of(word: bytes) -> int:
    flags = CUE if _LETTER_CUES.search(word) else 0
    if any(alarm in word for alarm in _ALARMS):
        flags |= ALARM
    if _SECRET_WORDS.search(word):
        flags |= SECRET
    if word in _LEVEL_OF:
        flags |= LEVEL
    for bit, words in _WORD_GATES:
        for gate in words:
            if gate in word:
                flags |= bit
                break
    return flags


def gate_open(flags: int, bit: int, lowered: str) -> bool:
    """Whether one of the gate ``bit``'s words is in a scanned line (``flags``, its lower case): what
    ``vocab.gated`` tests before it searches."""
    if flags & bit:
        return True
    for word in _SPACED_GATES[bit]:  # noqa: SIM110 - a loop is faster than any() over a generator
        if word in lowered:
            return True
    return False


def scan(lowered: str) -> Scanned:
    """(flags, level) of a lower-cased ASCII text line: the flags of all its words together (a spaced
    cue such as "no such" counts as CUE), and the level its first level word names, normalised (None
    when it names none): what ``text._level_said`` finds."""
    words = lowered.encode("ascii").translate(_WORD_BYTES)
    seen = _LINES.get(words)
    if seen is None:
        seen = _scan_words(words)
        if len(words) <= _LINE_MAX_BYTES:
            if len(_LINES) >= _MEMO_ENTRIES:
                _LINES.clear()
            _LINES[words] = seen
    flags = seen[0]
    for cue in _SPACED_CUES:  # spaces and punctuation are one to the words: looked for in the line
        if cue in lowered:
            flags |= CUE
    for cue in CUE_ACROSS:
        if cue in lowered:
            flags |= SECRET
    return seen if flags == seen[0] else (flags, seen[1])


def _scan_words(words: bytes) -> Scanned:
    found = 0
    level: str | None = None
    memo = _WORD_FLAGS
    for word in words.split():
        flags = memo.get(word)
        if flags is None:
            flags = _flags_of(word)
            if len(word) <= _WORD_MAX_BYTES:
                if len(memo) >= _MEMO_ENTRIES:
                    memo.clear()
                memo[word] = flags
        if flags:
            if flags & LEVEL and level is None:
                level = _LEVEL_OF[word]
            found |= flags
    return found, level
