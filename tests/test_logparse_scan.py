"""The text pre-filter's one pass over a line's words (``scan``) finds what the separate searches find.

``scan`` decides three things of an ASCII text line from its words, each word's verdict remembered:
whether a recogniser may want it (a cue word, or a word of a warning or worse), the level it names,
and whether masking could change it. The last one guards secrets: a line ``scan`` finds no secret word
in (and that holds no URL) is kept without being masked, so it must be a line the full mask leaves as
it is — over the real loggers' corpus, the benchmark's lines and random lines built from the words
masking looks for, with separators, quotes, digits and upper case between them.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from test_logparse_fastpath import assert_same

from wsmon.core import events as ev
from wsmon.core import redact
from wsmon.sources.logs import memos, scan
from wsmon.sources.logs import text as free_text
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.parser import LogParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "fidelity"))

SECRET_PIECES = (
    *redact.CUE_WORDS, *redact.CUE_ACROSS, *redact.SECRET_PARAMS, "api_key", "api-key", "x-api-key", "apiKey",
    "API_KEY", "api", "api-", "-key", "api_", "_key", "/api/devices", "PASSWORD",
    "DB_PASSWORD", "PGPASSWORD", "Authorization", "Bearer", "BASIC", "Digest", "Cookie", "set-cookie",
    "jwt", "sessionId", "author", "signal", "design", "=", ":", ": ", " = ", '"', "'", "\"password\": ",
    " ", "-", "_", ".", ",", ";", "/", "?", "&", "0", "42", "abcdefgh1234", "s3cr3t!", "ws://u:p@h/x",
    "https://h/p?token=t", "://", "\t", "{", "}", "(", ")", "[", "]",
)  # fmt: skip
LINE_PIECES = (
    *SECRET_PIECES, *vocab.CUES, *free_text._LEVEL_WORDS_ALL, *(w for g in scan.GATES.values() for w in g),
    "INFO", "Warning", "ERR", "info_x", "xinfo",
    "info2", "2info", "no such", "not ", "NOT", "conn", "c-17", "msg_3", "2026-12-02 03:00:00,000",
)  # fmt: skip
SECRETS = (" password=hunter2", " token: abc123", " Authorization: Bearer abcdefgh", " api-key=k1")


def assert_scan_agrees(line: str) -> None:
    if not line.isascii():
        return  # scan is for ASCII lines only; the others take the searches themselves
    lowered = line.lower()
    for _ in range(2):  # the second time from the memos
        flags, level = scan.scan(lowered)
        if not flags & scan.SECRET and "://" not in line:
            assert redact.redact_text(line) == line, line  # no secret word: nothing to mask
        assert bool(flags & scan.CUE) == vocab.has_cue(lowered), line
        alarm = "warn" in lowered or "err" in lowered or "crit" in lowered
        assert bool(flags & scan.ALARM) == alarm, line
        assert level == free_text._level_said(line, lowered), line
        for bit, gate in scan.GATES.items():
            assert scan.gate_open(flags, bit, lowered) == any(word in lowered for word in gate), (line, gate)


@settings(max_examples=3000)
@given(st.lists(st.one_of(st.sampled_from(LINE_PIECES), st.text(max_size=4)), max_size=12).map("".join))
def test_scan_finds_what_the_searches_find_and_never_skips_a_secret(line: str) -> None:
    assert_scan_agrees(line)


def test_scan_never_skips_a_secret_in_many_random_lines() -> None:
    rng = random.Random(13)
    memos._forget()
    for _ in range(40_000):
        pieces = rng.choices(SECRET_PIECES, k=rng.randrange(1, 9))
        line = "".join(piece.upper() if rng.random() < 0.2 else piece for piece in pieces)
        assert_scan_agrees(line)


def test_scan_agrees_on_the_corpus_and_the_benchmarks_lines() -> None:
    """Real loggers' lines (the Python ones run here, no npm needed) and every mix the benchmark
    measures; each line also with a secret put into it, which must be found."""
    import bench_logparse
    from test_corpus import PYTHON_STYLES, written_by

    lines = [line for style in PYTHON_STYLES for line in written_by(style, None)]
    lines += [line for name in bench_logparse.MIXES for line in bench_logparse.mix(name, 3_000)]
    assert len(lines) > 15_000
    for line in lines:
        assert_scan_agrees(line)
        for secret in SECRETS:
            with_secret = line + secret
            assert redact.redact_text(with_secret) != with_secret
            assert scan.scan(with_secret.lower())[0] & scan.SECRET, with_secret
            assert_scan_agrees(with_secret)


SECRET_VALUES = ("hunter2", "s3cr3t-value", "Bearer abcdefghijkl", "ws://u:pw@host/x", "tok_0123456789abcdef")
KV_KEYS = ("connectionId", "msg", "event", "level", "note", "url", "header", "detail", "reason", "conn")


@st.composite
def kv_line(draw: st.DrawFn) -> str:
    """A key=value (or plain) line whose values and words may hold secrets, in any of masking's forms."""
    pairs = []
    for _ in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(KV_KEYS))
        pieces = st.lists(st.sampled_from((*SECRET_PIECES, *SECRET_VALUES)), min_size=1, max_size=4)
        value = "".join(draw(pieces))
        quote = draw(st.sampled_from(('"', "'", "")))
        pairs.append(f"{key}={quote}{value}{quote}")
    head = draw(st.sampled_from(("", "2026-12-02 03:00:00,000 INFO [router] client c1 connected ")))
    return head + " ".join(pairs)


@settings(max_examples=1500)
@given(st.lists(kv_line(), min_size=1, max_size=8))
def test_a_key_value_line_kept_without_the_mask_is_what_the_full_path_makes(lines: list[str]) -> None:
    """The fast path keeps a line (and its fields' values) without masking when its scan found no secret
    word: the events must be the full path's, which masks everything."""
    assert_same(lines)


def test_a_secret_in_a_key_value_lines_words_or_values_is_masked_on_the_fast_path() -> None:
    parser = LogParser("server", lambda: (0.0, 0.0))
    for line in (
        'time=2026-12-02T03:00:00Z level=info msg="conn c1 opened password=hunter2" note=x',
        "level=info msg=\"client connected\" conn=c1 detail='Authorization: Bearer hunter2hunter2'",
        'level=info msg="client connected" conn=c1 url="wss://u:hunter2@host/x?token=hunter2"',
        '{"msg": "client connected", "conn": "c1", "path": "/ws?token=hunter2"}',
        "2026-12-02 03:00:00,000 INFO [router] client c1 connected with api-key=hunter2",
    ):
        [log] = [event for event in parser.parse(line) if isinstance(event, ev.LogLine)] or [None]
        events = parser.parse(line)
        assert events, line
        assert "hunter2" not in str([msgspec.json.encode(event) for event in events]), line
        assert log is None or "***" in log.text + str(log.fields), line
