"""Custom log rules from wsmon.toml: a regex or a field match on a log line, and the event it makes.

```toml
[[log.rules]]
regex = 'client (?P<conn>\\S+) dropped: code (?P<code>\\d+)'
event = "conn.close"
fields = { conn = "{conn}", code = "{code}", closed_by = "neither" }
```

A field value is a template: ``{name}`` is a regex group or, on JSON lines, a field of the record
(``{err.type}`` reaches into nested objects); anything else is a literal. A value that is exactly one
placeholder keeps the JSON value's type. Values are coerced to the event field's type ("1006" → 1006).
A rule whose placeholder has nothing to fill it, or whose values do not fit the event, does not apply
to that line, and the built-in recognisers see it instead.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from wsmon.core import events as ev
from wsmon.core.sanitize import shown_key

_RULE_KEYS = ("regex", "match", "event", "fields")
_AUTOMATIC = ("wall", "mono")  # stamped by the parser's clock
_DEFAULTS_TO_SOURCE = ("source", "target")  # filled with the log's target name when a rule leaves them out
_PLACEHOLDER = re.compile(r"^\{([\w.-]+)\}$")
_formatter = string.Formatter()


class RuleError(ValueError):
    """A bad rule in wsmon.toml; the message is one line naming the rule and what is wrong."""


def _fields_of(cls: type[ev.Event]) -> dict[str, msgspec.structs.FieldInfo]:
    return {f.name: f for f in msgspec.structs.fields(cls)}


_EVENT_CLASSES: dict[str, type[ev.Event]] = {tag: cls for cls, tag in ev.TAGS.items()}


def lenient_event(data: Mapping[str, Any]) -> ev.Event:
    """``from_dict`` for values that arrive as text (regex groups, Redis stream fields): each value is
    converted to its field's type first ("1006" → 1006, "true" → True). Raises msgspec.ValidationError."""
    cls = _EVENT_CLASSES.get(str(data.get("type")))
    if cls is None:
        return ev.from_dict(dict(data))  # raises, naming the unknown type
    fields = _fields_of(cls)
    converted: dict[str, Any] = {}
    for name, value in data.items():
        info = fields.get(name)
        if info is not None and isinstance(value, str) and info.type is not str:
            try:
                value = msgspec.convert(value, info.type, strict=False)
            except msgspec.ValidationError as error:
                raise msgspec.ValidationError(f"{error} - at `$.{name}`") from None
        converted[name] = value
    return ev.from_dict(converted)


def _lookup(record: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    if path in record:
        return True, record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


@dataclass(frozen=True)
class _Match:
    path: str
    exact: Any = None
    pattern: re.Pattern[str] | None = None

    def holds(self, record: Mapping[str, Any]) -> bool:
        found, value = _lookup(record, self.path)
        if not found:
            return False
        if self.pattern is not None:
            return self.pattern.search(str(value)) is not None
        return bool(value == self.exact)


@dataclass(frozen=True)
class Rule:
    """One ``[[log.rules]]`` entry, validated."""

    tag: str
    fields: Mapping[str, Any]
    regex: re.Pattern[str] | None = None
    match: tuple[_Match, ...] = ()
    name: str = field(default="", compare=False)

    def apply(
        self, text: str, record: Mapping[str, Any] | None, *, wall: float, mono: float, source: str
    ) -> ev.Event | None:
        """The event this rule makes of a line (its message for JSON lines), or None if it does not apply."""
        if self.match and (record is None or not all(m.holds(record) for m in self.match)):
            return None
        groups: dict[str, Any] = {}
        if self.regex is not None:
            found = self.regex.search(text)
            if found is None:
                return None
            groups = {k: v for k, v in found.groupdict().items() if v is not None}

        def value_of(name: str) -> tuple[bool, Any]:
            if name in groups:
                return True, groups[name]
            if record is not None:
                got = _lookup(record, name)
                if got[0]:
                    return got
            if name == "line":
                return True, text
            return False, None

        data: dict[str, Any] = {"type": self.tag, "wall": wall, "mono": mono}
        for name, template in self.fields.items():
            if not isinstance(template, str) or "{" not in template:
                data[name] = template
                continue
            whole = _PLACEHOLDER.match(template)
            if whole:
                found_it, value = value_of(whole.group(1))
                if not found_it:
                    return None
                data[name] = value
                continue
            parts: list[str] = []
            for literal, placeholder, _spec, _conv in _formatter.parse(template):
                parts.append(literal)
                if placeholder is not None:
                    found_it, value = value_of(placeholder)
                    if not found_it:
                        return None
                    parts.append(str(value))
            data[name] = "".join(parts)
        event_fields = _fields_of(_EVENT_CLASSES[self.tag])
        for name in _DEFAULTS_TO_SOURCE:
            if name in event_fields and name not in data:
                data[name] = source
        try:
            return lenient_event(data)
        except msgspec.ValidationError:
            return None


def load_rules(data: Mapping[str, Any], where: str) -> list[Rule]:
    """The rules of a parsed wsmon.toml (its ``[[log.rules]]``); ``where`` names the file in errors.

    Raises RuleError with a one-line message for the first bad rule.
    """
    log = data.get("log", {})
    if not isinstance(log, Mapping):
        raise RuleError(f"{where} [log]: expected a table")
    entries = log.get("rules", [])
    if not isinstance(entries, list):
        raise RuleError(f"{where} [[log.rules]]: expected an array of tables ([[log.rules]])")
    return [_load_rule(entry, f"{where} [[log.rules]] #{number}") for number, entry in enumerate(entries, 1)]


def _load_rule(entry: Any, name: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise RuleError(f"{name}: expected a table")
    unknown = [key for key in entry if key not in _RULE_KEYS]
    if unknown:
        raise RuleError(f"{name}: unknown key {unknown[0]!r} (expected {', '.join(_RULE_KEYS)})")
    tag = entry.get("event")
    if not isinstance(tag, str) or not tag:
        raise RuleError(f'{name}: missing \'event\' (an event type such as "conn.close" or "delivery.fail")')
    if tag not in _EVENT_CLASSES:
        close = difflib.get_close_matches(tag, list(_EVENT_CLASSES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (see docs/events.md)"
        raise RuleError(f"{name}: unknown event {tag!r}{hint}")
    regex = _compile(entry.get("regex"), name, "regex") if "regex" in entry else None
    match = _load_match(entry.get("match"), name) if "match" in entry else ()
    if regex is None and not match:
        raise RuleError(f"{name}: needs 'regex' or 'match' (or both)")
    fields = entry.get("fields", {})
    if not isinstance(fields, Mapping):
        raise RuleError(f"{name}: 'fields' must be a table of event field = template")
    _check_fields(tag, fields, name)
    return Rule(tag=tag, fields=dict(fields), regex=regex, match=match, name=name)


def _compile(pattern: Any, name: str, key: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{name}: {key} must be a non-empty string")
    try:
        return re.compile(pattern)
    except (re.error, OverflowError) as error:  # OverflowError: a{99999999999}
        raise RuleError(f"{name}: {key} {pattern!r} does not compile: {error}") from None
    except RecursionError:
        raise RuleError(f"{name}: {key} {pattern!r} does not compile: nested too deeply") from None


def _load_match(match: Any, name: str) -> tuple[_Match, ...]:
    if not isinstance(match, Mapping) or not match:
        raise RuleError(f"{name}: 'match' must be a non-empty table, e.g. match = {{ msg = \"queue full\" }}")
    out = []
    for path, want in match.items():
        if isinstance(want, str) and want.startswith("~"):
            out.append(_Match(path, pattern=_compile(want[1:], name, f"match.{shown_key(path)}")))
        elif isinstance(want, str | int | float | bool):
            out.append(_Match(path, exact=want))
        else:
            raise RuleError(f"{name}: match.{shown_key(path)} must be a string, number or boolean")
    return tuple(out)


def _check_fields(tag: str, fields: Mapping[str, Any], name: str) -> None:
    known = _fields_of(_EVENT_CLASSES[tag])
    for field_name, template in fields.items():
        if field_name in _AUTOMATIC:
            raise RuleError(f"{name}: fields.{field_name} is set by wsmon (the time the line was read)")
        info = known.get(field_name)
        if info is None:
            usable = ", ".join(n for n in known if n not in _AUTOMATIC)
            raise RuleError(f"{name}: event {tag!r} has no field {field_name!r} (its fields: {usable})")
        if isinstance(template, str) and "{" in template:
            try:
                placeholders = [p for _, p, _, _ in _formatter.parse(template) if p is not None]
            except ValueError as error:
                raise RuleError(f"{name}: fields.{field_name} {template!r}: {error}") from None
            if any(not p for p in placeholders):
                raise RuleError(f"{name}: fields.{field_name} {template!r}: empty placeholder {{}}")
            continue
        try:
            msgspec.convert(template, info.type, strict=False)
        except msgspec.ValidationError as error:
            raise RuleError(f"{name}: fields.{field_name} = {template!r}: {error}") from None
    missing = [
        n
        for n, info in known.items()
        if info.required and n not in fields and n not in (*_AUTOMATIC, *_DEFAULTS_TO_SOURCE)
    ]
    if missing:
        raise RuleError(f"{name}: event {tag!r} needs fields.{missing[0]}")


__all__ = ["Rule", "RuleError", "lenient_event", "load_rules"]
