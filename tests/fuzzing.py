"""Shared pieces of the fuzz tests (tests/test_fuzz_*.py)."""

from __future__ import annotations

import re

from hypothesis import settings

# What no rendered text may hold: ESC and every other C0 control but newline and tab, and the C1
# controls (0x9B is a one-byte CSI on some terminals).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x80-\x9f]")


def examples(share: float) -> int:
    """A share of the active profile's examples (ci: a few hundred, long: thousands), for a property
    whose examples cost more than most."""
    return max(10, int(settings.default.max_examples * share))


def unsafe_characters(text: str) -> list[str]:
    """The control characters in ``text`` that a terminal could act on, for an assertion message."""
    return sorted({hex(ord(found)) for found in _UNSAFE.findall(text)})


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message and "\r" not in message
