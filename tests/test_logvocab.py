"""Recognition by vocabulary and field names (issue 9 item 1), the fields a kept line carries (item 2).

Real loggers' output is checked in tests/fidelity/test_corpus.py; these are the shapes no logger here
can write (Go's slog and zap: no Go module proxy on these machines), the edges, and properties."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmon.core import events as ev
from wsmon.sources.logs.folding import StackFolder
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.vocabulary import MAX_FIELD_CHARS, MAX_FIELDS

ESC = "\x1b"


def parse(line: str) -> list[ev.Event]:
    return LogParser("api", lambda: (1.0, 2.0)).parse(line)


def one(line: str, kind: type[ev.Event]) -> ev.Event:
    found = [e for e in parse(line) if isinstance(e, kind)]
    assert len(found) == 1, parse(line)
    return found[0]


@pytest.mark.parametrize(
    ("line", "conn"),
    [
        ('{"time":"2024-05-01T10:00:00Z","level":"INFO","msg":"client joined","connId":"k1"}', "k1"),  # slog
        (
            '{"level":"info","ts":1714557600.1,"caller":"hub/hub.go:41","msg":"new connection","sid":"k2"}',
            "k2",
        ),  # zap
        ('time=2024-05-01T10:00:00Z level=info msg="connection established" socket_id=k3', "k3"),  # logfmt
        ('{"level":30,"msg":"websocket opened","client":{"id":"k4","ip":"10.0.0.9"}}', "k4"),  # nested
        ("2024-05-01 10:00:00 INFO accepted connection from 10.0.0.9 (clientId: k5)", "k5"),
    ],
)
def test_opening_words_and_connection_field_names(line: str, conn: str) -> None:
    assert one(line, ev.ConnectionOpened).conn == conn  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"info","msg":"connected to PostgreSQL","host":"127.0.0.1"}',
        '{"level":"info","message":"Connected to Redis"}',
        '{"level":"error","msg":"failed to connect to upstream","connId":"k1"}',
        "INFO websocket server listening on :3001",
        '{"level":"info","event":"registered device","device":"d1"}',
    ],
)
def test_lines_that_are_not_a_websocket_connection_opening(line: str) -> None:
    assert not [e for e in parse(line) if isinstance(e, ev.ConnectionOpened)]


def test_close_with_code_reason_and_who_closed() -> None:
    closed = one(
        '{"level":"warn","msg":"socket hung up","socketId":"s1","closeCode":1006,"closedBy":"client",'
        '"closeReason":"going"}',
        ev.ConnectionClosed,
    )
    assert (closed.conn, closed.code, closed.closed_by, closed.reason) == ("s1", 1006, "client", "going")  # type: ignore[attr-defined]
    closed = one("level=info msg=\"client left\" conn=s2 code=1001 reason='bye'", ev.ConnectionClosed)
    assert (closed.conn, closed.code, closed.reason) == ("s2", 1001, "bye")  # type: ignore[attr-defined]
    by_server = one("INFO connection s3 closed by server (code 1000)", ev.ConnectionClosed)
    assert (by_server.code, by_server.closed_by) == (1000, "server")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "message_id", "reason"),
    [
        (
            '{"level":50,"msg":"write failed","msgId":"m1","socketId":"s1",'
            '"err":{"type":"Error","message":"write EPIPE","stack":"Error: write EPIPE\\n    at x"}}',
            "m1",
            "write EPIPE",
        ),
        (
            '{"level":"error","ts":1.5,"msg":"could not deliver","payload":{"messageId":"m2"},'
            '"error":{"message":"socket is closed"}}',
            "m2",
            "socket is closed",
        ),
        ('{"level":"ERROR","msg":"send","id":"m3","error":"write after end"}', "m3", "write after end"),
        (
            "WARN unknown recipient dev-9 for message msg_4",
            "msg_4",
            "unknown recipient dev-9 for message msg_4",
        ),
        (
            '{"level":"warn","message":"recipient offline","messageId":"m5","to":"d9"}',
            "m5",
            "recipient offline",
        ),
    ],
)
def test_failing_to_send_words_ids_and_reasons(line: str, message_id: str, reason: str) -> None:
    failed = one(line, ev.DeliveryFailed)
    assert (failed.message_id, failed.reason) == (message_id, reason)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"error","msg":"redis error","error":"read ECONNRESET"}',  # no send in view
        '{"level":"info","msg":"connection closed","connId":"k1","code":1000,"messages":5}',
        '{"level":"info","msg":"query took 3 ms","rows":1}',
    ],
)
def test_no_false_failures(line: str) -> None:
    assert not [e for e in parse(line) if isinstance(e, ev.DeliveryFailed)]


def test_nodes_crash_output_is_one_failure_and_its_source_line_no_event() -> None:
    """Issue 9: wsmon counted the source line Node prints above a crash as a delivery failure."""
    crash = [
        "/app/dist/router.js:88",
        "        throw new errors_1.MessageDeliveryError(`Message delivery failed: ${id} - ${why}`);",
        "        ^",
        "",
        "MessageDeliveryError: Message delivery failed: msg_12 - Connection not open",
        "    at Router.deliver (/app/dist/router.js:88:15)",
        "    at Timeout._onTimeout (/app/dist/router.js:60:18) {",
        "  messageId: 'msg_12'",
        "}",
        "",
        "Node.js v20.11.1",
    ]
    folder, parser = StackFolder(), LogParser("api", lambda: (1.0, 2.0))
    blocks = [b for line in crash for b in folder.feed(line)] + folder.flush()
    events = [e for block in blocks for e in parser.parse(block)]
    [failed] = [e for e in events if isinstance(e, ev.DeliveryFailed)]
    assert (failed.message_id, failed.reason) == ("msg_12", "Connection not open")
    [log] = [e for e in events if isinstance(e, ev.LogLine)]
    assert log.level == "fatal" and "throw new" in log.text and log.text.endswith("Node.js v20.11.1")
    # Unfolded (read line by line, say), the source line is still no event of its own.
    assert [type(e) for e in parser.parse(crash[1])] == [ev.LogLine]


def test_kept_fields_colour_free_capped_and_masked() -> None:
    record = {
        "level": f"{ESC}[31merror{ESC}[39m",
        "message": f"{ESC}[1mFailed to send message{ESC}[22m",
        "connectionId": f"{ESC}[36mc7{ESC}[39m",
        "messageId": "m7",
        "error": {"message": "WebSocket is not open: readyState 3 (CLOSED)", "code": "ERR_NOT_OPEN"},
        "password": "hunter2",
        "headers": {"authorization": "Bearer abc.def.ghi"},
        "upstream": "redis://user:s3cret@cache:6379/0",
        "note": "token sent as Bearer eyJhbGciOiJIUzI1NiJ9 in the header",
        "blob": "x" * 5000,
        **{f"extra{n}": n for n in range(40)},
    }
    failed, log = parse(json.dumps(record))
    assert isinstance(failed, ev.DeliveryFailed) and failed.conn == "c7"
    assert isinstance(log, ev.LogLine) and log.text == "Failed to send message"
    fields = log.fields
    assert fields["connectionId"] == "c7" and fields["messageId"] == "m7"
    assert fields["error.message"] == "WebSocket is not open: readyState 3 (CLOSED)"
    assert fields["password"] == "***" and fields["headers.authorization"] == "***"
    assert "s3cret" not in fields["upstream"] and "eyJhbGci" not in fields["note"]
    assert len(fields["blob"]) == MAX_FIELD_CHARS
    assert len(fields) <= MAX_FIELDS + 1 and ESC not in "".join(fields.values())


def test_info_chatter_is_kept_as_its_message_by_the_pre_filter() -> None:
    explained = LogParser("api", lambda: (1.0, 2.0)).explain(
        json.dumps({"level": 30, "msg": "heartbeat", "connId": "k1", "seq": 4})
    )
    [log] = explained.events
    assert isinstance(log, ev.LogLine) and (log.level, log.text) == ("info", "heartbeat")
    assert "pre-filter" in explained.why


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)


KEYS = ["msg", "message", "level", "code", "connId", "messageId", "error", "err", "payload", "reason", "to"]
WORDS = ["client", "connected", "closed", "failed to send", "code", "1006", "msg_1", "not open", "delivered",
         "in", "3 ms", "conn=c1", "=", "{"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    record=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values, max_size=10),
    words=st.lists(st.sampled_from(WORDS), max_size=8),
)
def test_no_line_raises_and_every_kept_line_is_bounded(record: dict[str, object], words: list[str]) -> None:
    parser = LogParser("api", lambda: (1.0, 2.0))
    for line in (json.dumps(record), " ".join(words), " ".join(words) + " " + json.dumps(record)):
        for event in parser.parse(line):
            if isinstance(event, ev.LogLine):
                assert len(event.fields) <= MAX_FIELDS + 1
                assert all(len(v) <= MAX_FIELD_CHARS for v in event.fields.values())


def test_wsmon_logs_explain_shows_what_each_line_became_and_why(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        '{"level":30,"msg":"new connection","socketId":"s1"}\n'
        '{"level":30,"msg":"Client rejoined the lobby","socketId":"s1"}\n'
        "WARN recipient not found msg_3\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "wsmon", "logs", "explain", str(log)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "-> conn.open conn=s1" in out and "because: connection opened: 'new connection'" in out
    assert "-> delivery.fail message_id=msg_3" in out
    assert "Client rejoined the lobby" in out and "no event in its words" in out  # a miss, and why
    assert "recognised as (lines):" in out
    missing = subprocess.run(
        [sys.executable, "-m", "wsmon", "logs", "explain", str(tmp_path / "nope.log")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.log" in missing.stderr


def test_custom_rules_come_first_and_see_the_whole_text_line() -> None:
    from wsmon.sources.logs.rules import load_rules

    rules = load_rules(
        {
            "log": {
                "rules": [
                    {
                        "regex": r"evicted (?P<who>\S+) .*slot=(?P<slot>\d+)",
                        "event": "conn.close",
                        "fields": {"conn": "{who}", "code": "4000", "reason": "slot {slot}"},
                    }
                ]
            }
        },
        "wsmon.toml",
    )
    parser = LogParser("api", lambda: (1.0, 2.0), rules)
    explained = parser.explain("2024-05-01 [info     ] evicted k9 from the lobby   slot=3 by=scheduler")
    [closed] = explained.events
    assert isinstance(closed, ev.ConnectionClosed) and (closed.conn, closed.code, closed.reason) == (
        "k9",
        4000,
        "slot 3",
    )
    assert explained.why == "custom rule wsmon.toml [[log.rules]] #1"


def test_a_kept_lines_ids_and_error_reach_the_state_and_the_log_panel() -> None:
    from wsmon.core.reducer import Reducer
    from wsmon.ui.widgets.log_panel import _line

    reducer = Reducer()
    line = json.dumps(
        {
            "level": "error",
            "message": "Failed to send message",
            "messageId": "m5",
            "connectionId": "c3",
            "error": "WebSocket is not open: readyState 3 (CLOSED)",
            "service": "router",
        }
    )
    reducer.apply_many(parse(line))
    entry = reducer.state.logs[-1]
    assert entry.fields["messageId"] == "m5" and entry.fields["error"].startswith("WebSocket is not open")
    shown = _line(entry, 0.0, False).plain
    assert "messageId=m5" in shown and "connectionId=c3" in shown and "error=WebSocket is not open" in shown
    assert "service=" not in shown  # only the fields that say which and what went wrong


def test_a_close_logged_twice_counts_once_and_a_reopened_id_closes_again() -> None:
    parser = LogParser("api", lambda: (1.0, 2.0))
    lines = [
        '{"level":"info","msg":"client left","connId":"k1","code":1001}',
        '{"level":"info","msg":"connection closed","connId":"k1","code":1001}',
        '{"level":"info","msg":"client connected","connId":"k1"}',
        '{"level":"info","msg":"connection closed","connId":"k1","code":1000}',
    ]
    closes = [e for line in lines for e in parser.parse(line) if isinstance(e, ev.ConnectionClosed)]
    assert [(c.conn, c.code) for c in closes] == [("k1", 1001), ("k1", 1000)]
