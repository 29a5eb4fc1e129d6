"""A saved log replayed on its own clock: `wsmon report server.log`, `wsmon import`, `wsmon replay`.

The logs are written by Python's real logging (tests/night_logger.py), its clock stepped through
logging's own API, so a "night" takes a second to write; the counts are the logger's own tally.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmon.core import events as ev
from wsmon.sources.logs.replay import LogStream, is_log_file
from wsmon.sources.logs.timestamps import LineClock, epoch_seconds, iso_seconds
from wsmon.store.reader import RecordingReader

NIGHT_LOGGER = Path(__file__).parent / "night_logger.py"
EVENING = 1796150000.0  # 2026-12-01 18:33:20 UTC
MINUTE = 60.0


def write_night(path: Path, style: str, *, start: float = EVENING, step: float = MINUTE, conns: int = 300,
                seed: int = 9) -> dict[str, Any]:  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(NIGHT_LOGGER), style, str(path), str(start), str(step), str(conns), str(seed)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )
    return json.loads(done.stdout)


def wsmon(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(cwd / "xdg"), "TZ": "UTC"}
    for name in ("WSMON_URL", "REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "wsmon", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )


def report_json(path: Path, *more: Path) -> dict[str, Any]:
    done = wsmon("report", path, *more, "--format", "json", cwd=path.parent)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def counts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "opened": report["connections"]["opened_total"],
        "closes": {str(c["code"]): c["count"] for c in report["close_codes"]["codes"]},
        "delivered": report["delivery"]["delivered"],
        "failed": report["delivery"]["failed"],
    }


def truth(tally: dict[str, Any]) -> dict[str, Any]:
    return {k: tally[k] for k in ("opened", "closes", "delivered", "failed")}


# --- the night's duration and counts, through the CLI ------------------------------------------------


@pytest.mark.parametrize(("style", "resolution"), [("json", 0.001), ("text", 0.002), ("syslog", 1.0)])
def test_report_of_a_nights_log_gives_the_nights_duration_and_counts(
    tmp_path: Path, style: str, resolution: float
) -> None:
    log = tmp_path / "server.log"
    tally = write_night(log, style)
    report = report_json(log)
    span = tally["last"] - tally["first"]
    assert span > 20 * 3600  # a night, written in a second
    assert report["session"]["duration_s"] == pytest.approx(span, abs=resolution)
    assert counts(report) == truth(tally)
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(tally["first"]))
    assert report["session"]["started"].startswith(started[: -1 if style == "syslog" else None])


def test_a_gzipped_log_reports_as_the_plain_one(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    tally = write_night(log, "json")
    packed = tmp_path / "server.log.1"  # a rotated name: gzip is told by its bytes, not its name
    packed.write_bytes(gzip.compress(log.read_bytes()))
    plain, zipped = report_json(log), report_json(packed)
    assert counts(zipped) == truth(tally)
    assert zipped["session"]["duration_s"] == plain["session"]["duration_s"]
    assert zipped["figures"] == plain["figures"]


def test_two_instances_merge_by_time(tmp_path: Path) -> None:
    """Two instances of one server, their nights overlapping, numbering their connections alike."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    tally_a = write_night(a, "json", conns=120, seed=1)
    tally_b = write_night(b, "text", start=EVENING + 3 * 3600, conns=150, seed=2)
    report = report_json(a, b)
    assert report["session"]["duration_s"] == pytest.approx(
        max(tally_a["last"], tally_b["last"]) - min(tally_a["first"], tally_b["first"]), abs=0.002
    )
    got = counts(report)
    assert got["opened"] == tally_a["opened"] + tally_b["opened"]  # c-1 of each is its own connection
    assert got["delivered"] == tally_a["delivered"] + tally_b["delivered"]
    assert got["failed"] == tally_a["failed"] + tally_b["failed"]
    for code in {*tally_a["closes"], *tally_b["closes"]}:
        assert got["closes"][code] == tally_a["closes"].get(code, 0) + tally_b["closes"].get(code, 0)
    assert {t["name"] for t in report["targets"]} == {"log1", "log2"}

    out = tmp_path / "both.wsmon"
    assert wsmon("import", a, b, "-o", out, cwd=tmp_path).returncode == 0
    with RecordingReader(out) as reader:
        monos = [e.mono for e in reader.iter_events()]
    assert monos == sorted(monos)  # one time line, not one log after the other


def test_import_round_trip_reports_the_same(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    write_night(log, "text", conns=400)
    out = tmp_path / "night.wsmon"
    done = wsmon("import", log, "-o", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from_log, from_recording = report_json(log), report_json(out)
    for report in (from_log, from_recording):
        del report["session"]["source"], report["session"]["command"]
    assert from_recording == from_log
    again = wsmon("import", log, "-o", out, cwd=tmp_path)  # never overwritten
    assert again.returncode == 2 and "already exists" in again.stderr


def test_headless_replay_of_a_log_is_its_report(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    tally = write_night(log, "json", conns=50)
    done = wsmon("replay", log, "--headless", cwd=tmp_path)
    assert f"Connections: {tally['opened']} opened" in done.stdout, done.stderr
    reported = wsmon("report", log, cwd=tmp_path)
    assert done.returncode == reported.returncode  # exits by the verdict, as report (docs/exit-codes.md)
    when = [line for line in reported.stdout.splitlines() if line.startswith("started ")]
    assert when and when[0] in done.stdout.splitlines()  # the same start, duration and event count


def test_a_recording_is_told_from_a_log_by_content(tmp_path: Path) -> None:
    log = tmp_path / "night.wsmon"  # a log with a recording's name is still a log
    write_night(log, "json", conns=5)
    assert is_log_file(log)
    out = tmp_path / "server.log"  # and a recording with a log's name is a recording
    assert wsmon("import", log, "-o", out, cwd=tmp_path).returncode == 0
    assert not is_log_file(out)
    refused = wsmon("import", out, "-o", tmp_path / "x.wsmon", cwd=tmp_path)
    assert refused.returncode == 2 and "not a log" in refused.stderr


def test_a_truncated_gzip_log_is_one_clear_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    write_night(log, "json", conns=200)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(gzip.compress(log.read_bytes())[:-200])
    done = wsmon("report", cut, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("wsmon: error: ") and str(cut) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# --- lines without a timestamp --------------------------------------------------------------------


def events_of(path: Path) -> list[ev.Event]:
    return list(LogStream(path))


def test_lines_without_a_timestamp_take_their_predecessors(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "starting router v1.2\n"  # before the first timestamp: takes the first one
        "2026-12-01 18:00:00,000 INFO [router] client c-1 connected from 10.0.0.1:4000\n"
        "2026-12-01 18:00:05,000 ERROR [router] could not send message m-1 to client c-1\n"
        "Traceback (most recent call last):\n"
        '  File "router.py", line 3, in send\n'
        "ConnectionError: connection not open\n"
        "GC pause 40 ms\n"  # a line on its own, no timestamp: its predecessor's
        "2026-12-01 19:00:00,000 INFO [router] client c-1 disconnected (code 1001)\n"
    )
    events = events_of(log)
    at = iso_seconds("2026-12-01T18:00:00")  # no offset: local time, as the logger wrote it
    assert events[0].wall == at  # TargetAdded: the log's first moment
    banner = next(e for e in events if isinstance(e, ev.LogLine) and "starting router" in e.text)
    assert banner.wall == at
    failure = next(e for e in events if isinstance(e, ev.DeliveryFailed))
    assert failure.wall == at + 5 and failure.message_id == "m-1"
    pause = next(e for e in events if isinstance(e, ev.LogLine) and "GC pause" in e.text)
    assert pause.wall == at + 5
    closed = next(e for e in events if isinstance(e, ev.ConnectionClosed))
    assert closed.duration_s == 3600 and closed.code == 1001


def test_a_log_without_any_timestamp_is_stamped_with_the_files_time_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        'info: Client connected {"connectionId":"c1"}\ninfo: Client disconnected {"connectionId":"c1"}\n'
    )
    os.utime(log, (EVENING, EVENING))
    stream = LogStream(log)
    events = list(stream)
    assert {e.wall for e in events} == {EVENING}
    assert stream.undated == stream.lines == 2
    done = wsmon("report", log, cwd=tmp_path)
    assert "no timestamp on any line" in done.stderr
    assert "1 opened" in done.stdout


# --- timestamps -----------------------------------------------------------------------------------

UTC_NOON = iso_seconds("2026-12-02T12:00:00+00:00")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"level":30,"time":1796220000000,"msg":"pino: epoch ms"}', 1796220000.0),
        ('{"ts":1796220000.25,"msg":"zap: epoch s"}', 1796220000.25),
        ('{"time":"1796220000123456","msg":"epoch us as text"}', 1796220000.123456),
        ('{"time":1796220000123456789,"msg":"epoch ns"}', 1796220000.123456789),
        ('{"timestamp":"2026-12-02T12:00:00.500Z","message":"winston"}', UTC_NOON + 0.5),
        ('{"time":"2026-12-02T13:00:00.000000001+01:00","msg":"slog"}', UTC_NOON),
        ('{"@timestamp":"2026-12-02T12:00:00Z","message":"ecs"}', UTC_NOON),
        ('{"asctime":"2026-12-02 12:00:00,250","message":"python-json-logger"}', UTC_NOON + 0.25),
        ("2026-12-02 12:00:00,250 INFO [router] logging", UTC_NOON + 0.25),
        ("2026-12-02T12:00:00.000001Z [info     ] structlog console", UTC_NOON + 0.000001),
        ("time=2026-12-02T12:00:00Z level=info msg=logfmt", UTC_NOON),
        ("ts=1796220000 level=info msg=logfmt-epoch", 1796220000.0),
        ("2026/12/02 12:00:00 go log", UTC_NOON),
        ('10.0.0.1 - - [02/Dec/2026:13:00:00 +0100] "GET /ws HTTP/1.1" 101', UTC_NOON),
        ("Dec  2 12:00:00 host router[7]: syslog", UTC_NOON),
        ("<134>Dec  2 12:00:00 host router[7]: syslog with priority", UTC_NOON),
        ("    at Socket.send (/app/node_modules/ws/lib/websocket.js:1:2)", None),
        ('info: Client connected {"connectionId":"c1"}', None),
        ('{"level":30,"time":12,"msg":"an uptime, not a date"}', None),
    ],
)
def test_timestamps_where_loggers_put_them(line: str, expected: float | None, monkeypatch: Any) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        got = LineClock(reference=UTC_NOON + 86_400).stamp(line)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert got == (pytest.approx(expected, abs=1e-6) if expected is not None else None)


def test_syslog_has_no_year_so_it_is_inferred_and_rolls_over() -> None:
    clock = LineClock(reference=iso_seconds("2027-01-01T06:00:00+00:00"))
    before = clock.stamp("Dec 31 23:59:59 host app: last of the year")
    after = clock.stamp("Jan  1 00:00:01 host app: first of the next")
    assert before is not None and after is not None
    assert after - before == pytest.approx(2.0, abs=3600 * 14)  # local time zone aside
    assert time.localtime(before).tm_year == 2026 and time.localtime(after).tm_year == 2027


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1.0e9, max_value=4.0e9, allow_nan=False))
def test_epoch_units_are_told_by_size(seconds: float) -> None:
    for scale in (1, 1e3, 1e6):
        assert epoch_seconds(seconds * scale) == pytest.approx(seconds, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1_000_000_000_000, max_value=4_000_000_000_000))
def test_iso_and_epoch_ms_agree(ms: int) -> None:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
    clock = LineClock()
    assert clock.stamp(json.dumps({"timestamp": text})) == pytest.approx(ms / 1000, abs=1e-6)
    assert clock.stamp(json.dumps({"time": ms})) == pytest.approx(ms / 1000, abs=1e-6)


# --- --follow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", [("--log", "-"), ("--log", "server.log", "--no-follow")])
def test_a_saved_log_without_follow_ends_at_the_end_of_input(tmp_path: Path, how: tuple[str, ...]) -> None:
    """A live attach reading only a saved log (stdin, or a file with --no-follow) ends with it."""
    log = tmp_path / "server.log"
    tally = write_night(log, "json", conns=40)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    for name in ("WSMON_URL", "REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    with log.open("rb") as saved:
        done = subprocess.run(
            [sys.executable, "-m", "wsmon", "attach", *how, "--headless"],
            cwd=tmp_path,
            env=env,
            stdin=saved,
            capture_output=True,
            text=True,
            timeout=60,  # without the end of input ending it, it would run until killed
        )
    assert done.returncode in (0, 1), done.stderr
    assert f"Connections: {tally['opened']} opened" in done.stdout


async def test_replay_follow_reads_a_log_on_its_own_clock_then_as_it_grows(tmp_path: Path) -> None:
    from wsmon.core.limits import DEFAULT_LIMITS
    from wsmon.logsession import LogFollowFeed, LogSession

    log = tmp_path / "server.log"
    tally = write_night(log, "text", conns=30)
    feed = LogFollowFeed(LogSession([log], DEFAULT_LIMITS), poll_interval=0.02)
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(20):
            while feed.state.opened_total < tally["opened"]:
                await asyncio.sleep(0.02)
        assert feed.state.duration_s == pytest.approx(tally["last"] - tally["first"], abs=0.002)
        with log.open("a") as out:  # the server goes on writing, an hour later
            out.write("2026-12-02 23:00:00,000 INFO [router] client c-999 connected from 10.0.0.9:4999\n")
        async with asyncio.timeout(20):
            while feed.state.opened_total < tally["opened"] + 1:
                await asyncio.sleep(0.02)
        assert feed.state.last_wall == iso_seconds("2026-12-02T23:00:00")  # local time, as written
        assert not task.done()  # it follows: the end of the file is not the end
    finally:
        feed.stop()
        await asyncio.wait_for(task, 5)


def test_replay_follow_is_for_one_log_in_the_dashboard(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    write_night(log, "json", conns=3)
    done = wsmon("replay", log, "--follow", "--headless", cwd=tmp_path)
    assert done.returncode == 2 and "--follow follows one log" in done.stderr
