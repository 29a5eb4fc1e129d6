"""A read chunk at a time makes what a line at a time made.

A log source splits each read chunk into lines at once (decoded together, not line by line), folds
them with ``StackFolder.feed_many`` (lines that cannot start a trace pass without ``feed``'s work) and
recognises them with ``LogParser.parse_many``. Each is compared here with the line-at-a-time path it
replaces, on lines built to hit every edge: broken UTF-8, carriage returns, colour codes, Node and
Python crashes, locations that look like Node's, lines longer than the cap.
"""

from __future__ import annotations

import json
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmon.core import events as ev
from wsmon.sources.logs import folding
from wsmon.sources.logs.folding import LineSplitter, StackFolder
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.source import LogLines


class LineByLineSplitter:
    """The splitter as it was: every complete line decoded on its own."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        buffer = self._partial + data
        *complete, self._partial = buffer.split(b"\n")
        if len(self._partial) > folding.MAX_LINE_BYTES:
            complete.append(self._partial)
            self._partial = b""
        return [line.decode("utf-8", "replace").rstrip("\r") for line in complete]


PIECES = (b"\n", b"\r", b"\r\n", b"a", b" ", b"\xe2\x82\xac", b"\xe2", b"\x82", b"\xf0\x9f\x98", b"\xff",
          b"\xc3", b"\xed\xa0\x80", b"{\"msg\":\"hi\"}", b"\x1b[31m")  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map(b"".join), max_size=8))
def test_a_chunk_decoded_at_once_gives_the_lines_each_decoded_alone(chunks: list[bytes]) -> None:
    batch, alone = LineSplitter(), LineByLineSplitter()
    for chunk in chunks:
        assert batch.feed(chunk) == alone.feed(chunk), chunk
    assert batch.flush() == (
        [alone._partial.decode("utf-8", "replace").rstrip("\r")] if alone._partial else []
    )


def test_a_line_over_the_cap_is_cut_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folding, "MAX_LINE_BYTES", 16)
    for data in (b"x" * 40, b"ab\n" + b"y" * 20, b"\n" * 3 + b"\xe2" * 17, b"z\r" * 12):
        assert LineSplitter().feed(data) == LineByLineSplitter().feed(data), data


# Lines that start, continue or end a crash, and lines that look like they might.
FOLD_LINES = (
    "2026-12-02 03:00:00 INFO client c1 connected", '{"msg":"heartbeat","level":"info"}', "",
    "Error: boom", "    at Object.<anonymous> (/app/server.js:4:9)", "    at node:internal/main:1:1",
    "Traceback (most recent call last):", '  File "/app/x.py", line 3, in <module>', "ValueError: bad",
    "During handling of the above exception, another exception occurred:", "/app/server.js:42",
    "file:///app/server.mjs:7", "C:\\app\\server.js:3", "./server.js:9", "../x.js:1", "    throw new E('x')",
    "        ^", "Node.js v20.11.1", "{ code: 'ECONNRESET' }", "\x1b[31m/app/server.js:42\x1b[0m",
    "\x1b[31merror\x1b[39m: failed to send", "fatal: panic", "ECONNREFUSED 127.0.0.1:6379", "Fatal error",
    "INFO:     10.0.0.7:5 - \"GET / HTTP/1.1\" 200 OK", "f", "C:", "C\x1b[0m:\\x.js:1", "/", ".", "}",
    "ſocket closed", "UNCAUGHT EXCEPTION", "etimedout",
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.sampled_from(FOLD_LINES), max_size=10), max_size=6))
def test_feed_many_folds_as_feed_does_line_by_line(batches: list[list[str]]) -> None:
    many, single = StackFolder(max_lines=6), StackFolder(max_lines=6)
    for lines in batches:
        expected = [block for line in lines for block in single.feed(line)]
        assert many.feed_many(lines) == expected, lines
        assert many.held_since is None or single.held_since is not None
    assert many.flush() == single.flush()


def _line_by_line(data: bytes, parser: LogParser) -> list[ev.Event]:
    """The source as it was: a line at a time through the folder and the parser."""
    out: list[ev.Event] = []
    splitter, folder = LineByLineSplitter(), StackFolder()
    for line in splitter.feed(data):
        for block in folder.feed(line):
            out += parser.parse(block)
    if splitter._partial:
        for block in folder.feed(splitter._partial.decode("utf-8", "replace").rstrip("\r")):
            out += parser.parse(block)
    for block in folder.flush():
        out += parser.parse(block)
    return out


def server_log(rng: random.Random, count: int) -> bytes:
    """A server's output with every kind of line the recognisers and the folder tell apart."""
    lines: list[str] = []
    for n in range(count):
        conn = f"c{rng.randrange(30)}"
        roll = rng.random()
        if roll < 0.3:
            lines.append(
                json.dumps({"level": 30, "msg": "request completed", "req": {"id": n}, "responseTime": 3})
            )
        elif roll < 0.4:
            lines.append(json.dumps({"level": "info", "message": "client connected", "connectionId": conn}))
        elif roll < 0.5:
            lines.append(f"2026-12-02 03:00:00,000 INFO client {conn} disconnected (code 1006)")
        elif roll < 0.55:
            record = {
                "level": 50,
                "msg": "failed to send message",
                "socketId": conn,
                "err": {"message": "EPIPE"},
            }
            lines.append(json.dumps(record))
        elif roll < 0.6:
            lines += [
                "Error: write after end",
                "    at WebSocket.send (/app/ws.js:9:3)",
                "    at /app/r.js:1:1",
            ]
        elif roll < 0.65:
            lines += [
                "Traceback (most recent call last):",
                '  File "/app/x.py", line 3, in f',
                "OSError: gone",
            ]
        elif roll < 0.7:
            lines += [
                "/app/server.js:42",
                "    throw new Error('boom')",
                "    ^",
                "",
                "Error: boom",
                "Node.js v20",
            ]
        elif roll < 0.8:
            lines.append(f'time=2026-12-02T03:00:00Z level=info msg="heartbeat" connectionId={conn}')
        else:
            lines.append(f"\x1b[32minfo\x1b[39m: message m{n} delivered to client {conn} in 4 ms")
    text = "\r\n".join(lines) if rng.random() < 0.3 else "\n".join(lines)
    return text.encode() + rng.choice((b"\n", b"", b"\xe2\x82"))


def test_the_source_makes_the_events_line_by_line_made_in_their_order() -> None:
    """Bytes cut into chunks at random places (inside lines, inside UTF-8 sequences, between a crash's
    lines) make, a chunk at a time, the events a line at a time made, in the same order."""
    rng = random.Random(13)
    clock = lambda: (0.0, 0.0)  # noqa: E731 - held still: the events compare equal
    for _ in range(40):
        data = server_log(rng, rng.randint(1, 120))
        expected = _line_by_line(data, LogParser("server", clock))
        got: list[ev.Event] = []
        reader = LogLines(LogParser("server", clock), got.append)
        at = 0
        while at < len(data):
            step = rng.choice((1, 7, 64, 500, 4096))
            reader.feed(data[at : at + step])
            at += step
        reader.flush()
        assert msgspec.json.encode(got) == msgspec.json.encode(expected)
        assert any(isinstance(event, ev.ConnectionOpened) for event in got) or len(data) < 2_000


def test_parse_many_is_parse_for_each_line_in_order() -> None:
    lines = server_log(random.Random(7), 300).decode("utf-8", "replace").split("\n")
    clock = lambda: (0.0, 0.0)  # noqa: E731
    one, many = LogParser("server", clock), LogParser("server", clock)
    expected = [event for line in lines for event in one.parse(line)]
    assert msgspec.json.encode(many.parse_many(lines)) == msgspec.json.encode(expected)
    assert {type(event) for event in expected} >= {
        ev.ConnectionOpened,
        ev.ConnectionClosed,
        ev.DeliveryFailed,
    }
