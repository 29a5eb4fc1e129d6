"""Following a recording while it is written (wsmon.follow_feed, `wsmon replay --follow FILE`): on real
SQLite files written by a RecordingWriter in the test, and by a real `wsmon demo --headless --record`
session that two dashboards follow at once."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import Clock, clean_env, run_wsmon, wait_until
from ui_support import widget_text

from wsmon.core import events as ev
from wsmon.core.reducer import Reducer
from wsmon.follow_feed import FollowFeed
from wsmon.store import RecordingWriter, new_header
from wsmon.store.format import RecordingError
from wsmon.store.reader import RecordingReader
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import ConnectionsTable, HeaderBar


class Writing:
    """A recording being written as a live session writes it: apply, append, flush with the State."""

    def __init__(self, path: Path, *, keyframe_every: int = 4) -> None:
        header = new_header("wsmon attach ws://h/", extra={"title": "attach · ws://h/"})
        self.writer = RecordingWriter(path, header, keyframe_every=keyframe_every)
        self.reducer = Reducer()
        self.clock = Clock()

    def commit(self, *events: ev.Event) -> None:
        for event in events:
            self.reducer.apply(event)
            self.writer.append(event)
        self.writer.flush(self.reducer.state)

    def opens(self, *conns: str) -> None:
        self.commit(
            *(ev.ConnectionOpened(**self.clock(), conn=c, peer=f"10.0.0.1:{i}") for i, c in enumerate(conns))
        )

    def close(self) -> None:
        self.writer.close(self.reducer.state)


def test_a_follower_starts_at_the_latest_state_and_applies_each_commit(tmp_path: Path) -> None:
    writing = Writing(tmp_path / "live.wsmon")
    writing.opens("c1", "c2", "c3", "c4", "c5")  # a keyframe at 5 (every 4): the start is keyframe + fold
    writing.opens("c6")
    feed = FollowFeed(tmp_path / "live.wsmon", quiet_s=60)
    assert feed.state.seq == 6 and set(feed.state.connections) == {f"c{i}" for i in range(1, 7)}
    assert feed.engine.position == 6 and feed.mode == "live" and not feed.paused
    assert feed.title == "attach · ws://h/ (shared)" and feed.notice == ""

    writing.opens("c7", "c8")
    assert feed.state.seq == 6  # nothing is applied until the feed looks
    assert feed.poll() == 2
    assert feed.state == writing.reducer.state


def test_pause_and_going_back_leave_the_live_edge_and_space_returns_to_it(tmp_path: Path) -> None:
    writing = Writing(tmp_path / "live.wsmon")
    writing.opens("c1", "c2")
    feed = FollowFeed(tmp_path / "live.wsmon", quiet_s=60)
    feed.toggle_pause()
    assert feed.mode == "replay" and feed.paused
    writing.opens("c3")
    writing.commit(ev.ConnectionClosed(**writing.clock(), conn="c1", code=1006, closed_by="neither"))
    feed.poll()
    assert feed.state.seq == 2 and feed.progress == 0.5  # held where it was; the recording went on
    feed.toggle_pause()
    assert feed.mode == "live" and feed.state == writing.reducer.state

    feed.step(-2)
    assert feed.mode == "replay" and feed.state.seq == 2
    # Anomalies are looked for in batches committed after the first look too.
    assert feed.next_anomaly(1) is not None and feed.state.seq == 4
    writing.commit(ev.ConnectionClosed(**writing.clock(), conn="c2", code=1011, closed_by="server"))
    feed.poll()
    label = feed.next_anomaly(1)
    assert label is not None and "c2" in label and feed.state.seq == 5
    feed.toggle_pause()
    assert feed.mode == "live" and feed.state.seq == 5


def test_a_closed_recording_shows_ended_and_a_silent_one_how_long_it_has_been_silent(tmp_path: Path) -> None:
    writing = Writing(tmp_path / "live.wsmon")
    writing.opens("c1")
    feed = FollowFeed(tmp_path / "live.wsmon", quiet_s=0.2)
    assert feed.notice == "" and not feed.ended
    time.sleep(0.3)
    feed.poll()
    assert re.fullmatch(r"no new events for \d+ s", feed.notice) and not feed.ended
    writing.opens("c2")
    writing.close()
    feed.poll()  # the last batch
    assert feed.state.seq == 2
    feed.poll()  # then the writer's close
    assert feed.ended and feed.notice == "ended: the session closed its recording"
    assert RecordingReader(tmp_path / "live.wsmon").closed_wall() is not None
    # A finished recording opened afterwards has ended from the start.
    assert FollowFeed(tmp_path / "live.wsmon").ended


async def test_the_dashboard_shows_the_follower_live_then_behind_then_ended(tmp_path: Path) -> None:
    writing = Writing(tmp_path / "live.wsmon")
    writing.opens("c1", "c2")
    feed = FollowFeed(tmp_path / "live.wsmon", poll_s=0.05, quiet_s=60)
    app = WsmonApp(feed, refresh_hz=10)
    async with app.run_test(size=(160, 50)) as pilot:

        async def until(done: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + 10
            while not done():
                assert time.monotonic() < deadline, what
                await pilot.pause(0.05)
            app.refresh_from_state()
            await pilot.pause()

        writing.opens("c3")
        await until(lambda: feed.state.seq == 3, "the follower applying the new batch")
        header = app.query_one(HeaderBar).text
        assert "attach · ws://h/ (shared)" in header and "LIVE" in header and "REPLAY" not in header
        assert "c3" in widget_text(app.query_one(ConnectionsTable))
        await pilot.press("space")
        assert "REPLAY" in app.query_one(HeaderBar).text and "PAUSED" in app.query_one(HeaderBar).text
        await pilot.press("space")
        writing.close()
        await until(lambda: feed.ended, "the follower seeing the writer close")
        header = app.query_one(HeaderBar).text
        assert "LIVE" in header and "ended: the session closed its recording" in header


@contextlib.contextmanager
def demo_recording(tmp_path: Path, seconds: int) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A real `wsmon demo --headless --record` session (its server, tap and clients) writing FILE."""
    path = tmp_path / "demo.wsmon"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsmon",
            "demo",
            "--headless",
            "--clients",
            "6",
            "--duration",
            str(seconds),
            "--record",
            str(path),
        ],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:

        def readable() -> bool:
            try:
                RecordingReader(path).close()
            except RecordingError:
                return False
            return True

        wait_until(readable, 30, "the demo's recording")
        yield path, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.slow
async def test_two_dashboards_following_a_real_session_show_the_same_connections(tmp_path: Path) -> None:
    with demo_recording(tmp_path, 8) as (path, proc):
        feeds = [FollowFeed(path, poll_s=0.1), FollowFeed(path, poll_s=0.1)]
        apps = [WsmonApp(feed, refresh_hz=4) for feed in feeds]
        async with apps[0].run_test(size=(160, 50)) as one, apps[1].run_test(size=(160, 50)) as two:
            await one.pause(1.0)
            for app in apps:
                app.refresh_from_state()
                header = app.query_one(HeaderBar).text
                assert "demo · ws://127.0.0.1:" in header and "(shared)" in header and "LIVE" in header
            deadline = time.monotonic() + 60
            while not all(feed.ended for feed in feeds) and time.monotonic() < deadline:
                await one.pause(0.2)
            assert all(feed.ended for feed in feeds), "the followers never saw the session end"
            assert proc.wait(30) in (0, 1)  # the demo's verdict: 1 when a fault it injects breaches
            await two.pause(0.3)
            tables = []
            for app in apps:
                app.refresh_from_state()
                await (one if app is apps[0] else two).pause()
                assert "ended" in app.query_one(HeaderBar).text
                tables.append(widget_text(app.query_one(ConnectionsTable)))
        final = RecordingReader(path)
        expected = final.state_at_seq(final.event_count)
        a, b = (feed.state for feed in feeds)
        assert a.seq == b.seq == final.event_count > 0
        assert set(a.connections) == set(b.connections) == set(expected.connections)
        assert len(a.connections) > 6  # the demo's clients, not only wsmon's probes
        assert a.close_codes == b.close_codes == expected.close_codes
        for figure in ("opened_total", "msgs_in", "msgs_out", "delivered", "delivery_failed"):
            assert getattr(a, figure) == getattr(b, figure) == getattr(expected, figure), figure
        assert a == b == expected  # every figure: the same events folded the same way
        assert tables[0] == tables[1]


def _not_a_recording(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wsmon"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "directory":
        path.mkdir()
    elif kind == "other-sqlite":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA application_id=1234")
            db.execute("CREATE TABLE t (x)")
            db.commit()
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "directory", "other-sqlite"])
def test_following_what_is_not_a_recording_is_the_error_replay_gives(tmp_path: Path, kind: str) -> None:
    path = _not_a_recording(tmp_path, kind)
    env = clean_env(tmp_path)
    followed = run_wsmon("replay", "--follow", str(path), env=env, timeout=30)
    replayed = run_wsmon("replay", str(path), env=env, timeout=30)
    assert followed.returncode == 2 and followed.stdout == ""
    assert followed.stderr == replayed.stderr and followed.stderr.count("\n") == 1
    assert followed.stderr.startswith(f"wsmon: error: {path}")


def test_follow_with_headless_is_refused_in_one_line(tmp_path: Path) -> None:
    writing = Writing(tmp_path / "live.wsmon")
    writing.opens("c1")
    result = run_wsmon(
        "replay", "--follow", "--headless", str(tmp_path / "live.wsmon"), env=clean_env(tmp_path)
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--headless" in result.stderr
