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

import re

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


def _text_fields() -> dict[type[Event], tuple[str, ...]]:
    """Every str field of every event type: which of them carry outside text is a moving target
    (sources learn new fields), so all are checked; numbers-only events have none and cost nothing."""
    table: dict[type[Event], tuple[str, ...]] = {}
    for cls in EVENT_TYPES:
        names = tuple(f.name for f in msgspec.structs.fields(cls) if f.type is str)
        lists = tuple(f.name for f in msgspec.structs.fields(cls) if f.type == list[str])
        maps = tuple(f.name for f in msgspec.structs.fields(cls) if f.type == dict[str, str])
        if names or lists or maps:
            table[cls] = names + lists + maps
    return table


_FIELDS = _text_fields()
# A log line may carry a folded stack trace: its own line breaks are kept (the log panel joins them).
_KEEP_LINES = {(LogLine, "text"), (ServerExit, "last_lines")}


def clean_event(event: Event) -> Event:
    """The event with every text field made visible; the same object when nothing needed it.

    Applied once where events enter the session, so recordings, feeds and outputs never carry a
    stranger's escape sequence."""
    names = _FIELDS.get(type(event))
    if names is None:
        return event
    changes: dict[str, object] = {}
    for name in names:
        value = getattr(event, name)
        keep = (type(event), name) in _KEEP_LINES
        if isinstance(value, dict):
            if not all(_UNSAFE.search(k) is None and _UNSAFE.search(v) is None for k, v in value.items()):
                changes[name] = {visible(k): visible(v, keep_newlines=keep) for k, v in value.items()}
        elif isinstance(value, str):
            if _UNSAFE.search(value) is not None:
                changes[name] = visible(value, keep_newlines=keep)
        elif isinstance(value, list) and not all(_UNSAFE.search(v) is None for v in value):
            changes[name] = [visible(v, keep_newlines=keep) for v in value]
    return msgspec.structs.replace(event, **changes) if changes else event
