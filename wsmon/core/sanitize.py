"""Text from outside never drives the operator's terminal.

Log lines, close reasons, ack fields and recordings handed over after an incident are written by
strangers. A terminal obeys escape sequences wherever they appear, so an OSC 52 in a close reason
could write the operator's clipboard and a dangling ESC could swallow later output. Every text from
outside is passed through :func:`visible` where it enters, and every renderer passes it through again
(cheap when there is nothing to replace), so recordings written before this rule are safe too.

Control characters are not dropped but shown, one placeholder a character, so a reader sees that
a line carried an ESC and columns and styled spans keep their offsets.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import NamedTuple

import msgspec

from wsmon.core.events import EVENT_TYPES, Event, LogLine, ServerExit

# C0 controls except tab, DEL, and the C1 controls (0x80–0x9F: 0x9B is a one-byte CSI on some
# terminals). Unicode's bidirectional overrides can make a line read differently from what it holds.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _placeholder(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC, ␊ for LF, ␀ for NUL
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"  # �: C1 controls and bidi overrides have no picture of their own


_TABLE = {code: _placeholder(code) for code in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0)]}
_TABLE.update({code: _placeholder(code) for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_TABLE_KEEPING_LINES = {code: text for code, text in _TABLE.items() if code != 0x0A}


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """The text with every control character replaced by a visible placeholder; tab is kept, and
    newline too when asked (a renderer's own line breaks in a multi-line panel)."""
    if _UNSAFE.search(text) is None:
        return text
    return text.translate(_TABLE_KEEPING_LINES if keep_newlines else _TABLE)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def shown_key(key: object) -> str:
    """A key read from a config file, for an error message: as written when TOML could write it bare,
    else quoted with its escapes shown, so a key holding a line break or an ESC keeps the message to
    one harmless line."""
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else repr(text)


def is_visible(text: str) -> bool:
    """Whether the text holds nothing a terminal would act on (tab aside)."""
    return _UNSAFE.search(text) is None


class _TextFields(NamedTuple):
    """Where an event type keeps text: str fields, lists of str, and str → str maps."""

    strings: tuple[str, ...]
    lists: tuple[str, ...]
    maps: tuple[str, ...]


def _is_clean_check(shape: _TextFields) -> Callable[[Event], bool]:
    """One search over all of an event's text decides the common case (nothing to clean); this runs
    for every event a session sees, so the common shapes get a check with no Python loop."""
    search = _UNSAFE.search
    if not shape.lists and not shape.maps:
        if len(shape.strings) == 1:
            text = operator.attrgetter(shape.strings[0])
            return lambda event: search(text(event)) is None
        texts = operator.attrgetter(*shape.strings)
        return lambda event: search("".join(texts(event))) is None

    def is_clean(event: Event) -> bool:
        parts = [getattr(event, name) for name in shape.strings]
        for name in shape.lists:
            parts.extend(getattr(event, name))
        for name in shape.maps:
            mapping = getattr(event, name)
            parts.extend(mapping)
            parts.extend(mapping.values())
        return search("".join(parts)) is None

    return is_clean


def _text_fields() -> dict[type[Event], _TextFields]:
    """Every text field of every event type: which of them carry outside text is a moving target
    (sources learn new fields), so all are checked; numbers-only events have none and cost nothing."""
    table: dict[type[Event], _TextFields] = {}
    for cls in EVENT_TYPES:
        fields = msgspec.structs.fields(cls)
        shape = _TextFields(
            tuple(f.name for f in fields if f.type is str),
            tuple(f.name for f in fields if f.type == list[str]),
            tuple(f.name for f in fields if f.type == dict[str, str]),
        )
        if shape.strings or shape.lists or shape.maps:
            table[cls] = shape
    return table


_FIELDS = _text_fields()
_IS_CLEAN = {cls: _is_clean_check(shape) for cls, shape in _FIELDS.items()}
# A log line may carry a folded stack trace: its own line breaks are kept (the log panel joins them).
_KEEP_LINES = {(LogLine, "text"), (ServerExit, "last_lines")}


def clean_event(event: Event) -> Event:
    """The event with every text field made visible; the same object when nothing needed it.

    Applied once where events enter the session, so recordings, feeds and outputs never carry a
    stranger's escape sequence."""
    is_clean = _IS_CLEAN.get(type(event))
    if is_clean is None or is_clean(event):
        return event
    shape = _FIELDS[type(event)]
    changes: dict[str, object] = {}
    for name in shape.strings:
        value = getattr(event, name)
        if _UNSAFE.search(value) is not None:
            changes[name] = visible(value, keep_newlines=(type(event), name) in _KEEP_LINES)
    for name in shape.lists:
        keep = (type(event), name) in _KEEP_LINES
        changes[name] = [visible(v, keep_newlines=keep) for v in getattr(event, name)]
    for name in shape.maps:
        keep = (type(event), name) in _KEEP_LINES
        changes[name] = {visible(k): visible(v, keep_newlines=keep) for k, v in getattr(event, name).items()}
    return msgspec.structs.replace(event, **changes)
