"""Every text renderer fed control characters: the output never drives the reader's terminal.

Text from outside (close reasons, failure reasons, message ids, log lines, target errors, test names
and messages) reaches each renderer raw here, as it does from a recording written before events were
cleaned at Session.emit. Property: no ESC, no other C0 control but newline and tab, no C1 control in
the output; the JUnit renderings still parse as XML.
"""

from __future__ import annotations

import io
import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fuzzing import examples, unsafe_characters
from helpers import T0, at, write_recording
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wsmon.attach import CheckRow
from wsmon.core import baseline
from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import Reducer
from wsmon.core.report import build_report
from wsmon.render import baseline as baseline_formats
from wsmon.render.report import FORMATS, render
from wsmon.render.targets import render_check_table
from wsmon.sources.base import CheckResult
from wsmon.store import RecordingReader, export_jsonl

pytestmark = pytest.mark.timeout(300)

NASTY = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b31m\x00\r\x0b\x0c\x7f\u202e\x85"
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.just(NASTY)


@st.composite
def scripts(draw: st.DrawFn) -> list[ev.Event]:
    """A fixed little session whose outside text fields are drawn."""
    text = lambda: draw(texts)  # noqa: E731
    conn = text() or "c1"
    return [
        ev.TargetAdded(**at(0), target="ws", kind="websocket", address=text()),
        ev.TargetDown(**at(0.1), target="ws", error=text(), kind="refused"),
        ev.TargetUp(**at(0.2), target="ws", detail=text()),
        ev.Marker(**at(0.3), text=text()),
        ev.ConnectionOpened(**at(0.4), conn=conn, peer=text(), path=text(), handshake_ms=3.0),
        ev.LatencySample(**at(0.5), kind="delivery", ms=80.0),
        ev.DeliveryFailed(**at(0.6), message_id=text(), conn=conn, reason=text()),
        ev.LogLine(**at(0.7), level="error", text=text(), source=text()),
        ev.TestEvent(**at(0.8), name=text() or "t", phase="start"),
        ev.TestEvent(**at(0.9), name=text() or "t", phase="end", outcome="failed", message=text()),
        ev.ConnectionClosed(**at(1.0), conn=conn, code=1006, reason=text(), closed_by="server"),
    ]


def assert_safe(output: str, what: str) -> None:
    found = unsafe_characters(output)
    assert not found, f"{what}: {found}"


def report_of(events: list[ev.Event], source: str = "run.wsmon"):
    reducer = Reducer()
    reducer.apply_many(events)
    return build_report(reducer.state, DEFAULT_LIMITS, source=source)


@settings(max_examples=examples(0.25))
@given(scripts(), texts)
def test_report_renderers_show_no_control_characters(events: list[ev.Event], source: str) -> None:
    report = report_of(events, source)
    for fmt in FORMATS:
        output = render(report, fmt)
        assert_safe(output, fmt)
        if fmt == "junit":
            ET.fromstring(output)


@settings(max_examples=examples(0.25))
@given(scripts(), scripts())
def test_baseline_renderers_show_no_control_characters(new: list[ev.Event], old: list[ev.Event]) -> None:
    comparison = baseline.compare(report_of(new), report_of(old))
    for fmt in ("text", "markdown", "json", "junit"):
        output = baseline_formats.render(comparison, fmt)
        assert_safe(output, fmt)
        if fmt == "junit":
            ET.fromstring(output)


@settings(max_examples=examples(0.1))
@given(scripts())
@example([ev.Marker(wall=T0, mono=0.0, text=NASTY)])
@example([ev.Marker(wall=T0, mono=0.0, text="a\u2028b\u2029c\x85d")])  # line breaks to Python, not to JSON
def test_export_writes_no_control_characters_and_keeps_the_text(events: list[ev.Event]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.wsmon"
        write_recording(path, events)  # raw, as a recording from before Session.emit cleaned events
        out = io.StringIO()
        with RecordingReader(path) as reader:
            export_jsonl(reader, out)
    output = out.getvalue()
    assert_safe(output, "export")
    # JSON Lines end each record at "\n" only: str.splitlines would also cut at U+2028 inside a string
    exported = [json.loads(line) for line in output.split("\n")[1:-1]]
    assert exported == [ev.to_dict(event) for event in events]  # jq still sees the very text recorded


@given(st.lists(st.tuples(texts, texts, st.booleans(), texts, texts), max_size=4))
@example([("websocket", "ws://h/", False, NASTY, NASTY)])
def test_check_table_shows_no_control_characters(rows: list[tuple[str, str, bool, str, str]]) -> None:
    table = render_check_table(
        [
            CheckRow(target, address, CheckResult(ok=ok, latency_ms=1.0, error=error, hint=hint))
            for target, address, ok, error, hint in rows
        ]
    )
    assert_safe(table, "check table")
