"""Success ratios judged on enough evidence, and alert headlines that lead with the current value.

Pure rules of the judge and the report, so a fixed event script at reducer level: nothing here needs
a socket. The demo run that shows the same on a real server is tests/test_demo_ratio_alerts.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from helpers import at
from hypothesis import given
from hypothesis import strategies as st

from wsmon.config import ConfigError, load_settings
from wsmon.core import events as ev
from wsmon.core.limits import (
    BREACH,
    DEFAULT_LIMITS,
    RATIO_MIN_EVENTS,
    TOO_FEW,
    Limit,
    LimitError,
    judge,
    shown_value,
    wilson_interval,
    with_overrides,
)
from wsmon.core.reducer import Reducer
from wsmon.core.report import Report, build_report
from wsmon.core.state import State
from wsmon.outputs.alerts import alert_payload
from wsmon.render.report import render_json, render_junit, render_markdown, render_text

LIMITS = {limit.figure: limit for limit in DEFAULT_LIMITS}
MIB = 1024 * 1024


def deliveries(start: float, ok: int, failed: int) -> list[ev.Event]:
    """``ok`` deliveries then ``failed`` failures, 10 ms apart."""
    out: list[ev.Event] = [
        ev.LatencySample(**at(start + i * 0.01), kind="delivery", ms=3.0) for i in range(ok)
    ]
    out += [
        ev.DeliveryFailed(
            **at(start + (ok + i) * 0.01), message_id=f"m{start}-{i}", conn="c1", reason="Connection not open"
        )
        for i in range(failed)
    ]
    return out


def run_judged(
    events: list[ev.Event], limits: tuple[Limit, ...] = DEFAULT_LIMITS
) -> tuple[State, list[ev.Event]]:
    """Apply each event, then judge and apply the alerts, as a live session's tick does."""
    reducer = Reducer()
    alerts: list[ev.Event] = []
    for event in events:
        reducer.apply(event)
        produced = judge(reducer.state, limits, event.wall, event.mono)
        reducer.apply_many(produced)
        alerts += produced
    return reducer.state, alerts


def figure(report: Report, name: str) -> Any:
    return next(f for f in report.figures if f.figure == name)


# --- the judge -----------------------------------------------------------------------------------


def test_two_failed_deliveries_raise_nothing_and_say_too_few_to_judge() -> None:
    # The real-log case: "Message delivery success 0.0 % … breach" on 0 of 2 deliveries.
    state, alerts = run_judged(deliveries(0.0, ok=0, failed=2))
    assert alerts == []
    assert shown_value(state, LIMITS["delivery_success"]) == "n = 2, too few to judge"


def test_the_first_failure_among_a_few_deliveries_raises_nothing() -> None:
    # The demo case: the success alert fired on the very first failure.
    state, alerts = run_judged(deliveries(0.0, ok=30, failed=1))
    assert alerts == []
    assert shown_value(state, LIMITS["delivery_success"]) == "n = 31, too few to judge"


def test_enough_attempts_clearly_below_the_limit_breach() -> None:
    state, alerts = run_judged(deliveries(0.0, ok=180, failed=20))
    raised = [a for a in alerts if isinstance(a, ev.AlertRaised)]
    assert [(a.figure, a.level) for a in raised] == [("delivery_success", BREACH)]
    (alert,) = raised
    # Raised as soon as the evidence was sure: at the minimum, with the failures that were in by then.
    assert alert.message.startswith("Message delivery success ")
    assert "(limit > 99.90 %)" in alert.message
    assert state.alerts["delivery_success"].level == BREACH
    assert shown_value(state, LIMITS["delivery_success"]) == "90.0 %"


def test_a_point_below_the_limit_whose_interval_reaches_it_is_not_a_breach() -> None:
    # 1 failure in 1,000 is 99.90 %, at the limit of "> 99.9 %", but 95 % sure of nothing.
    state, alerts = run_judged(deliveries(0.0, ok=999, failed=1))
    assert alerts == []
    low, high = wilson_interval(999, 1000)
    assert low < 0.999 < high
    report = build_report(state, DEFAULT_LIMITS)
    judged = figure(report, "delivery_success")
    assert judged.verdict == "ok"  # the interval's upper end, 99.99 %, is clear of the warn line
    assert (round(judged.low, 2), round(judged.high, 2)) == (99.35, 99.99)
    assert judged.note == "95 % interval 99.35 % to 99.99 %: 1,000 attempts are too few to call it breach"


def test_a_breach_is_called_once_the_interval_is_wholly_below_the_limit() -> None:
    # 10 failures in 1,000: 99.0 %, and the interval's upper end (99.5 %) is below 99.9 %.
    _state, alerts = run_judged(deliveries(0.0, ok=990, failed=10))
    assert [(a.figure, a.level) for a in alerts if isinstance(a, ev.AlertRaised)] == [
        ("delivery_success", BREACH)
    ]
    assert wilson_interval(990, 1000)[1] < 0.999


def test_connect_success_is_judged_the_same_way() -> None:
    refused = [ev.ConnectFailed(**at(0.1 * i), target="ws", kind="refused") for i in range(10)]
    state, alerts = run_judged(refused)
    assert alerts == []
    assert shown_value(state, LIMITS["connect_success"]) == "n = 10, too few to judge"
    opened = [ev.ConnectionOpened(**at(1 + 0.01 * i), conn=f"c{i}") for i in range(90)]
    state, alerts = run_judged(refused + opened)
    assert [(a.figure, a.level) for a in alerts if isinstance(a, ev.AlertRaised)] == [
        ("connect_success", BREACH)
    ]


# --- the Wilson interval -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "attempts", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I, method 4
    # (score interval with continuity correction).
    [(81, 263, 0.2535, 0.3682), (15, 148, 0.0598, 0.1644), (0, 20, 0.0, 0.2005), (1, 29, 0.0018, 0.1963)],
)
def test_wilson_interval_matches_the_published_values(
    successes: int, attempts: int, low: float, high: float
) -> None:
    got = wilson_interval(successes, attempts)
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


@given(
    st.integers(min_value=1, max_value=100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
)
def test_wilson_interval_holds_the_observed_rate(case: tuple[int, int]) -> None:
    successes, attempts = case
    low, high = wilson_interval(successes, attempts)
    assert 0.0 <= low <= successes / attempts <= high <= 1.0


@given(st.integers(min_value=RATIO_MIN_EVENTS, max_value=1_000_000))
def test_one_failure_never_breaches_once_the_minimum_is_met(attempts: int) -> None:
    # With the minimum met, a lone failure cannot put the interval below 99.9 % however few attempts.
    assert wilson_interval(attempts - 1, attempts)[1] > 0.999


# --- the minimum is configurable beside the limits -----------------------------------------------


def test_ratio_min_events_sets_the_minimum_of_both_ratios_only() -> None:
    limits = {limit.figure: limit for limit in with_overrides({"ratio_min_events": 20.0, "rss_mib": 256})}
    assert limits["connect_success"].min_events == limits["delivery_success"].min_events == 20
    assert limits["rss_mib"].value == 256.0
    _, alerts = run_judged(deliveries(0.0, ok=15, failed=10), tuple(limits.values()))
    assert [a.figure for a in alerts] == ["delivery_success"]  # 25 attempts meet a minimum of 20


@pytest.mark.parametrize("raw", [0, -5, 2.5, True, "50", float("inf")])
def test_a_bad_minimum_is_one_clear_line(raw: Any) -> None:
    with pytest.raises(LimitError) as raised:
        with_overrides({"ratio_min_events": raw}, where="wsmon.toml [limits]")
    assert str(raised.value) == (
        f"wsmon.toml [limits].ratio_min_events: expected a whole number of attempts, at least 1, got {raw!r}"
    )


# --- the report ----------------------------------------------------------------------------------


def test_every_report_format_says_too_few_to_judge_and_none_calls_it_pass_or_breach() -> None:
    state, _ = run_judged(deliveries(0.0, ok=1, failed=1))
    report = build_report(state, DEFAULT_LIMITS)
    judged = figure(report, "delivery_success")
    assert (judged.verdict, judged.value, judged.numerator, judged.denominator) == (TOO_FEW, None, 1, 2)
    assert judged.note == "needs 100 attempts"
    # Delivery latency held, but the run is not called a pass while a ratio could not be judged.
    assert (report.verdict, report.exit_code) == (TOO_FEW, 0)

    text = render_text(report)
    assert text.splitlines()[0].startswith(
        "wsmon report: TOO FEW TO JUDGE — too few to judge: delivery_success (1 ok, 1 too few to judge, "
    )
    row = next(line for line in text.splitlines() if line.strip().startswith("Message delivery success"))
    assert "n = 2, too few to judge" in row and "too few to judge" in row.split("1/2")[1]
    assert "Delivery: 1 delivered, 1 failed, success n = 2, too few to judge" in text
    assert "success 50.0 %" not in text

    markdown = render_markdown(report)
    assert "| Message delivery success | > 99.90 % | n = 2, too few to judge |" in markdown
    assert "| too few to judge | needs 100 attempts |" in markdown

    data = json.loads(render_json(report))
    row_json = next(f for f in data["figures"] if f["figure"] == "delivery_success")
    assert (row_json["verdict"], row_json["value"], row_json["denominator"]) == ("too few to judge", None, 2)
    assert data["verdict"] == "too few to judge" and data["counts"]["too few to judge"] == 1

    suite = ET.fromstring(render_junit(report)).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    case = next(c for c in suite.findall("testcase") if c.get("name") == "Message delivery success")
    skipped = case.find("skipped")
    assert skipped is not None and "n = 2, too few to judge" in (skipped.get("message") or "")


def test_a_run_with_nothing_but_too_few_attempts_is_neither_a_pass_nor_a_failure() -> None:
    refused = [ev.ConnectFailed(**at(0.1 * i), target="ws", kind="refused") for i in range(2)]
    state, _ = run_judged(refused)
    report = build_report(state, DEFAULT_LIMITS)
    assert (report.verdict, report.exit_code) == (TOO_FEW, 0)
    assert render_text(report).startswith(
        "wsmon report: TOO FEW TO JUDGE — too few to judge: connect_success "
        "(1 too few to judge, 9 no data; wsmon saw no client traffic)"
    )
    assert json.loads(render_json(report))["verdict"] == "too few to judge"


def test_a_breach_recorded_on_two_deliveries_by_an_older_wsmon_is_not_a_breach_now() -> None:
    # Recordings made before this rule carry the false alert; the report does not inherit it.
    events = [
        *deliveries(0.0, ok=0, failed=2),
        ev.AlertRaised(**at(0.5), figure="delivery_success", level="breach", value=0.0, limit=99.9),
    ]
    reducer = Reducer()
    reducer.apply_many(events)
    report = build_report(reducer.state, DEFAULT_LIMITS)
    assert figure(report, "delivery_success").verdict == TOO_FEW
    assert report.exit_code == 0


def stale_alert_state() -> State:
    """Delivery success breached at 50.0 % 41 minutes ago, and 87.8 % over the session now."""
    reducer = Reducer()
    reducer.apply_many(deliveries(0.0, ok=1, failed=1))
    reducer.apply(
        ev.AlertRaised(**at(0.5), figure="delivery_success", level="breach", value=50.0, limit=99.9)
    )
    reducer.apply_many(deliveries(2460.0, ok=877, failed=121))
    return reducer.state


def test_report_alerts_lead_with_the_current_value_then_worst_and_raised_at() -> None:
    report = build_report(stale_alert_state(), DEFAULT_LIMITS)
    (row,) = report.alerts.active
    assert (row.now, row.worst, row.value) == (87.8, 50.0, 50.0)
    expected = (
        "BREACH Message delivery success 87.8 % (limit > 99.90 %) · worst 50.0 % · raised at 50.0 % (since "
    )
    assert expected in render_text(report)
    assert expected in render_markdown(report)
    data = json.loads(render_json(report))["alerts"]["active"][0]
    assert (data["now"], data["now_text"], data["worst"], data["value"]) == (87.8, "87.8 %", 50.0, 50.0)
    assert data["headline"].startswith("Message delivery success 87.8 %")


# --- the alert payload ---------------------------------------------------------------------------


def test_a_re_raised_alert_leads_with_its_current_value_and_names_the_earlier_worst() -> None:
    def rss(mono: float, mib: float) -> ev.ProcessSample:
        return ev.ProcessSample(**at(mono), target="server", pid=1, cpu_percent=1.0, rss_bytes=int(mib * MIB))

    samples = [rss(0, 600), rss(1, 100), rss(2, 520)]  # breach at 600, clear, breach again at 520
    _, alerts = run_judged(samples)
    raised = [a for a in alerts if isinstance(a, ev.AlertRaised)]
    assert [a.value for a in raised] == [600.0, 520.0]
    text = alert_payload(raised[-1])["text"]
    assert text == "wsmon: BREACH Server memory (RSS) 520 MiB (limit < 512 MiB) · worst 600 MiB"


def test_ratio_min_events_comes_from_wsmon_toml_and_a_bad_one_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "wsmon.toml").write_text("[limits]\nratio_min_events = 20\n")
    limits = {limit.figure: limit for limit in load_settings(cwd=tmp_path).limits}
    assert limits["delivery_success"].min_events == 20
    assert limits["delivery_success"].value == 99.9
    flagged = {limit.figure: limit for limit in load_settings(["ratio_min_events=7"], cwd=tmp_path).limits}
    assert flagged["connect_success"].min_events == 7  # the flag wins over wsmon.toml

    (tmp_path / "wsmon.toml").write_text("[limits]\nratio_min_events = 0.5\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(cwd=tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'wsmon.toml'} [limits].ratio_min_events: expected a whole number of attempts, "
        "at least 1, got 0.5"
    )


def test_worst_is_never_shown_better_than_the_current_value() -> None:
    # Breached early at about 99 %, then it got worse: 80.0 % now. "worst 99.0 %" would be a lie.
    early = deliveries(0.0, ok=190, failed=10)
    _, alerts = run_judged(early)
    (raised,) = alerts
    assert isinstance(raised, ev.AlertRaised) and 98.0 < raised.value < 99.5
    reducer = Reducer()
    reducer.apply_many([*early, raised, *deliveries(10.0, ok=130, failed=70)])
    (row,) = build_report(reducer.state, DEFAULT_LIMITS).alerts.active
    assert (round(row.now, 1), round(row.worst, 1), row.value) == (80.0, 80.0, raised.value)
    assert row.headline.startswith(
        "Message delivery success 80.0 % (limit > 99.90 %) · worst 80.0 % · raised at "
    )
