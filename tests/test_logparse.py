"""Server log lines into events: the demo's pino-like JSON, other JSON shapes, and plain text."""

from __future__ import annotations

import json

from wsmon.core import events as ev
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.text import normalise_level
from wsmon.sources.logs.vocabulary import strip_ansi


def _parser() -> LogParser:
    ticks = iter(range(1000))
    return LogParser("server", lambda: (1_700_000_000.0, float(next(ticks))))


def _line(msg: str, level: str = "info", **fields: object) -> str:
    return json.dumps({"time": 1_700_000_000_000, "level": level, "msg": msg, **fields})


def test_connection_life_cycle_from_json_lines() -> None:
    parser = _parser()
    opened = parser.parse(_line("connection opened", conn="c1", peer="127.0.0.1:5000", path="/"))
    assert opened == [
        ev.ConnectionOpened(
            wall=1_700_000_000.0, mono=0.0, conn="c1", peer="127.0.0.1:5000", path="/", source="server"
        )
    ]
    closed = parser.parse(
        _line(
            "connection closed",
            "warn",
            conn="c1",
            code=1006,
            reason="",
            closed_by="neither",
            duration_ms=1500,
        )
    )
    assert isinstance(closed[0], ev.ConnectionClosed)
    assert (closed[0].code, closed[0].closed_by, closed[0].duration_s) == (1006, "neither", 1.5)
    # A warning-level close is also kept as a log line.
    assert isinstance(closed[1], ev.LogLine) and closed[1].level == "warn"


def test_stats_and_delivery_lines() -> None:
    parser = _parser()
    [traffic] = parser.parse(
        _line(
            "connection stats",
            conn="c2",
            msgs_in=3,
            msgs_out=4,
            bytes_in=300,
            bytes_out=400,
            interval_ms=1000,
        )
    )
    assert isinstance(traffic, ev.Traffic)
    assert (traffic.msgs_in, traffic.msgs_out, traffic.bytes_in, traffic.bytes_out) == (3, 4, 300, 400)
    [sample] = parser.parse(_line("message delivered", msg_id="msg_1", conn="c2", latency_ms=12.5))
    assert isinstance(sample, ev.LatencySample) and sample.kind == "delivery" and sample.ms == 12.5


def test_delivery_failure_from_json_and_text() -> None:
    parser = _parser()
    out = parser.parse(
        _line(
            "Message delivery failed: msg_42 - Connection not open",
            "error",
            err="MessageDeliveryError",
            msg_id="msg_42",
            conn="c9",
        )
    )
    failure = out[0]
    assert isinstance(failure, ev.DeliveryFailed)
    assert (failure.message_id, failure.conn, failure.reason) == ("msg_42", "c9", "Connection not open")
    assert isinstance(out[1], ev.LogLine) and out[1].level == "error"

    text = parser.parse(
        "\x1b[31mERROR\x1b[0m MessageDeliveryError: Message delivery failed: msg_7 - Connection not open"
    )
    assert isinstance(text[0], ev.DeliveryFailed)
    assert (text[0].message_id, text[0].reason) == ("msg_7", "Connection not open")
    assert isinstance(text[1], ev.LogLine) and text[1].level == "error" and "\x1b" not in text[1].text


def test_unrecognised_lines_are_kept() -> None:
    parser = _parser()
    [line] = parser.parse("listening for clients on 3001")
    assert isinstance(line, ev.LogLine) and line.text == "listening for clients on 3001"
    [line] = parser.parse(json.dumps({"level": 40, "message": "Invalid message format", "conn": "c3"}))
    assert isinstance(line, ev.LogLine) and line.level == "warn" and line.text == "Invalid message format"
    assert parser.parse("   \n") == []


def test_levels_and_ansi() -> None:
    assert normalise_level(50) == "error"
    assert normalise_level("\x1b[33mwarning\x1b[39m") == "warn"
    assert normalise_level("ERR") == "error"
    assert strip_ansi("\x1b[1;31mred\x1b[0m") == "red"
