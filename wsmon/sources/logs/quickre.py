"""Regexes whose search skips, in C, the positions where no match can start.

Python's regex engine tries a pattern at every position of the text; when the pattern starts with a
literal or a set of characters it first skips to the next position holding one, but a pattern that
starts with ``\\b`` or an alternation of phrases is tried everywhere, at a cost of the whole line's
length. ``quick`` puts a lookahead of the characters a match can start with in front of a pattern
(worked out from the parsed pattern itself, never by hand): the same matches, found two or three times
faster in a line that holds the words only here and there. A pattern whose first character cannot be
told (an empty match, ``.``, a class like ``\\w``, a case-insensitive pattern) is compiled as it is.
Pure, no I/O.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# The standard library's own parser of patterns and the names of its parse tree's nodes (no stubs ship
# for them, so they are imported by name); the same parser compiles every pattern.
# A Python whose `re` is laid out otherwise gets plain patterns (slower, the same matches), never an
# import error: these modules are private.
try:
    _parser: Any = importlib.import_module("re._parser")
    c: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - CPython 3.11-3.14 have both
    _parser = c = None

_Firsts = tuple[frozenset[int] | None, bool]  # (characters a match can start with, None: any; nullable)


def quick(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``, with a lookahead of its first characters when they can be told."""
    firsts: frozenset[int] | None = None
    if _parser is not None and not flags & (re.IGNORECASE | re.VERBOSE):
        try:
            items = list(_parser.parse(pattern, flags))
            firsts, nullable = _firsts(items)
        except Exception:  # a parse tree this code does not know: the plain pattern
            firsts, nullable = None, True
        if nullable or _anchored(items):
            firsts = None  # an anchored pattern is tried at its anchor alone already
    if not firsts:
        return re.compile(pattern, flags)
    chars = "".join(re.escape(chr(code)) for code in sorted(firsts))
    return re.compile(f"(?=[{chars}])(?:{pattern})", flags)


def _anchored(items: list[tuple[Any, Any]]) -> bool:
    return bool(items) and items[0][0] is c.AT and items[0][1] in (c.AT_BEGINNING, c.AT_BEGINNING_STRING)


def _firsts(items: list[tuple[Any, Any]]) -> _Firsts:
    """The first characters of a sequence of parsed items, and whether it can match the empty string."""
    found: set[int] = set()
    for op, arg in items:
        item, nullable = _first_of(op, arg)
        if item is None:
            return None, False
        found |= item
        if not nullable:
            return frozenset(found), False
    return frozenset(found), True


def _first_of(op: Any, arg: Any) -> _Firsts:
    if op is c.LITERAL:
        return frozenset({arg}), False
    if op is c.IN:
        codes: set[int] = set()
        for kind, value in arg:
            if kind is c.LITERAL:
                codes.add(value)
            elif kind is c.RANGE and value[1] - value[0] < 256:
                codes.update(range(value[0], value[1] + 1))
            else:  # a negated set, a category (\w, \s ...), a wide range: any character
                return None, False
        return frozenset(codes), False
    if op is c.AT or op is c.ASSERT or op is c.ASSERT_NOT:
        return frozenset(), True  # zero-width: the first character comes after it
    if op is c.SUBPATTERN:
        return _firsts(list(arg[-1]))
    if op is c.BRANCH:
        found: set[int] = set()
        nullable = False
        for branch in arg[1]:
            item, empty = _firsts(list(branch))
            if item is None:
                return None, False
            found |= item
            nullable = nullable or empty
        return frozenset(found), nullable
    if op is c.MAX_REPEAT or op is c.MIN_REPEAT or op is c.POSSESSIVE_REPEAT:
        low, _, body = arg
        item, empty = _firsts(list(body))
        return item, empty or low == 0
    return None, False  # ANY, NOT_LITERAL, GROUPREF, CATEGORY ...: not told
