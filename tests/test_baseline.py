"""Baselines: sessions through the real reducer compared figure by figure; the CLI on real recordings."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import at, run_wsmon

from wsmon.core import events as ev
from wsmon.core.baseline import (
    IMPROVED,
    NO_DATA,
    REGRESSION,
    SAME,
    BaselineComparison,
    ToleranceError,
    compare,
    parse_tolerance,
    parse_tolerances,
)
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import Reducer
from wsmon.core.report import Report, build_report
from wsmon.render.baseline import render_json, render_markdown, render_text
from wsmon.store.format import new_header
from wsmon.store.writer import RecordingWriter

MIB = 1024 * 1024


def session_events(
    delivery_ms: float,
    *,
    delivery_failures: int = 0,
    connect_failures: int = 0,
    rss_mib: float = 100.0,
    seed: int = 1,
) -> list[ev.Event]:
    """Twenty seconds of a small healthy run: 40 connections, 400 deliveries at about ``delivery_ms``."""
    rng = random.Random(seed)
    out: list[ev.Event] = []
    for i in range(40):
        out.append(ev.ConnectionOpened(**at(i * 0.05), conn=f"c{i}", handshake_ms=5.0, source="server"))
        out.append(ev.LatencySample(**at(i * 0.05), kind="connect", ms=rng.uniform(4.0, 6.0)))
    out += [ev.ConnectFailed(**at(2.0), target="server", error="refused", kind="refused")] * connect_failures
    for s in range(3, 23):
        out.append(ev.Traffic(**at(s + 0.5), conn="c0", msgs_in=20, msgs_out=20))
        out.append(
            ev.ProcessSample(
                **at(float(s)), target="server", pid=7, cpu_percent=20.0, rss_bytes=int(rss_mib * MIB)
            )
        )
        for j in range(20):
            ms = delivery_ms * rng.uniform(0.8, 1.2)
            out.append(ev.LatencySample(**at(s + j * 0.05), kind="delivery", ms=ms))
    for k in range(delivery_failures):
        out.append(
            ev.DeliveryFailed(
                **at(10.0 + k * 0.01), message_id=f"m{k}", conn="c1", reason="Connection not open"
            )
        )
    out.append(ev.Traffic(**at(24.0), conn="c0", msgs_in=1, msgs_out=0))  # completes the last second
    return sorted(out, key=lambda e: e.mono)


def report_of(events: list[ev.Event], source: str = "") -> Report:
    reducer = Reducer()
    reducer.apply_many(events)
    return build_report(reducer.state, DEFAULT_LIMITS, source=source)


def verdicts(comparison: BaselineComparison) -> dict[str, str]:
    return {row.figure: row.verdict for row in comparison.figures}


def test_slower_delivery_is_a_regression_and_exits_1() -> None:
    old = report_of(session_events(10.0), "old.wsmon")
    new = report_of(session_events(30.0, seed=2), "new.wsmon")
    comparison = compare(new, old)
    assert verdicts(comparison) == {
        "connect_ms": SAME,
        "delivery_ms": REGRESSION,
        "delivery_success": SAME,
        "e2e_ms": NO_DATA,
        "rss_mib": SAME,
        "cpu_percent": SAME,
        "messages_per_s": SAME,
        "connect_success": SAME,
    }
    row = comparison.regressions[0]
    assert row.old == pytest.approx(11.9, rel=0.05) and row.new == pytest.approx(35.7, rel=0.05)
    assert row.change_percent == pytest.approx(200, rel=0.1)
    assert comparison.verdict == REGRESSION and comparison.exit_code == 1
    text = render_text(comparison)
    assert text.splitlines()[0] == "wsmon baseline: REGRESSION — regressed: delivery_ms (against old.wsmon)"
    assert "Delivery latency p95" in text and "regression" in text


def test_same_latencies_are_the_same_and_exit_0() -> None:
    comparison = compare(report_of(session_events(10.0, seed=3)), report_of(session_events(10.0, seed=4)))
    assert verdicts(comparison)["delivery_ms"] == SAME
    assert REGRESSION not in verdicts(comparison).values()
    assert comparison.exit_code == 0


def test_faster_delivery_is_an_improvement_and_exits_0() -> None:
    comparison = compare(report_of(session_events(10.0)), report_of(session_events(30.0)))
    assert verdicts(comparison)["delivery_ms"] == IMPROVED
    assert comparison.verdict == "pass" and comparison.exit_code == 0


def test_a_per_figure_tolerance_allows_the_change() -> None:
    old, new = report_of(session_events(10.0)), report_of(session_events(30.0))
    assert compare(new, old, {"delivery_ms": 3.0}).exit_code == 0
    assert compare(new, old, default_tolerance=3.0).exit_code == 0
    assert compare(new, old, {"rss_mib": 3.0}, default_tolerance=3.0).exit_code == 0
    assert compare(new, old, {"delivery_ms": 0.5}, default_tolerance=3.0).exit_code == 1


def test_higher_memory_is_worse() -> None:
    comparison = compare(report_of(session_events(10.0, rss_mib=130)), report_of(session_events(10.0)))
    assert verdicts(comparison)["rss_mib"] == REGRESSION


@pytest.mark.parametrize(
    ("old_failures", "new_failures", "expected"),
    [
        (0, 0, SAME),
        (0, 1, REGRESSION),  # 100 % → 99.75 %: 0.25 points of failures, above the 0.1-point floor
        (1, 10, REGRESSION),  # 99.75 % → 97.6 %: ten times the failures, though only 2 points of success
        (10, 1, IMPROVED),
        (10, 10, SAME),
        (10, 11, SAME),  # 2.4 % → 2.7 % failures: within 10 % of the old failure rate
    ],
)
def test_success_ratios_compare_the_failure_rate(old_failures: int, new_failures: int, expected: str) -> None:
    old = report_of(session_events(10.0, delivery_failures=old_failures))
    new = report_of(session_events(10.0, delivery_failures=new_failures))
    row = next(r for r in compare(new, old).figures if r.figure == "delivery_success")
    assert row.verdict == expected, row.note


def test_a_tiny_failure_rate_from_a_perfect_baseline_is_not_infinitely_worse() -> None:
    # 100 % → 99.99 %: the failure rate grows from 0 to 0.01 points, under the 0.1-point floor.
    old = report_of(session_events(10.0))
    new = msgspec.structs.replace(
        old,
        figures=[
            msgspec.structs.replace(f, value=99.99) if f.figure == "delivery_success" else f
            for f in old.figures
        ],
    )
    row = next(r for r in compare(new, old).figures if r.figure == "delivery_success")
    assert row.verdict == SAME
    assert row.change_percent is None  # relative to a failure rate of zero: not a number
    assert row.note == "failures 0.00 % → 0.01 %"


def test_a_figure_measured_in_only_one_run_is_no_data() -> None:
    old = report_of([e for e in session_events(10.0) if not isinstance(e, ev.ProcessSample)])
    comparison = compare(report_of(session_events(10.0)), old)
    row = next(r for r in comparison.figures if r.figure == "rss_mib")
    assert row.verdict == NO_DATA and row.note == "not measured in old"
    assert comparison.exit_code == 0


def test_too_few_latency_samples_are_not_compared() -> None:
    few = [e for e in session_events(10.0) if not (isinstance(e, ev.LatencySample) and e.kind == "connect")]
    few += [ev.LatencySample(**at(1.0), kind="connect", ms=5.0)]
    slow = [e for e in session_events(10.0) if not (isinstance(e, ev.LatencySample) and e.kind == "connect")]
    slow += [ev.LatencySample(**at(1.0), kind="connect", ms=50.0)]
    row = next(r for r in compare(report_of(slow), report_of(few)).figures if r.figure == "connect_ms")
    assert row.verdict == NO_DATA
    assert "too few" in row.note


def test_markdown_and_json_renderings() -> None:
    comparison = compare(report_of(session_events(30.0)), report_of(session_events(10.0)))
    md = render_markdown(comparison)
    assert md.startswith("## wsmon baseline: REGRESSION")
    assert "| Delivery latency p95 |" in md
    data = json.loads(render_json(comparison))
    assert data["verdict"] == REGRESSION
    assert {row["figure"] for row in data["figures"]} >= {"delivery_ms", "connect_success"}
    row = next(r for r in data["figures"] if r["figure"] == "e2e_ms")
    assert row["old"] is None and row["verdict"] == NO_DATA


def test_tolerance_validation_names_where() -> None:
    assert parse_tolerance(0.2, "x") == 0.2
    assert parse_tolerances({"delivery_ms": 0.2}, "x") == {"delivery_ms": 0.2}
    for bad in (-0.1, True, "10%", float("nan")):
        with pytest.raises(ToleranceError, match=r"^wsmon.toml \[baseline\].tolerance: expected a fraction"):
            parse_tolerance(bad, "wsmon.toml [baseline].tolerance")
    with pytest.raises(ToleranceError, match=r"\[baseline.tolerances\].db_ms: unknown figure"):
        parse_tolerances({"db_ms": 0.2}, "wsmon.toml [baseline.tolerances]")
    with pytest.raises(ToleranceError, match="expected a table"):
        parse_tolerances(0.2, "wsmon.toml [baseline].tolerances")


# --- the CLI on real recordings --------------------------------------------------------------------


def record(path: Path, events: list[ev.Event]) -> Path:
    with RecordingWriter(path, new_header("pytest")) as writer:
        writer.extend(events)
    return path


@pytest.fixture
def recordings(tmp_path: Path) -> dict[str, Path]:
    return {
        "fast": record(tmp_path / "fast.wsmon", session_events(10.0)),
        "slow": record(tmp_path / "slow.wsmon", session_events(30.0)),
    }


def test_cli_baseline_flags_the_regression(tmp_path: Path, recordings: dict[str, Path]) -> None:
    result = run_wsmon("report", str(recordings["slow"]), "--baseline", str(recordings["fast"]), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "wsmon baseline: REGRESSION — regressed: delivery_ms" in result.stdout
    same = run_wsmon("report", str(recordings["fast"]), "--baseline", str(recordings["fast"]), cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "wsmon baseline: PASS" in same.stdout


def test_cli_baseline_json_adds_a_baseline_key(tmp_path: Path, recordings: dict[str, Path]) -> None:
    args = ("report", str(recordings["slow"]), "--baseline", str(recordings["fast"]), "--format", "json")
    result = run_wsmon(*args, cwd=tmp_path)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["report_version"] == 1
    assert data["baseline"]["verdict"] == REGRESSION


def test_cli_tolerances_from_wsmon_toml(tmp_path: Path, recordings: dict[str, Path]) -> None:
    args = ("report", str(recordings["slow"]), "--baseline", str(recordings["fast"]))
    (tmp_path / "wsmon.toml").write_text(
        "[baseline]\ntolerance = 0.1\n[baseline.tolerances]\ndelivery_ms = 3.0\n"
    )
    assert run_wsmon(*args, cwd=tmp_path).returncode == 0
    (tmp_path / "wsmon.toml").write_text("[baseline.tolerances]\ndelivery_latency = 0.2\n")
    bad = run_wsmon(*args, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("wsmon: error: ")
    assert "wsmon.toml [baseline].tolerances.delivery_latency: unknown figure" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_cli_an_unknown_key_in_baseline_is_one_line(tmp_path: Path, recordings: dict[str, Path]) -> None:
    args = ("report", str(recordings["slow"]), "--baseline", str(recordings["fast"]))
    (tmp_path / "wsmon.toml").write_text("[baseline]\ntolerence = 0.2\n")
    bad = run_wsmon(*args, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr == (
        f"wsmon: error: {tmp_path / 'wsmon.toml'} [baseline].tolerence: unknown key; "
        "expected one of tolerance, tolerances\n"
    )


def test_cli_unreadable_baseline_exits_2(tmp_path: Path, recordings: dict[str, Path]) -> None:
    (tmp_path / "junk.wsmon").write_text("not a recording")
    for old in (tmp_path / "missing.wsmon", tmp_path / "junk.wsmon"):
        result = run_wsmon("report", str(recordings["fast"]), "--baseline", str(old), cwd=tmp_path)
        assert result.returncode == 2
        assert str(old) in result.stderr


# --- two real demo runs with different injected latency -------------------------------------------


@pytest.mark.slow
def test_real_demo_runs_with_more_slow_ackers_regress_delivery_latency(tmp_path: Path) -> None:
    """Two real demo runs, faults off, that differ only in injected ack latency: no client acks late
    in the baseline, a third of them ack 100–600 ms late in the new run. Both go at once to keep the
    test near 15 s."""
    runs = {"base": "0", "slow": "0.34"}
    demo = [sys.executable, "-m", "wsmon", "demo", "--headless", "--duration", "12", "--fault-rate", "0"]
    procs = {
        name: subprocess.Popen(
            [
                *demo,
                "--rate",
                "4",
                "--clients",
                "12",
                "--slow-acks",
                share,
                "--record",
                str(tmp_path / f"{name}.wsmon"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, share in runs.items()
    }
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=35)
        assert (tmp_path / f"{name}.wsmon").exists(), stderr
    result = run_wsmon(
        "report",
        str(tmp_path / "slow.wsmon"),
        "--baseline",
        str(tmp_path / "base.wsmon"),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    rows = {row["figure"]: row for row in json.loads(result.stdout)["baseline"]["figures"]}
    delivery = rows["delivery_ms"]
    assert delivery["verdict"] == REGRESSION, delivery
    assert delivery["change_percent"] > 100
