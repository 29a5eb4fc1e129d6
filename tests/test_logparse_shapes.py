"""Log recognisers against lines in the shapes real loggers write: winston, pino, bunyan, structlog,
Python logging and plain text, with ANSI-coloured levels."""

from __future__ import annotations

import json

from wsmon.core import events as ev
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.text import recognise

ESC = "\x1b"


def _parser() -> LogParser:
    ticks = iter(range(1000))
    return LogParser("api", lambda: (1_700_000_000.0, float(next(ticks))))


def _only_log(events: list[ev.Event]) -> ev.LogLine:
    assert len(events) == 1 and isinstance(events[0], ev.LogLine), events
    return events[0]


def test_winston_json_with_coloured_level_inside_the_json_value() -> None:
    # winston's colorize() before json(): the escape codes are inside the string, JSON-escaped.
    line = json.dumps(
        {
            "level": f"{ESC}[31merror{ESC}[39m",
            "message": f"{ESC}[1mconnect ECONNREFUSED 127.0.0.1:5432{ESC}[22m",
            "timestamp": "2024-05-01T10:00:00.000Z",
        }
    )
    assert "\\u001b" in line
    log = _only_log(_parser().parse(line))
    assert (log.level, log.text, log.source) == ("error", "connect ECONNREFUSED 127.0.0.1:5432", "api")


def test_raw_escape_bytes_inside_json_are_stripped_before_decoding() -> None:
    # Some loggers write the ESC byte itself into the JSON, which makes it invalid JSON until stripped.
    line = '{"level":"\x1b[33mwarn\x1b[39m","message":"Invalid message format","clientId":"k9"}'
    log = _only_log(_parser().parse(line))
    assert (log.level, log.text) == ("warn", "Invalid message format")


def test_winston_close_with_client_id_is_a_connection_closed() -> None:
    line = json.dumps(
        {
            "level": "warn",
            "message": "WebSocket closed with code 1006",
            "clientId": "abc-17",
            "timestamp": "2024-05-01T10:00:01.000Z",
        }
    )
    closed, log = _parser().parse(line)
    assert isinstance(closed, ev.ConnectionClosed)
    assert (closed.conn, closed.code, closed.source) == ("abc-17", 1006, "api")
    assert isinstance(log, ev.LogLine) and log.level == "warn"


def test_pino_numeric_levels_and_close_code_field() -> None:
    parser = _parser()
    line = json.dumps(
        {
            "level": 30,
            "time": 1714557600000,
            "pid": 7,
            "msg": "client disconnected",
            "socketId": "s4",
            "code": 1001,
        }
    )
    [closed] = parser.parse(line)  # info level: the event alone, no log line
    assert isinstance(closed, ev.ConnectionClosed) and (closed.conn, closed.code) == ("s4", 1001)
    # A code on a line that is not about closing is not a close code.
    log = _only_log(parser.parse(json.dumps({"level": 50, "msg": "query failed", "code": 1234, "id": "q1"})))
    assert log.level == "error"


def test_pino_delivery_failure_with_err_object() -> None:
    line = json.dumps(
        {
            "level": 50,
            "time": 1714557600000,
            "msg": "Connection not open",
            "messageId": "m-88",
            "conn": "c3",
            "err": {"type": "MessageDeliveryError", "message": "Connection not open", "stack": "..."},
        }
    )
    failed, log = _parser().parse(line)
    assert isinstance(failed, ev.DeliveryFailed)
    assert (failed.message_id, failed.conn, failed.reason) == ("m-88", "c3", "Connection not open")
    assert isinstance(log, ev.LogLine) and log.level == "error"


def test_bunyan_shape() -> None:
    line = json.dumps(
        {
            "name": "router",
            "hostname": "h1",
            "pid": 12,
            "level": 40,
            "msg": "request timed out after 10000 ms",
            "time": "2024-05-01T10:00:00.000Z",
            "v": 0,
        }
    )
    log = _only_log(_parser().parse(line))
    # A timeout is an error whatever level the logger gave it.
    assert (log.level, log.text) == ("error", "request timed out after 10000 ms")
    assert recognise(log.text) == "timeout"


def test_structlog_shape() -> None:
    line = json.dumps(
        {
            "event": "Invalid message format",
            "level": "info",
            "timestamp": "2024-05-01T10:00:00Z",
            "conn": "c8",
        }
    )
    log = _only_log(_parser().parse(line))
    assert (log.level, log.text) == ("warn", "Invalid message format")  # at least a warning
    closed = _parser().parse(
        json.dumps(
            {"event": "connection dropped", "close_code": 1011, "connection_id": "c9", "level": "error"}
        )
    )
    assert isinstance(closed[0], ev.ConnectionClosed) and (closed[0].conn, closed[0].code) == ("c9", 1011)


def test_python_logging_json_shape() -> None:
    line = json.dumps({"asctime": "2024-05-01 10:00:00", "levelname": "CRITICAL", "message": "out of memory"})
    assert _only_log(_parser().parse(line)).level == "fatal"


def test_plain_text_lines_with_ansi_levels() -> None:
    parser = _parser()
    closed, log = parser.parse(
        f"2024-05-01T10:00:00Z {ESC}[33mWARN{ESC}[39m connection c12 closed with code 1005"
    )
    assert isinstance(closed, ev.ConnectionClosed) and (closed.conn, closed.code) == ("c12", 1005)
    assert isinstance(log, ev.LogLine) and log.level == "warn" and ESC not in log.text

    [closed] = parser.parse("[info] socket closed: close code: 1000 clientId=dev-4")
    assert isinstance(closed, ev.ConnectionClosed) and (closed.conn, closed.code) == ("dev-4", 1000)

    [closed] = parser.parse("client abc disconnected code=1001")
    assert isinstance(closed, ev.ConnectionClosed) and (closed.conn, closed.code) == ("abc", 1001)

    # A close code with no connection named is still kept, as a log line.
    log = _only_log(parser.parse(f"{ESC}[31merror{ESC}[39m: WebSocket closed with code 1006"))
    assert (log.level, log.text) == ("error", "error: WebSocket closed with code 1006")


def test_plain_text_delivery_failures() -> None:
    parser = _parser()
    failed, log = parser.parse("Error: Connection not open (msg_77, connection c5)")
    assert isinstance(failed, ev.DeliveryFailed)
    assert (failed.message_id, failed.conn, failed.reason) == ("msg_77", "c5", "Connection not open")
    assert isinstance(log, ev.LogLine) and log.level == "error"
    failed, _ = parser.parse("delivery failed: msg_3 - queue full")
    assert isinstance(failed, ev.DeliveryFailed) and (failed.message_id, failed.reason) == (
        "msg_3",
        "queue full",
    )


def test_refusals_and_timeouts_are_errors() -> None:
    parser = _parser()
    refused = _only_log(parser.parse("Error: connect ECONNREFUSED 127.0.0.1:6379"))
    assert refused.level == "error" and recognise(refused.text) == "refused"
    timed = _only_log(parser.parse("INFO Timeout - Async callback was not invoked: ETIMEDOUT"))
    assert timed.level == "error" and recognise(timed.text) == "timeout"
    fatal = _only_log(parser.parse("FATAL connection refused by upstream"))
    assert fatal.level == "fatal"  # never lowered
    assert recognise("all good") == ""


def test_a_folded_stack_trace_is_one_error_line() -> None:
    parser = _parser()
    block = (
        "MessageDeliveryError: Message delivery failed: msg_9 - Connection not open\n"
        "    at Router.deliver (/app/router.js:42:11)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
    )
    failed, log = parser.parse(block)
    assert isinstance(failed, ev.DeliveryFailed)
    assert (failed.message_id, failed.reason) == ("msg_9", "Connection not open")
    assert isinstance(log, ev.LogLine) and log.level == "error" and log.text.count("\n") == 2

    python = parser.parse(
        "Traceback (most recent call last):\n"
        '  File "app.py", line 3, in <module>\n'
        "    main()\n"
        "ValueError: boom"
    )
    log = _only_log(python)
    assert log.level == "error" and log.text.endswith("ValueError: boom")
    assert recognise(log.text) == "stack"

    # A JSON head keeps its message; the trace is appended and the line is an error.
    folded = json.dumps({"level": 30, "msg": "handler crashed"}) + "\n    at handler (/app/x.js:1:1)"
    log = _only_log(parser.parse(folded))
    assert log.level == "error" and log.text == "handler crashed\n    at handler (/app/x.js:1:1)"
