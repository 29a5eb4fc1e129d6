"""The key=value shortcuts read what the general path reads.

The shortcuts (issue 13): ``vocab.key_values`` reads a line with no backslash with a pattern whose
groups hold a quoted value's text without its quotes (no unquoting step); ``lines._from_logfmt``
makes a one-line key=value line whose pairs say its message ready with fewer steps than
``_from_text``, its crash words read from the scan's flags; and ``parser._quiet_pairs`` keeps a line
no recogniser can make an event of, known by its keys and message, without the recognisers. Each is
compared with what it replaces: the pairs read one by one and unquoted after (``_key_values_escaped``),
and the full path of the parser (no pre-filter, no memo, ``_from_text``'s general steps, every
recogniser), on lines drawn from the characters, words and keys that decide the parse.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_logparse_fastpath import KEYS, PHRASES, WORDS, assert_same
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.lines import _from_logfmt

# What a pair is made of, and what can break one: quotes, escapes, spaces, tabs, '=' and '}'.
PIECES = (
    "k",
    "msg",
    "event",
    "level",
    "a.b",
    "@t",
    "_x",
    "=",
    '"',
    "'",
    "\\",
    " ",
    "\t",
    "}",
    "{",
    "x y",
    "1",
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_the_pairs_read_at_once_are_those_read_one_by_one(text: str) -> None:
    fast, slow = vocab.key_values(text), vocab._key_values_escaped(text)
    assert fast == slow
    assert list(fast) == list(slow)  # the same order: a repeated key keeps its first place


def test_the_pairs_read_at_once_are_those_read_one_by_one_on_many_pairs() -> None:
    """Past the cap on fields, with quoted values, empty ones and repeated keys."""
    rng = random.Random(7)
    values = ('""', "''", '"a b"', "'c d'", "v", "1006", '"x=y z"', "'it''s'", "=", '"a', "b'")
    for _ in range(3_000):
        pairs = [
            f"{rng.choice(KEYS)}={rng.choice(values)}" for _ in range(rng.randint(0, vocab.MAX_FIELDS + 5))
        ]
        text = rng.choice(("", "words then ")) + " ".join(pairs)
        fast, slow = vocab.key_values(text), vocab._key_values_escaped(text)
        assert fast == slow and list(fast) == list(slow), text


def _logfmt_lines(rng: random.Random, count: int) -> list[str]:
    """logfmt and structlog's key-value renderer: a message key, a level perhaps, a connection, a code,
    a latency, an error; quoted and bare values, some empty, some escaped, some ending in '}'."""
    messages = [" ".join(rng.choices(WORDS, k=rng.randint(1, 3))) for _ in range(80)] + list(PHRASES) * 4
    values = (
        "c1",
        "c2",
        "1006",
        "1000",
        "12",
        "4.5",
        "x y",
        "",
        "write after end",
        "msg_3",
        "{}",
        'a \\"b\\"',
    )
    lines = []
    for _ in range(count):
        quote = rng.choice(('"', "'"))
        pairs = [f"{key}={_value(rng.choice(values), quote)}" for key in rng.sample(KEYS, rng.randint(0, 4))]
        message_key = rng.choice(("msg", "message", "event", "event", None))
        if message_key:
            message = rng.choice((*messages, ""))
            pairs.insert(rng.randint(0, len(pairs)), f"{message_key}={quote}{message}{quote}")
        if rng.random() < 0.8:
            level = rng.choice(("info", "warn", "error", "debug", "INFO", "notice"))
            pairs.insert(
                rng.randint(0, len(pairs)), f"level={level}" if rng.random() < 0.5 else f"level='{level}'"
            )
        head = rng.choice(("", "", "time=2026-12-02T03:00:00Z ", "2026-12-02 03:00:00 [info     ] ", " "))
        lines.append(
            head + " ".join(pairs) + rng.choice(("", "", " }", " password=hunter2", " url=ws://u:p@h/"))
        )
    return lines


def _value(value: str, quote: str) -> str:
    return f"{quote}{value}{quote}" if " " in value or not value or "\\" in value else value


def test_key_value_lines_make_what_the_full_path_makes() -> None:
    assert_same(_logfmt_lines(random.Random(13), 20_000))


def test_the_logfmt_shortcut_takes_the_lines_it_is_for() -> None:
    """Not a shortcut never taken: the commonest lines go through it, the others are left to
    ``_from_text``."""
    from wsmon.sources.logs.scan import scan

    def made(block: str) -> bool:
        return _from_logfmt(block, scan(block.lower()), block.lower()) is not None

    assert made('time=2026-12-02T03:00:00Z level=info msg="client connected" connectionId=c1')
    assert made("event='client connected' connectionId=c1 level='info'")
    assert not made('msg="" connectionId=c1')  # no message said: the words before the pairs are
    assert not made("2026-12-02 03:00:00 [info     ] client connected  connectionId=c1")
    assert not made('msg="x" data={"a": 1}')  # may end in a JSON object
