"""The report's junit rendering, its time-to-limit lines, --output and the GitHub job summary."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import at, run_wsmon

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS, with_overrides
from wsmon.core.reducer import Reducer
from wsmon.core.report import Report, build_report
from wsmon.render.report import FORMATS, render, render_junit, render_markdown, render_text
from wsmon.store.format import new_header
from wsmon.store.writer import RecordingWriter

MIB = 1024 * 1024


def leaking_session() -> list[ev.Event]:
    """Five minutes: slow deliveries (a breach), RSS growing 3.1 MiB a minute to 410 MiB, no e2e or db."""
    out: list[ev.Event] = []
    for i in range(20):
        out.append(ev.ConnectionOpened(**at(i * 0.1), conn=f"c{i}", handshake_ms=5.0, source="server"))
        out.append(ev.LatencySample(**at(i * 0.1), kind="connect", ms=5.0))
    for t in range(0, 301, 2):
        rss = 410.0 - 3.1 * (300 - t) / 60
        out.append(
            ev.ProcessSample(
                **at(float(t)), target="server", pid=7, cpu_percent=12.0, rss_bytes=int(rss * MIB)
            )
        )
        out.append(ev.LatencySample(**at(t + 0.5), kind="delivery", ms=80.0))
        out.append(ev.Traffic(**at(t + 0.5), conn="c0", msgs_in=5, msgs_out=5))
    return out


def leaking_report(source: str = "run.wsmon") -> Report:
    reducer = Reducer()
    reducer.apply_many(leaking_session())
    return build_report(reducer.state, DEFAULT_LIMITS, source=source)


def test_junit_is_one_suite_with_a_case_per_limit() -> None:
    report = leaking_report()
    assert "junit" in FORMATS
    xml = render(report, "junit")
    assert xml == render_junit(report)
    root = ET.fromstring(xml)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["wsmon limits"]
    suite = suites[0]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [limit.label for limit in DEFAULT_LIMITS]
    assert {c.get("classname") for c in cases} == {"wsmon.limits"}

    by_name = {c.get("name"): c for c in cases}
    failure = by_name["Message delivery latency"].find("failure")
    assert failure is not None
    assert failure.get("message") == "Message delivery latency p95 80.0 ms (limit < 50.0 ms)"
    assert "Samples: 151" in (failure.text or "")
    for no_data in ("Database query response", "End-to-end message flow"):
        assert by_name[no_data].find("skipped") is not None
    capacity = by_name["Concurrent connections (capacity target)"]
    assert capacity.find("failure") is None and capacity.find("skipped") is None
    assert "capacity target not reached" in (capacity.findtext("system-out") or "")
    # 410 of 512 MiB is past the warn line: a pass that says so.
    rss = by_name["Server memory (RSS)"]
    assert rss.find("failure") is None
    assert rss.findtext("system-out") == "warn: Server memory (RSS) peak 410 MiB (limit < 512 MiB)"
    assert by_name["WebSocket connect time"].findtext("system-out", "").startswith("ok: ")

    # 20 connects are too few to judge a success rate: skipped, like the two figures without data.
    skipped = by_name["Connection success rate"].find("skipped")
    assert skipped is not None and "n = 20, too few to judge" in (skipped.get("message") or "")
    assert suite.get("tests") == "10" and suite.get("failures") == "1" and suite.get("skipped") == "3"
    assert len(suite.findall("testcase/failure")) == 1
    assert suite.get("timestamp") == report.session.started


def test_junit_escapes_what_it_carries() -> None:
    reducer = Reducer()
    reducer.apply_many(leaking_session())
    limits = with_overrides({"delivery_ms": 60})
    report = build_report(reducer.state, limits, source='a<b>&"c".wsmon')
    report.figures[1].note = "<script>&amp; ]]>"
    root = ET.fromstring(render_junit(report))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["source"] == 'a<b>&"c".wsmon'
    failure = next(root.iter("failure"))
    assert failure.get("message", "").endswith("; <script>&amp; ]]>")


def test_a_passing_report_has_no_failures() -> None:
    reducer = Reducer()
    reducer.apply_many(leaking_session())
    report = build_report(reducer.state, with_overrides({"delivery_ms": 500}))
    root = ET.fromstring(render_junit(report))
    assert root.find("testsuite/testcase/failure") is None
    assert root.get("failures") == "0"


def test_trends_appear_in_text_markdown_and_json() -> None:
    report = leaking_report()
    line = "RSS 410 MiB, +3.1 MiB/min, reaches 512 MiB in about 33 min"
    assert [t.text for t in report.trends] == [line]
    assert f"  {line}" in render_text(report).splitlines()
    assert f"- {line}" in render_markdown(report).splitlines()
    trend = json.loads(render(report, "json"))["trends"][0]
    assert trend["figure"] == "rss_mib" and trend["limit"] == 512.0 and trend["enough_data"] is True
    assert trend["slope_per_min"] == pytest.approx(3.1, rel=0.02)
    assert trend["eta_s"] == pytest.approx(102 / 3.1 * 60, rel=0.02)


def test_a_report_without_process_samples_has_no_trends() -> None:
    reducer = Reducer()
    reducer.apply_many([e for e in leaking_session() if not isinstance(e, ev.ProcessSample)])
    report = build_report(reducer.state, DEFAULT_LIMITS)
    assert report.trends == []
    assert "Time to limit" not in render_text(report)


# --- the CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "run.wsmon"
    with RecordingWriter(path, new_header("pytest")) as writer:
        writer.extend(leaking_session())
    return path


def wsmon(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"} | env
    return run_wsmon(*args, cwd=cwd, env=environment)


def test_markdown_is_appended_to_the_github_step_summary(tmp_path: Path, recording: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# Earlier step\n")
    result = wsmon(
        "report", str(recording), "--format", "markdown", cwd=tmp_path, GITHUB_STEP_SUMMARY=str(summary)
    )
    assert result.returncode == 1  # the delivery breach
    written = summary.read_text()
    assert written.startswith("# Earlier step\n## wsmon report: BREACH")
    assert result.stdout in written
    assert "- RSS 410 MiB, +3.1 MiB/min, reaches 512 MiB in about 33 min" in written

    again = wsmon(
        "report", str(recording), "--format", "markdown", cwd=tmp_path, GITHUB_STEP_SUMMARY=str(summary)
    )
    assert again.returncode == 1
    assert summary.read_text().count("## wsmon report: BREACH") == 2  # appended, never overwritten


def test_other_formats_leave_the_step_summary_alone(tmp_path: Path, recording: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("")
    wsmon("report", str(recording), "--format", "junit", cwd=tmp_path, GITHUB_STEP_SUMMARY=str(summary))
    assert summary.read_text() == ""


def test_output_writes_the_file_and_prints_the_verdict(tmp_path: Path, recording: Path) -> None:
    out = tmp_path / "wsmon-junit.xml"
    result = wsmon("report", str(recording), "--format", "junit", "--output", str(out), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("wsmon report: BREACH — breached: delivery_ms")
    root = ET.parse(out).getroot()
    assert root.find("testsuite/testcase/failure") is not None


def test_junit_with_a_baseline_holds_both_suites(tmp_path: Path, recording: Path) -> None:
    result = wsmon("report", str(recording), "--format", "junit", "--baseline", str(recording), cwd=tmp_path)
    assert result.returncode == 1  # the breach; the baseline itself is the same run
    root = ET.fromstring(result.stdout)
    assert [s.get("name") for s in root.findall("testsuite")] == ["wsmon limits", "wsmon baseline"]
    baseline = root.findall("testsuite")[1]
    assert baseline.get("failures") == "0"
    assert root.get("tests") == str(10 + len(baseline.findall("testcase")))
