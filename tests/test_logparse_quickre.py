"""``quickre.quick``: a pattern with a lookahead of its first characters finds exactly what it finds alone.

Every pattern of the recognisers compiled with ``quick`` is checked against the same pattern compiled
plainly: the first match (``search``), every match (``finditer``) and a match at each position
(``match``), spans and groups, over random text built from the vocabulary's words and over the
benchmark's lines.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmon.sources.logs import text as free_text
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.quickre import quick

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

QUICKENED = {
    f"{module.__name__}.{name}": pattern
    for module in (vocab, free_text)
    for name, pattern in vars(module).items()
    if isinstance(pattern, re.Pattern) and str(pattern.pattern).startswith("(?=[")
}
PIECES = (
    *vocab.CUES, *vocab.STRONG_GATE, *vocab.WEAK_GATE, *vocab.CLOSE_GATE, *vocab.OPEN_GATE,
    *vocab.DELIVERED_GATE, *free_text._LEVEL_WORDS_ALL, "message", "msg_", "msg-", "id", "to", "by the",
    "server", "client", "peer", "remote", "kicked", "evicted", "from", "in", "took", "after", "latency:",
    "ms", "code", "1006", "(1000)", "10.0.0.7:5678", "[::1]:80", "c-17", "3.5", " ", "  ", "_", "-", ":",
    "=", "#", '"', "'", ".", "\n", "x", "0",
)  # fmt: skip


def plain(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern as it was before ``quick`` put its lookahead in front of it."""
    source = pattern.pattern
    return re.compile(source[source.index("])(?:") + 5 : -1], pattern.flags)


def assert_same_matches(text: str) -> None:
    for name, fast in QUICKENED.items():
        slow = plain(fast)
        for found, expected in ((fast.search(text), slow.search(text)),):
            assert (found and (found.span(), found.groups())) == (
                expected and (expected.span(), expected.groups())
            ), (name, text)
        assert [(m.span(), m.groups()) for m in fast.finditer(text)] == [
            (m.span(), m.groups()) for m in slow.finditer(text)
        ], (name, text)
        for at in range(len(text)):
            one, other = fast.match(text, at), slow.match(text, at)
            assert (one and one.span()) == (other and other.span()), (name, text, at)


def test_the_recognisers_patterns_are_quickened() -> None:
    assert len(QUICKENED) >= 12, sorted(QUICKENED)


@settings(max_examples=1500)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=14).map(" ".join))
def test_a_quickened_pattern_matches_what_the_pattern_matches(text: str) -> None:
    assert_same_matches(text)
    assert_same_matches(text.upper())


def test_a_quickened_pattern_matches_what_the_pattern_matches_on_the_benchmarks_lines() -> None:
    import bench_logparse

    for name in bench_logparse.MIXES:
        for line in bench_logparse.mix(name, 300):
            assert_same_matches(line.lower())


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [
        (r"^\s+throw", 0),  # anchored: tried at its anchor alone already
        (r"a*", 0),  # can match the empty string anywhere
        (r"\w+=", 0),  # starts with a class of letters: not told
        (r"timed out", re.IGNORECASE),
        (r".x", 0),
    ],
)
def test_a_pattern_whose_first_characters_cannot_be_told_stays_as_it_is(pattern: str, flags: int) -> None:
    assert quick(pattern, flags).pattern == pattern


def test_the_first_characters_cover_optional_parts_and_branches() -> None:
    found = quick(r"\b(?:re)?connected\b|(?:x|y)?z[0-2]")
    assert found.pattern.startswith("(?=[0-2]") is False
    lookahead = found.pattern[: found.pattern.index("])") + 1]
    assert set(re.findall(r"[a-z]", lookahead)) == {"r", "c", "x", "y", "z"}


# key=value text: the pairs as the single pattern with a lookbehind found them, before it was split in two
OLD_KV = re.compile(r"""(?:^|(?<=\s))([A-Za-z_@][\w.@-]*)=("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"']\S*)""")
KV_PIECES = (
    "a=1", "key=value", "msg=", '"', "'", "\\", '\\"', "\\'", "=", " ", "  ", "\t", "\n", "\u00a0", "\x1c",
    "x.y@z-w=", "@t=", "_k=", "1k=", "é=", "k=é", 'm="a b"', "e='c d'", 'q="x\\"y"', "level=info",
    "time=2026-12-02T03:00:00Z", "c-17", "=x", "k==v",
)  # fmt: skip


def old_key_values(text: str) -> tuple[dict[str, str], int]:
    out: dict[str, str] = {}
    for key, value in OLD_KV.findall(text):
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\'", "'")
        out[key] = value
        if len(out) >= vocab.MAX_FIELDS:
            break
    first = OLD_KV.search(text)
    return out, first.start() if first else -1


@settings(max_examples=3000)
@given(st.lists(st.one_of(st.sampled_from(KV_PIECES), st.text(max_size=3)), max_size=16).map("".join))
def test_key_values_finds_the_pairs_the_one_pattern_found(text: str) -> None:
    expected, first = old_key_values(text)
    assert list(vocab.key_values(text).items()) == list(expected.items()), text
    assert vocab.first_key_value(text) == first, text


def test_key_values_finds_the_pairs_the_one_pattern_found_in_the_benchmarks_lines() -> None:
    import bench_logparse

    for line in bench_logparse.mix("logfmt", 2_000) + bench_logparse.mix("text", 500):
        assert list(vocab.key_values(line).items()) == list(old_key_values(line)[0].items()), line
        assert vocab.first_key_value(line) == old_key_values(line)[1], line


VALUES = ("v", '"a b"', "'c'", 'x\\"y', '"q\\"r"')


def test_key_values_keeps_the_cap_and_the_last_value_of_a_key_as_the_one_pattern_did() -> None:
    rng = random.Random(9)
    for count in (31, 32, 33, 40, 64):
        for _ in range(50):
            line = " ".join(f"k{rng.randrange(count)}={rng.choice(VALUES)}" for _ in range(count))
            assert list(vocab.key_values(line).items()) == list(old_key_values(line)[0].items()), line
