"""Custom log rules from wsmon.toml: regex and field-match rules make events; bad rules say what is wrong."""

from __future__ import annotations

import json
import tomllib

import pytest

from wsmon.core import events as ev
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.rules import RuleError, load_rules

TOML = r"""
[[log.rules]]
regex = 'client (?P<conn>\S+) dropped: code (?P<code>\d+)'
event = "conn.close"
[log.rules.fields]
conn = "{conn}"
code = "{code}"
closed_by = "neither"
reason = "dropped by {conn}"

[[log.rules]]
match = { msg = "queue full", "err.kind" = "~^Queue" }
event = "delivery.fail"
fields = { message_id = "{messageId}", reason = "queue full", conn = "{conn}" }

[[log.rules]]
match = { msg = "rtt" }
event = "latency"
fields = { kind = "delivery", ms = "{ms}" }
"""


def _parser(text: str = TOML) -> LogParser:
    rules = load_rules(tomllib.loads(text), "wsmon.toml")
    return LogParser("api", lambda: (1_700_000_000.0, 5.0), rules)


def test_regex_rule_makes_the_event_with_coerced_fields() -> None:
    [closed] = _parser().parse("INFO client dev-7 dropped: code 4001")
    assert closed == ev.ConnectionClosed(
        wall=1_700_000_000.0,
        mono=5.0,
        conn="dev-7",
        code=4001,
        reason="dropped by dev-7",
        closed_by="neither",
        source="api",  # filled with the log's target name
    )


def test_a_rule_on_a_warning_line_keeps_the_line_too() -> None:
    closed, log = _parser().parse("WARN client k1 dropped: code 1006")
    assert isinstance(closed, ev.ConnectionClosed) and closed.code == 1006
    assert isinstance(log, ev.LogLine) and log.level == "warn"


def test_field_match_rule_on_json_lines_with_nested_regex_match() -> None:
    parser = _parser()
    line = {"level": 40, "msg": "queue full", "messageId": "m-5", "conn": "c2", "err": {"kind": "QueueFull"}}
    failed, log = parser.parse(json.dumps(line))
    assert isinstance(failed, ev.DeliveryFailed)
    assert (failed.message_id, failed.conn, failed.reason, failed.source) == (
        "m-5",
        "c2",
        "queue full",
        "api",
    )
    assert isinstance(log, ev.LogLine) and log.level == "warn"
    # The regex part of the match must hold too; otherwise the built-ins see the line and keep it.
    line["err"] = {"kind": "Other"}
    assert [type(e) for e in parser.parse(json.dumps(line))] == [ev.LogLine]
    # A placeholder with nothing to fill it: the rule does not apply.
    [only] = parser.parse(json.dumps({"level": 40, "msg": "queue full", "err": {"kind": "Queue"}}))
    assert isinstance(only, ev.LogLine)


def test_a_whole_placeholder_keeps_the_json_type_and_bad_values_fall_through() -> None:
    parser = _parser()
    [sample] = parser.parse(json.dumps({"level": 30, "msg": "rtt", "ms": 12.5}))
    assert isinstance(sample, ev.LatencySample) and (sample.kind, sample.ms, sample.target) == (
        "delivery",
        12.5,
        "api",
    )
    [log] = parser.parse(json.dumps({"level": 30, "msg": "rtt", "ms": "fast"}))
    assert isinstance(log, ev.LogLine) and log.text == "rtt"


def test_rules_come_before_the_built_ins() -> None:
    rule = """
[[log.rules]]
regex = 'Invalid message format'
event = "marker"
fields = { text = "bad frame: {line}" }
"""
    [marker] = _parser(rule).parse("Invalid message format from c1")
    assert isinstance(marker, ev.Marker) and marker.text == "bad frame: Invalid message format from c1"


def test_no_rules_section_is_no_rules() -> None:
    assert load_rules({}, "wsmon.toml") == []
    assert load_rules({"log": {}}, "wsmon.toml") == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[log.rules]]\nregex = "x"\nevent = "conn.closd"\nfields = {conn = "a", code = "1"}',
            "wsmon.toml [[log.rules]] #1: unknown event 'conn.closd' (did you mean 'conn.close'?)",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "marker"\nfields = {text = "a"}\n'
            '[[log.rules]]\nregex = "(unclosed"\nevent = "marker"\nfields = {text = "a"}',
            "wsmon.toml [[log.rules]] #2: regex '(unclosed' does not compile: missing )",
        ),
        (
            '[[log.rules]]\nevent = "marker"\nfields = {text = "a"}',
            "wsmon.toml [[log.rules]] #1: needs 'regex' or 'match' (or both)",
        ),
        (
            '[[log.rules]]\nregex = "x"\nfields = {text = "a"}',
            "wsmon.toml [[log.rules]] #1: missing 'event'",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "conn.close"\nfields = {conn = "a", cod = "1"}',
            "wsmon.toml [[log.rules]] #1: event 'conn.close' has no field 'cod'",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "conn.close"\nfields = {conn = "a"}',
            "wsmon.toml [[log.rules]] #1: event 'conn.close' needs fields.code",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "conn.close"\nfields = {conn = "a", code = "soon"}',
            "wsmon.toml [[log.rules]] #1: fields.code = 'soon': Expected `int`",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "marker"\nfields = {text = "a", wall = 1}',
            "wsmon.toml [[log.rules]] #1: fields.wall is set by wsmon",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "marker"\nfields = {text = "{unclosed"}',
            "wsmon.toml [[log.rules]] #1: fields.text '{unclosed':",
        ),
        (
            '[[log.rules]]\nmatch = { msg = "~(" }\nevent = "marker"\nfields = {text = "a"}',
            "wsmon.toml [[log.rules]] #1: match.msg '(' does not compile",
        ),
        (
            '[[log.rules]]\nregex = "x"\nevent = "marker"\nfield = {text = "a"}',
            "wsmon.toml [[log.rules]] #1: unknown key 'field' (expected regex, match, event, fields)",
        ),
        ("[log]\nrules = 3", "wsmon.toml [[log.rules]]: expected an array of tables"),
    ],
)
def test_bad_rules_give_one_line_errors(toml: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        load_rules(tomllib.loads(toml), "wsmon.toml")
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text, text
