"""Replay by time: the replay bar, ← / → by a span ([ ] change it), , . by one event, and bookmarks (m, b / B,
ctrl+p) kept in the recording's sidecar — on a real recording made here."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers import T0, at

from wsmon.core import events as ev
from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.reducer import fold
from wsmon.replay_feed import ReplayFeed
from wsmon.store import RecordingWriter, new_header
from wsmon.store import bookmarks as sidecar
from wsmon.store.bookmarks import Bookmark, load_bookmarks, save_bookmarks, sidecar_path
from wsmon.ui.app import WsmonApp
from wsmon.ui.format import wall_clock
from wsmon.ui.widgets import ReplayBar
from wsmon.ui.widgets.replay_bar import dated_times, span_label, track

EVENTS: list[ev.Event] = [
    ev.ConnectionOpened(**at(1.0), conn="c1", peer="10.0.0.1:1"),
    ev.ConnectionOpened(**at(2.0), conn="c2", peer="10.0.0.1:2"),
    ev.ConnectionClosed(**at(10.0), conn="c1", code=1000, closed_by="client"),
    ev.ConnectionClosed(**at(20.0), conn="c2", code=1006, closed_by="neither"),
    ev.Marker(**at(25.0), text="half way"),
    ev.DeliveryFailed(**at(30.0), message_id="msg_9", reason="Connection not open"),
    ev.Marker(**at(40.0), text="the end"),
]
AT_20S = wall_clock(T0 + 20.0, utc=False)  # local time with its zone until z


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "time.wsmon"
    writer = RecordingWriter(path, new_header(limits=list(DEFAULT_LIMITS)))
    writer.extend(EVENTS)
    writer.close(fold(EVENTS))
    return path


def paused_app(recording: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ReplayFeed, WsmonApp, list[str]]:
    feed = ReplayFeed(recording)
    feed.engine.paused = True
    app = WsmonApp(feed)
    toasts: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **_: toasts.append(str(message)))
    return feed, app, toasts


def test_the_bar_s_parts() -> None:
    assert span_label(1.0) == "1 s" and span_label(10.0) == "10 s" and span_label(60.0) == "1 min"
    assert track(0.0, 5.0, 10.0, [10.0], 11) == "━━━━━●────⚑"
    assert track(0.0, 0.0, 0.0, [], 3) == "━━●"  # a recording of one instant is all played


def test_the_bar_dates_the_start_and_every_time_when_the_recording_crosses_midnight() -> None:
    midnight = 1_750_032_000.0  # 2025-06-16T00:00:00Z
    one_day = dated_times(midnight - 30, midnight - 20, midnight - 10, utc=True)
    assert one_day == ("2025-06-15 23:59:30 UTC", "23:59:40 UTC", "23:59:50 UTC")
    two_days = dated_times(midnight - 30, midnight - 20, midnight + 10, utc=True)
    assert two_days == ("2025-06-15 23:59:30 UTC", "2025-06-15 23:59:40 UTC", "2025-06-16 00:00:10 UTC")


async def test_left_and_right_step_by_the_span_and_brackets_change_it(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed, app, _ = paused_app(recording, monkeypatch)
    async with app.run_test(size=(160, 50)) as pilot:
        bar = app.query_one(ReplayBar)
        assert (
            wall_clock(T0 + 1, False) in bar.text
            and wall_clock(T0 + 40, False) in bar.text
            and "step 1 s" in bar.text
        )
        await pilot.press("right")  # 1 s: from the first event (1 s) to 2 s
        assert feed.engine.position == 2 and feed.engine.clock == 2.0
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert feed.span_s == 10.0 and "step 10 s" in bar.text
        await pilot.press("right")
        assert feed.engine.position == 3 and feed.engine.clock == 12.0
        await pilot.press("right")
        await pilot.pause()
        assert feed.engine.position == 4 and f"now {wall_clock(T0 + 22, False)}" in bar.text
        await pilot.press("z")
        await pilot.pause()
        assert "now 15:07:02 UTC" in bar.text and "15:06:41 UTC" in bar.text and "15:07:20 UTC" in bar.text
        assert "2025-06-15 15:06:41 UTC" in bar.text and bar.text.count("2025-06-15") == 1  # once: one day
        await pilot.press("z")
        await pilot.press("left")
        assert feed.engine.position == 3 and feed.engine.clock == 12.0
        await pilot.press("right_square_bracket", "right_square_bracket")  # kept at 1 min
        await pilot.pause()
        assert feed.span_s == 60.0 and "step 1 min" in bar.text
        await pilot.press("right")
        assert feed.engine.position == 7 and feed.engine.clock == 40.0  # the end, not past it
        await pilot.press("left")
        assert feed.engine.position == 1 and feed.engine.clock == 1.0  # the start, its first event shown
        await pilot.press(*["left_square_bracket"] * 3)
        assert feed.span_s == 1.0
        assert feed.paused
        await pilot.press("q")


async def test_comma_and_full_stop_step_one_event(recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    feed, app, _ = paused_app(recording, monkeypatch)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("full_stop", "full_stop", "full_stop")
        assert feed.engine.position == 3 and feed.engine.clock == 10.0
        await pilot.press("comma")
        assert feed.engine.position == 2
        await pilot.press("q")


async def test_m_bookmarks_into_the_sidecar_the_palette_lists_it_and_b_jumps(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed, app, toasts = paused_app(recording, monkeypatch)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("n")  # the 1006 close at 20 s
        await pilot.press("m")
        assert toasts[-1] == f"bookmark {AT_20S}"
        saved = json.loads(sidecar_path(recording).read_text())
        assert saved["bookmarks"] == [{"seq": 4, "mono": 20.0, "wall": T0 + 20.0}]
        await pilot.pause()
        assert "⚑ 1" in app.query_one(ReplayBar).text
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert f"bookmark {AT_20S}" in titles and "Add marker: a bookmark (replay)" in titles
        await pilot.press("comma", "comma")
        await pilot.press("ctrl+p", *f"bookmark {AT_20S}")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert feed.engine.position == 4 and feed.engine.clock == 20.0
        await pilot.press("b")  # nothing later
        assert feed.engine.position == 4 and toasts[-1] == "no later bookmark"
        await pilot.press("comma", "B")
        assert feed.engine.position == 3 and toasts[-1] == "no earlier bookmark"
        await pilot.press("b")
        assert feed.engine.position == 4 and toasts[-1] == f"bookmark {AT_20S}"
        await pilot.press("q")
    # A new dashboard on the same recording finds it.
    again, app, _ = paused_app(recording, monkeypatch)
    assert again.bookmarks() == [T0 + 20.0]
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("b")
        assert again.engine.position == 4
        await pilot.press("q")


async def test_a_malformed_sidecar_is_named_ignored_and_left_as_it_is(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = hashlib.sha256(recording.read_bytes()).hexdigest()
    sidecar_path(recording).write_text("{not json")
    feed, app, toasts = paused_app(recording, monkeypatch)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert len(toasts) == 1 and str(sidecar_path(recording)) in toasts[0] and "\n" not in toasts[0]
        assert feed.bookmarks() == []
        await pilot.press("n", "m")  # kept in memory; the broken file is someone's to mend
        assert feed.bookmarks() == [T0 + 20.0] and "left as it is" in toasts[-1]
        await pilot.press("q")
    assert sidecar_path(recording).read_text() == "{not json"
    assert hashlib.sha256(recording.read_bytes()).hexdigest() == before


async def test_a_read_only_directory_keeps_the_bookmark_in_memory(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording.parent.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: refuse as the file system would

        def refuse(*_: object, **__: object) -> tuple[int, str]:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(sidecar.tempfile, "mkstemp", refuse)
    try:
        feed, app, toasts = paused_app(recording, monkeypatch)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("n", "m")
            assert feed.bookmarks() == [T0 + 20.0]
            assert toasts[-1].startswith("bookmark kept for this session only") and "\n" not in toasts[-1]
            await pilot.press("comma", "b")
            assert feed.engine.position == 4
            await pilot.press("q")
        assert not sidecar_path(recording).exists()
        assert [p.name for p in recording.parent.iterdir()] == [recording.name]  # no temporary left
    finally:
        recording.parent.chmod(0o755)


def test_the_sidecar_round_trips_and_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    recording = tmp_path / "r.wsmon"
    assert load_bookmarks(recording) == ([], None)
    marks = [Bookmark(4, 20.0, T0 + 20.0), Bookmark(1, 1.0, T0 + 1.0)]
    save_bookmarks(recording, marks)
    assert load_bookmarks(recording) == (sorted(marks), None)
    for bad in ('{"version": 2, "bookmarks": []}', '{"version": 1, "bookmarks": [{"seq": -1}]}', "[]"):
        sidecar_path(recording).write_text(bad)
        found, warning = load_bookmarks(recording)
        assert found == [] and warning is not None and str(sidecar_path(recording)) in warning
