"""The report: verdicts and exit codes from real reduced sessions, and its three renderings."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from helpers import at

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS, Limit, judge, with_overrides
from wsmon.core.reducer import Reducer, fold
from wsmon.core.report import Report, build_report, exit_code
from wsmon.core.state import State
from wsmon.render.report import render, render_json, render_junit, render_markdown, render_text, verdict_line

MIB = 1024 * 1024


def judged(events: list[ev.Event], limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> State:
    """Reduce the events and judge after each one, as a live session records its alerts."""
    reducer = Reducer()
    for event in events:
        reducer.apply(event)
        reducer.apply_many(judge(reducer.state, limits, event.wall, event.mono))
    return reducer.state


def process(mono: float, cpu: float = 10.0, rss_mib: float = 100.0) -> ev.ProcessSample:
    return ev.ProcessSample(
        **at(mono), target="server", pid=42, cpu_percent=cpu, rss_bytes=int(rss_mib * MIB)
    )


def healthy_session() -> list[ev.Event]:
    """Every limit has data and holds; the capacity targets are reached."""
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="server", kind="server", address="ws://127.0.0.1:8080")
    ]
    for i in range(150):
        out.append(ev.ConnectionOpened(**at(i * 0.01), conn=f"c{i}", handshake_ms=4.0, source="server"))
        out.append(ev.LatencySample(**at(i * 0.01), kind="connect", ms=4.0 + i % 7))
    for s in range(10):
        out.append(ev.Traffic(**at(2 + s), conn="c0", msgs_in=700, msgs_out=700))
        for k in ("delivery", "db", "e2e"):
            out += [ev.LatencySample(**at(2 + s + j * 0.01), kind=k, ms=2.0 + j % 5) for j in range(30)]  # type: ignore[arg-type]
        out.append(process(2 + s, cpu=12.0, rss_mib=180.0))
    out += [
        ev.ConnectionClosed(**at(13.0 + i * 0.01), conn=f"c{i}", code=1000, closed_by="client")
        for i in range(150)
    ]
    return out


def figure(report: Report, name: str) -> Any:
    return next(f for f in report.figures if f.figure == name)


def test_a_healthy_session_passes_and_exits_0() -> None:
    report = build_report(judged(healthy_session()), DEFAULT_LIMITS)
    assert {f.figure: f.verdict for f in report.figures} == {
        "connect_ms": "ok",
        "delivery_ms": "ok",
        "db_ms": "ok",
        "e2e_ms": "ok",
        "connect_success": "ok",
        "delivery_success": "ok",
        "rss_mib": "ok",
        "cpu_percent": "ok",
        "connections": "reached",
        "messages_per_s": "reached",
    }
    assert (report.verdict, report.exit_code, exit_code(report)) == ("pass", 0, 0)
    assert figure(report, "connections").value == 150.0
    assert figure(report, "messages_per_s").value == 1400.0  # the last second counts once complete


def test_an_rss_breach_fails_the_run() -> None:
    events = [process(i, rss_mib=100.0 + 60 * i) for i in range(10)]  # up to 640 MiB
    report = build_report(judged(events), DEFAULT_LIMITS)
    rss = figure(report, "rss_mib")
    assert (rss.verdict, rss.value, rss.last) == ("breach", 640.0, 640.0)
    assert (report.verdict, report.exit_code) == ("breach", 1)


def test_figures_without_data_do_not_fail_the_run() -> None:
    report = build_report(judged([process(i) for i in range(10)]), DEFAULT_LIMITS)
    assert figure(report, "db_ms").verdict == "no data"
    assert figure(report, "db_ms").p95 is None
    assert figure(report, "delivery_success").verdict == "no data"
    assert figure(report, "rss_mib").verdict == "ok"
    assert (report.verdict, report.exit_code) == ("pass", 0)


def test_an_empty_session_says_no_data_and_does_not_fail() -> None:
    report = build_report(State(), DEFAULT_LIMITS)
    assert (report.verdict, report.exit_code) == ("no data", 0)
    assert report.session.started is None
    assert render_text(report).startswith("wsmon report: NO DATA")


def test_capacity_targets_not_reached_do_not_fail_the_run() -> None:
    events: list[ev.Event] = [ev.ConnectionOpened(**at(i), conn=f"c{i}") for i in range(3)]
    events += [ev.Traffic(**at(3 + s), conn="c0", msgs_in=10) for s in range(5)]
    report = build_report(judged(events), DEFAULT_LIMITS)
    assert figure(report, "connections").verdict == "not reached"
    assert figure(report, "messages_per_s").verdict == "not reached"
    # Three connects are all that was judged, and three are too few to judge: not a pass, not a failure.
    assert (report.verdict, report.exit_code) == ("too few to judge", 0)


def latency_spike_session() -> list[ev.Event]:
    """A minute of slow connects in a long run whose session p95 is fine."""
    out: list[ev.Event] = [ev.LatencySample(**at(i * 0.05), kind="connect", ms=5.0) for i in range(2000)]
    # A quiet minute lets the fast samples age out of the live window before the slow ones come.
    out += [ev.LatencySample(**at(170 + i * 0.5), kind="connect", ms=300.0) for i in range(40)]
    out += [ev.LatencySample(**at(300 + i * 0.05), kind="connect", ms=5.0) for i in range(2000)]
    return out


def test_a_breach_during_the_run_fails_it_even_if_the_session_figure_recovered() -> None:
    state = judged(latency_spike_session())
    assert state.alerts == {}  # the live alert cleared when the slow minute passed
    report = build_report(state, DEFAULT_LIMITS)
    connect = figure(report, "connect_ms")
    assert connect.p95 is not None and connect.p95 < 10.0
    assert connect.verdict == "breach"
    assert connect.breached_during_run == 300.0
    assert connect.note == "breached during the run: 300.0 ms"
    assert report.exit_code == 1


def test_a_looser_limit_in_the_report_does_not_inherit_the_live_breach() -> None:
    report = build_report(judged(latency_spike_session()), with_overrides({"connect_ms": 400}))
    connect = figure(report, "connect_ms")
    assert (connect.verdict, connect.breached_during_run) == ("ok", 300.0)
    assert report.exit_code == 0


def test_cpu_is_judged_on_the_five_sample_mean_not_a_single_spike() -> None:
    spike = [process(0, cpu=95.0)] + [process(i, cpu=5.0) for i in range(1, 20)]
    cpu = figure(build_report(judged(spike), DEFAULT_LIMITS), "cpu_percent")
    assert (cpu.verdict, cpu.peak, cpu.value) == ("ok", 95.0, 23.0)  # (95 + 4 × 5) / 5

    sustained = spike + [process(20 + i, cpu=80.0) for i in range(6)] + [process(30, cpu=5.0)]
    report = build_report(judged(sustained), DEFAULT_LIMITS)
    cpu = figure(report, "cpu_percent")
    assert (cpu.verdict, cpu.value) == ("breach", 80.0)
    assert report.exit_code == 1


def test_too_few_cpu_samples_are_no_data() -> None:
    cpu = figure(
        build_report(judged([process(0, cpu=99.0), process(1, cpu=99.0)]), DEFAULT_LIMITS), "cpu_percent"
    )
    assert (cpu.verdict, cpu.peak) == ("no data", 99.0)
    assert "2 samples" in cpu.note


def test_target_down_time_includes_an_outage_still_running_at_the_end() -> None:
    state = fold(
        [
            ev.TargetAdded(**at(0.0), target="postgres", kind="postgres", address="postgresql://app@db/test"),
            ev.TargetDown(**at(1.0), target="postgres", error="ECONNREFUSED", kind="refused"),
            ev.TargetUp(**at(4.0), target="postgres"),
            ev.TargetDown(**at(10.0), target="postgres", error="ECONNREFUSED", kind="refused"),
            ev.Marker(**at(25.0), text="tests done"),
        ]
    )
    (row,) = build_report(state, DEFAULT_LIMITS).targets
    assert (row.state, row.down_count, row.down_total_s, row.error) == ("down", 2, 18.0, "ECONNREFUSED")


def troubled_session() -> list[ev.Event]:
    """The user's baseline run: 1005s and 1006s, refused connects, failed deliveries, a crash."""
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="server", kind="server", address="ws://127.0.0.1:8080")
    ]
    out += [
        ev.ConnectFailed(**at(0.5), target="server", kind="refused", error="ECONNREFUSED") for _ in range(2)
    ]
    for i in range(20):
        out.append(ev.ConnectionOpened(**at(1 + i * 0.01), conn=f"c{i}", source="server"))
        out.append(ev.LatencySample(**at(1 + i * 0.01), kind="delivery", ms=4.0))
    out += [ev.ConnectionClosed(**at(2.0), conn=f"c{i}", code=1005, closed_by="client") for i in range(8)]
    out += [
        ev.DeliveryFailed(**at(3 + i), message_id=f"msg_{i}", conn="c3", reason="Connection not open")
        for i in range(6)
    ]
    out.append(ev.LogLine(**at(9.0), level="error", text="MessageDeliveryError", source="server"))
    out.append(
        ev.ServerExit(**at(10.0), target="server", pid=42, code=1, last_lines=["MessageDeliveryError: x"])
    )
    return out


# The troubled run is small (22 connects, 26 deliveries): judged with a minimum it meets.
FEW_ENOUGH = with_overrides({"ratio_min_events": 20})


def test_text_report_leads_with_the_verdict_and_names_close_codes_and_failures() -> None:
    report = build_report(
        judged(troubled_session(), FEW_ENOUGH),
        FEW_ENOUGH,
        source="run.wsmon",
        header={"command": ["npm", "test"]},
    )
    text = render_text(report)
    lines = text.splitlines()
    assert lines[0].startswith("wsmon report: BREACH — breached: connect_success, delivery_success")
    assert "source run.wsmon  command: npm test" in lines[1]
    assert any(line.split()[:5] == ["1006", "Abnormal", "Closure", "12", "60.0"] for line in lines)
    assert any(line.split()[:6] == ["1005", "No", "Status", "Received", "8", "40.0"] for line in lines)
    assert "Delivery: 20 delivered, 6 failed, success 76.9 %" in text
    assert "msg_5" in text and "msg_0" not in text  # the last five failures only
    assert "2 failed to connect (refused 2)" in text
    assert "Server exit: server (pid 42) code 1" in text


def test_markdown_report_has_github_tables() -> None:
    markdown = render_markdown(build_report(judged(troubled_session(), FEW_ENOUGH), FEW_ENOUGH))
    assert markdown.startswith("## wsmon report: BREACH")
    assert "| 1006 | Abnormal Closure | 12 | 60.0 % |" in markdown
    assert "| 1005 | No Status Received | 8 | 40.0 % |" in markdown
    assert "| Connection not open | 6 |" in markdown
    assert "| Message delivery success | > 99.90 % | 76.9 % |" in markdown


DOCUMENTED_TOP = {
    "report_version",
    "session",
    "verdict",
    "counts",
    "figures",
    "close_codes",
    "delivery",
    "connections",
    "targets",
    "alerts",
    "markers",
    "exits",
    "log_counts",
    "trends",
    "probe",
    "warnings",
    "tests",
    "notes",
}
DOCUMENTED_FIGURE = {
    "figure",
    "label",
    "kind",
    "unit",
    "bound",
    "limit",
    "limit_text",
    "value",
    "verdict",
    "note",
    "count",
    "p50",
    "p95",
    "p99",
    "mean",
    "max",
    "numerator",
    "denominator",
    "peak",
    "last",
    "breached_during_run",
    "low",
    "high",
}


def test_json_report_has_the_documented_shape() -> None:
    report = build_report(judged(troubled_session(), FEW_ENOUGH), FEW_ENOUGH, source="run.wsmon")
    data = json.loads(render_json(report))
    assert set(data) == DOCUMENTED_TOP
    assert data["report_version"] == 1
    assert set(data["session"]) == {
        "source",
        "wsmon_version",
        "command",
        "started",
        "ended",
        "duration_s",
        "events",
    }
    assert data["session"]["started"] == "2025-06-15T15:06:40.000Z"
    assert all(set(f) == DOCUMENTED_FIGURE for f in data["figures"])
    assert data["close_codes"]["codes"][0] == {
        "code": 1006,
        "name": "Abnormal Closure",
        "count": 12,
        "share": 60.0,
        "cause": "no close frame: crash, killed process, network drop, TCP reset",
    }
    assert data["close_codes"]["closed_by"] == {"client": 8, "neither": 12}
    assert data["delivery"]["reasons"] == [{"name": "Connection not open", "count": 6}]
    assert data["connections"]["connect_fail_kinds"] == [{"name": "refused", "count": 2}]
    assert data["exits"][0]["last_lines"] == ["MessageDeliveryError: x"]
    assert data["log_counts"] == {"error": 1}
    # The Struct tree decodes back from its own JSON: the shape is the type.
    assert msgspec.json.decode(render_json(report), type=Report) == report


def test_json_turns_non_finite_numbers_into_null() -> None:
    report = build_report(State(), DEFAULT_LIMITS)
    assert report.delivery.success_percent is None  # no attempts: not NaN
    report.figures[0].value = math.nan
    report.figures[0].max = math.inf
    data = json.loads(render_json(report))
    assert (data["figures"][0]["value"], data["figures"][0]["max"]) == (None, None)


def test_render_dispatches_by_format_and_rejects_unknown_ones() -> None:
    report = build_report(judged(healthy_session()), DEFAULT_LIMITS)
    assert render(report, "text") == render_text(report)
    assert render(report, "markdown") == render_markdown(report)
    assert json.loads(render(report, "json"))["verdict"] == "pass"
    with pytest.raises(ValueError, match="unknown report format 'xml'"):
        render(report, "xml")


# --- the tests of a `wsmon run` recording (issue 8) ------------------------------------------------


def _test(name: str, start: float, end: float, outcome: str, message: str = "") -> list[ev.Event]:
    return [
        ev.TestEvent(**at(start), name=name, phase="start"),
        ev.TestEvent(**at(end), name=name, phase="end", outcome=outcome, message=message),
    ]


def _ended(t: float, exit_code: int | None, ran: int | None, note: str = "") -> ev.Event:
    return ev.TestRunEnded(**at(t), command="npx jest --ci", exit_code=exit_code, ran=ran, note=note)


@pytest.mark.parametrize(
    ("events", "verdict", "reason"),
    [
        ([*_test("a::ok", 1, 2, "passed"), _ended(3, 0, 1)], "pass", ""),
        (
            [_ended(3, 1, 0, "the result files hold no test case")],
            "fail",
            "no tests ran (the result files hold no test case); the test command exited 1",
        ),
        (
            [_ended(3, 0, 0, "the pytest plugin reported no test")],
            "fail",
            "no tests ran (the pytest plugin reported no test)",
        ),
        (
            [_ended(3, None, None, "redis did not answer")],
            "fail",
            "the tests did not start (redis did not answer)",
        ),
        ([*_test("a::ok", 1, 2, "passed"), _ended(3, 2, 1)], "fail", "the test command exited 2"),
        # An older recording: no TestRunEnded, the outcomes alone judge.
        (
            [*_test("a::ok", 1, 2, "passed"), *_test("a::bad", 2, 3, "error", "boom")],
            "fail",
            "tests failed (1 error, 1 passed): a::bad",
        ),
    ],
)
def test_the_tests_verdict_comes_first(events: list[ev.Event], verdict: str, reason: str) -> None:
    report = build_report(fold(events), DEFAULT_LIMITS)
    assert report.tests is not None
    assert (report.tests.verdict, report.tests.reason) == (verdict, reason)
    line = verdict_line(report)
    if verdict == "fail":
        assert report.verdict == "fail" and report.exit_code == 1
        assert line.startswith(f"wsmon report: FAIL — {reason}")
    else:
        assert report.verdict != "fail" and report.exit_code == 0 and "FAIL" not in line


def test_failed_tests_and_a_breach_are_both_named_the_tests_first() -> None:
    events = [
        *_test("suite::drops", 1, 2, "failed", "expected 4, got 0"),
        ev.ProcessSample(**at(1.5), target="process", pid=1, cpu_percent=1.0, rss_bytes=900 * 1024 * 1024),
        _ended(3, 1, 1),
    ]
    report = build_report(fold(events), DEFAULT_LIMITS)
    assert verdict_line(report).startswith(
        "wsmon report: FAIL — tests failed (1 failed): suite::drops; the test command exited 1; "
        "breached: rss_mib"
    )
    data = json.loads(render_json(report))
    assert data["tests"]["tests"][0]["outcome"] == "failed" and data["tests"]["tests"][0]["start"]
    junit = render_junit(report)
    assert '<testsuite name="tests" tests="1" failures="1"' in junit
    assert '<testcase classname="suite" name="drops"' in junit
    text = render_text(report)
    assert "FAILED suite::drops — expected 4, got 0" in text


def test_a_session_without_tests_has_no_tests_section() -> None:
    report = build_report(fold([ev.Marker(**at(1), text="x")]), DEFAULT_LIMITS)
    assert report.tests is None and "\nTests\n" not in render_text(report)
