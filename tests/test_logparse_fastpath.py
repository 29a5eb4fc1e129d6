"""The fast path of log recognition makes what the full path makes.

The fast path is the pre-filter (a JSON line decoded for its message and level alone, its verdict
remembered by message and level), the quiet-line shortcut (a JSON line no recogniser can make an event
of, known by its keys and message) and the memos of words, keys and levels. The full path sends every
line through the recognisers with nothing remembered. Lines are built from the vocabulary's words and
field names, from small pools so that messages and keys repeat line after line as a real logger's do
(the memos are hit, not only filled).
"""

from __future__ import annotations

import json
import random

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsmon.core import events as ev
from wsmon.sources.logs import memos
from wsmon.sources.logs import text as free_text
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.parser import LogParser

WORDS = (
    "client", "connected", "disconnected", "connection", "closed", "with code", "1006", "1000", "opened",
    "new", "joined", "left", "failed to send", "deliver", "delivered", "message", "msg_12", "routed",
    "sent", "not open", "readyState 3", "EPIPE", "write after end", "recipient", "unknown", "offline",
    "dropped", "ack", "in 12 ms", "took 3.5 ms", "by client", "by the server", "from 10.0.0.7:5678",
    "conn=c1", "clientId: abc", "socket c2", "MessageDeliveryError:", "uncaught exception", "fatal",
    "panic", "ERROR", "WARN", "INFO", "debug", "timed out", "ECONNREFUSED", "invalid message format",
    "connection stats", "heartbeat", "device registered", "query ok", "code", "(1005)", "session s1",
    "Bearer abcdefghijkl", "ws://user:pw@host/x", "\x1b[31m", "\x1b[0m", "ſocket", "\u212a", "İNFO",
    "connecté",
)  # fmt: skip
KEYS = (
    "connectionId", "conn_id", "socketId", "sid", "client.id", "messageId", "payload.messageId",
    "payload.id", "to", "recipient", "code", "closeCode", "reason", "closedBy", "remoteAddress",
    "remotePort", "latency_ms", "durationMs", "elapsed", "error", "err.message", "error.message",
    "exc_info", "password", "token", "path", "id", "msgs_in", "bytes_out", "time", "pid", "hostname", "v",
)  # fmt: skip
VALUES = (
    "c1", "c2", "msg_3", 1000, 1006, "1005", 4.5, 12, "12ms", True, None, "", [], {"a": 1}, "client",
    "server", "10.0.0.7", 5678, "WebSocket is not open: readyState 3", "write after end", "x" * 40,
    "\x1b[31mred\x1b[0m", "ws://user:pw@host/p",
)  # fmt: skip
LEVELS = ("info", "INFO", "warn", "error", "debug", "notice", 30, 40, 50, "\x1b[32minfo\x1b[39m")

PHRASES = (
    "client connected", "client disconnected", "connection closed", "message delivered", "message routed",
    "failed to send message", "heartbeat", "socket c2 closed", "session s1 left", "sent ack", "ok",
)  # fmt: skip
words = st.one_of(
    st.sampled_from(PHRASES),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    st.tuples(st.sampled_from(PHRASES), st.sampled_from(WORDS)).map(" ".join),
)
fields = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1, max_size=6)


@st.composite
def json_line(draw: st.DrawFn, messages: list[str], shapes: list[dict[str, object]]) -> str:
    record: dict[str, object] = {}
    for key, value in draw(st.sampled_from(shapes)).items():
        parent, _, leaf = key.rpartition(".")
        if parent:  # a dotted name as a nested object, as most loggers write it
            nested = record.setdefault(parent, {})
            if isinstance(nested, dict):
                nested[leaf] = value
                continue
        record[key] = value
    message_key = draw(st.sampled_from(("msg", "message", "event", None)))
    if message_key:
        record[message_key] = draw(st.sampled_from(messages))
    level_key = draw(st.sampled_from(("level", "severity", "levelname", None)))
    if level_key:
        record[level_key] = draw(st.sampled_from(LEVELS))
    return json.dumps(record, ensure_ascii=draw(st.booleans()))


@st.composite
def text_line(draw: st.DrawFn, messages: list[str]) -> str:
    level = draw(st.sampled_from(("INFO", "WARN", "ERROR", "DEBUG", "info", "")))
    line = f"2026-12-02 03:00:00,000 {level} [router] {draw(st.sampled_from(messages))}"
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(("c1", "1006", "5", "x y"))), max_size=3)
    )
    return " ".join([line, *(f'{k}="{v}"' if " " in v else f"{k}={v}" for k, v in pairs)])


@st.composite
def log(draw: st.DrawFn) -> list[str]:
    messages = draw(st.lists(words, min_size=1, max_size=4))
    shapes = draw(st.lists(fields, min_size=1, max_size=3))
    line = st.one_of(json_line(messages, shapes), text_line(messages))
    return draw(st.lists(line, min_size=5, max_size=40))


def _clock() -> tuple[float, float]:
    _clock.now += 1.0  # type: ignore[attr-defined]
    return 1_796_180_000.0 + _clock.now, _clock.now  # type: ignore[attr-defined]


_clock.now = 0.0  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log())
def test_the_fast_path_makes_what_the_full_path_makes(lines: list[str]) -> None:
    assert_same(lines)


def test_the_fast_path_makes_what_the_full_path_makes_on_many_lines() -> None:
    """The same on 20,000 lines drawn at random (seeded): an event the shortcuts would lose may need a
    rare mix of words and keys, and volume finds it where a few hundred examples do not."""
    rng = random.Random(13)
    messages = [" ".join(rng.choices(WORDS, k=rng.randint(0, 4))) for _ in range(300)] + list(PHRASES) * 10
    shapes = [_shape(rng) for _ in range(120)]
    lines = []
    for _ in range(20_000):
        message, shape = rng.choice(messages), rng.choice(shapes)
        if rng.random() < 0.7:
            record = {**shape, rng.choice(("msg", "message", "event")): message}
            if rng.random() < 0.8:
                record[rng.choice(("level", "severity", "levelname"))] = rng.choice(LEVELS)
            lines.append(json.dumps(record))
        else:
            pairs = " ".join(
                f"{k}={v}" for k, v in list(shape.items())[:2] if isinstance(v, str) and " " not in v
            )
            lines.append(f"2026-12-02 03:00:00 {rng.choice(('INFO', 'WARN', 'debug'))} {message} {pairs}")
    assert_same(lines)


def _shape(rng: random.Random) -> dict[str, object]:
    """Keys a logger might write: often a connection, a code, a latency or an error among them, with
    values that may or may not be usable ones."""
    shape: dict[str, object] = {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(0, 4))}
    for names, values, chance in (
        (("connectionId", "socketId", "sid", "client.id", "id"), ("c1", "c2", 7, "", None), 0.6),
        (("closeCode", "code", "wsCode"), (1000, 1006, "1005", 99, None), 0.3),
        (("latency_ms", "durationMs", "took"), (4.5, "12ms", -1, None), 0.3),
        (
            ("error", "err.message", "exc_info"),
            ("write after end", "boom", "Traceback (most recent call last):"),
            0.3,
        ),
        (("messageId", "payload.messageId"), ("msg_1", 5, None), 0.3),
    ):
        if rng.random() < chance:
            shape[rng.choice(names)] = rng.choice(values)
    return shape


def assert_same(lines: list[str]) -> None:
    fast_parser, full_parser = LogParser("server", _clock), LogParser("server", _clock)
    fast = [fast_parser._explain(line) for line in lines]  # memos filled, then hit as lines repeat
    full = []
    for line in lines:
        memos._forget()  # nothing remembered: every line worked out from scratch
        full.append(full_parser._explain(line, shortcuts=False))
    for line, (fast_events, fast_why), (full_events, full_why) in zip(lines, fast, full, strict=True):
        if fast_why.endswith("(pre-filter)"):
            # Chatter: kept as its text and level, without its fields; the recognisers make no event of it.
            [kept] = fast_events
            [log_line] = full_events
            assert isinstance(kept, ev.LogLine) and isinstance(log_line, ev.LogLine), line
            assert kept.fields == {}, line
            assert kept.text == log_line.text, line
            if line.startswith("{"):
                assert kept.level == log_line.level, line
            continue
        assert [_without_clock(e) for e in fast_events] == [_without_clock(e) for e in full_events], line
        assert fast_why == full_why, line


def _without_clock(event: ev.Event) -> ev.Event:
    return msgspec.structs.replace(event, wall=0.0, mono=0.0)


def test_the_memos_stay_bounded_when_every_message_differs() -> None:
    """A logger that puts an id in every message: the memos are emptied and start again, they do not
    grow with the log, and every line is still recognised."""
    memos._forget()
    parser = LogParser("server", lambda: (0.0, 0.0))
    count = memos._MEMO_ENTRIES + 500
    for n in range(count):
        [event] = parser.parse(json.dumps({"msg": f"client c{n} connected", "level": "info"}))
        assert isinstance(event, ev.ConnectionOpened) and event.conn == f"c{n}"
        parser.parse(json.dumps({"msg": f"heartbeat {n}", "level": "info"}))
    for memo in (memos._CHATTER_SEEN, memos._WORDS_SEEN, memos._SHAPES):
        assert len(memo) <= memos._MEMO_ENTRIES


def test_a_long_message_is_recognised_and_not_remembered() -> None:
    memos._forget()
    parser = LogParser("server", lambda: (0.0, 0.0))
    message = "client c9 connected " + "x" * memos._MEMO_MAX_CHARS
    [event] = parser.parse(json.dumps({"msg": message, "connectionId": "c9"}))
    assert isinstance(event, ev.ConnectionOpened) and event.conn == "c9"
    assert message not in memos._WORDS_SEEN
    assert all(seen[0] != message for seen in memos._CHATTER_SEEN)


def test_non_ascii_text_takes_the_case_insensitive_patterns() -> None:
    """The lower-cased ASCII shortcut must not lose what IGNORECASE finds in other text: a long s
    (U+017F) and a Kelvin sign (U+212A) match "s" and "k" case-insensitively, so "ſocket c7" and
    "socKet c8" name connections, as they did before the shortcut."""
    parser = LogParser("server", lambda: (0.0, 0.0))
    for line, conn in (("INFO ſocket c7 closed", "c7"), ("INFO soc\u212aet c8 disconnected", "c8")):
        [closed] = parser.parse(f"2026-12-02 03:00:00 {line}")
        assert isinstance(closed, ev.ConnectionClosed) and closed.conn == conn, line
    [closed] = parser.parse("2026-12-02 03:00:00 INFO Connection c9 closed with code 1006, déconnecté")
    assert isinstance(closed, ev.ConnectionClosed) and (closed.conn, closed.code) == ("c9", 1006)


# What the ASCII shortcuts replace: the case-insensitive patterns searched in the text as it is.
def _level_before(text: str) -> str | None:
    match = free_text._TEXT_LEVEL.search(text)
    return free_text.normalise_level(match.group(1)) if match else None


def _conn_before(text: str) -> str:
    for pattern in (free_text._CONN_KEY_VALUE, free_text._CONN_WORD):
        for match in pattern.finditer(text):
            found = match.group("id").rstrip(".,;:)/'\"")
            if (
                found
                and found.lower() not in free_text._NOT_AN_ID
                and not free_text._MESSAGE_ID.fullmatch(found)
            ):
                return found
    return ""


def _close_code_before(text: str) -> int | None:
    match = free_text._CLOSE_CODE.search(text)
    if match is None and free_text._CLOSE_CONTEXT.search(text):
        match = free_text._BARE_CODE.search(text)
        if match is not None:
            return int(match.group("code") or match.group("paren"))
    return int(match.group("code")) if match else None


def _closer_before(lowered: str) -> str:
    if free_text._CLIENT_CLOSED.search(lowered):
        return "client"
    return "server" if free_text._SERVER_CLOSED.search(lowered) else "unknown"


SHORTCUT_WORDS = (
    *WORDS, "conn", "connection", "id", "sid=s9", "client_id: 'k7'", "peer", "by remote", "kicked",
    "evicted", "server closed", "close code: 4001", "code=1011", "hung up", "went away", "terminated",
    "TRACE", "Warning", "CRITICAL", "err", "NOTICE", "\u0130nfo", "cl\u0131ent", "S\u017fID=x",
    "\u212aicked", "é", "#c5", "c6.", ":", "=",
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SHORTCUT_WORDS), max_size=8).map(" ".join))
def test_the_ascii_shortcuts_find_what_the_case_insensitive_patterns_find(text: str) -> None:
    lowered = text.lower()
    assert free_text._level_said(text, lowered) == _level_before(text)
    assert free_text._text_conn(text, exclude_message_ids=True) == _conn_before(text)
    assert free_text._text_close_code(text, lowered) == _close_code_before(text)
    assert free_text._close_context(text, lowered) == bool(free_text._CLOSE_CONTEXT.search(text))
    assert free_text._closer_said(lowered) == _closer_before(lowered)


def test_the_pre_filter_keeps_no_line_with_a_word_of_the_vocabulary_from_the_recognisers() -> None:
    """Lines made of the vocabulary's own words (every cue, every gate word of the recognisers), in
    any case, coloured or not, in JSON, logfmt and plain text: the fast path makes what the full path
    makes, so a word the pre-filter did not know would show here as a lost event."""
    rng = random.Random(29)
    vocabulary = sorted(
        {*vocab.CUES, *vocab.STRONG_GATE, *vocab.WEAK_GATE, *vocab.CLOSE_GATE, *vocab.OPEN_GATE,
         *vocab.DELIVERED_GATE, "connection stats", "message", "client", "socket", "code 1006", "in 4 ms"}
    )  # fmt: skip
    chatter = ("heartbeat", "request completed", "GET /api/devices/7", "cache hit", "200 OK", "queue depth 3")

    def words() -> str:
        picked = [rng.choice(vocabulary) for _ in range(rng.randint(0, 3))]
        picked += [rng.choice(chatter) for _ in range(rng.randint(1, 2))]
        rng.shuffle(picked)
        said = " ".join(picked)
        said = rng.choice((said, said.upper(), said.title()))
        return f"\x1b[33m{said}\x1b[39m" if rng.random() < 0.1 else said

    lines = []
    for n in range(6_000):
        conn, level = f"c{n % 40}", rng.choice(("info", "debug", "warn", "error", "INFO"))
        shape = rng.random()
        if shape < 0.4:
            record = {"level": level, rng.choice(("msg", "message", "event")): words(), "connectionId": conn}
            if rng.random() < 0.3:
                record[rng.choice(("code", "latency_ms", "error", "messageId"))] = rng.choice(
                    (1006, 4.5, "EPIPE", "m1")
                )
            lines.append(json.dumps(record))
        elif shape < 0.7:
            lines.append(f'time=2026-12-02T03:00:00Z level={level} msg="{words()}" conn={conn}')
        else:
            lines.append(f"2026-12-02 03:00:00,000 {level.upper()} [router] {words()}")
    assert_same(lines)


CUE_PIECES = (
    *vocab.CUES, "co", "nn", "not", "no", " such", "suc", "h", "ACK", "Conn", "\u212a", "\u0130",
    "é", "\u017f", "-", "_", "=", ":", "/", " ", "\t", "\n", "0", "42", "c-17", "\x1b[31m",
    '"', "{", "\ud800",
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(CUE_PIECES), st.text(max_size=6)), max_size=14).map("".join))
def test_a_text_lines_cues_found_word_by_word_are_those_the_scan_finds(text: str) -> None:
    """The text pre-filter looks for cues word by word (remembered per word); it must find a cue exactly
    where the scan of the whole line does, across separators, digits and non-ASCII letters."""
    for lowered in (text.lower(), text):
        assert vocab.line_has_cue(lowered) == vocab.has_cue(lowered), lowered
        assert vocab.line_has_cue(lowered) == vocab.has_cue(lowered), lowered  # remembered now
