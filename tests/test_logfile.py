"""Following real log files like tail -F (appends, rotation, truncation, partial lines, a missing file),
stack-trace folding, and log lines piped in on stdin."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from services import Collector, running

from wsmon.core import events as ev
from wsmon.sources.logs.folding import LineSplitter, StackFolder
from wsmon.sources.logs.source import LogFileSource, StdinLogSource

POLL = 0.02


def _texts(collector: Collector) -> list[str]:
    return [e.text for e in collector.of(ev.LogLine)]  # type: ignore[attr-defined]


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


async def _line(collector: Collector, text: str) -> ev.LogLine:
    found = await collector.wait_for(ev.LogLine, lambda e: e.text == text)  # type: ignore[attr-defined]
    assert isinstance(found, ev.LogLine)
    return found


async def _caught_up(source: LogFileSource, path: Path) -> None:
    """Until the source has read everything the file holds now."""
    async with asyncio.timeout(5):
        while source.position != path.stat().st_size:
            await asyncio.sleep(POLL / 2)


async def test_follows_appends_from_the_end_and_holds_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("old line that was there before\n")
    source = LogFileSource(path, target="api", poll_interval=POLL)
    collector = Collector()
    async with running(source, collector):
        added = await collector.wait_for(ev.TargetAdded)
        assert (added.kind, added.address) == ("log", str(path))  # type: ignore[attr-defined]
        await collector.wait_for(ev.TargetUp)
        _append(path, json.dumps({"level": 50, "msg": "connect ECONNREFUSED 127.0.0.1:5432"}) + "\n")
        log = await _line(collector, "connect ECONNREFUSED 127.0.0.1:5432")
        assert (log.level, log.source) == ("error", "api")

        _append(path, "first half, ")
        await _caught_up(source, path)
        assert not any("first half" in t for t in _texts(collector))  # held until its newline
        _append(path, "second half\n")
        await _line(collector, "first half, second half")
        assert "old line that was there before" not in _texts(collector)


async def test_from_start_reads_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("one\ntwo\n")
    collector = Collector()
    async with running(LogFileSource(path, poll_interval=POLL, from_start=True), collector):
        await _line(collector, "two")
    assert _texts(collector) == ["one", "two"]


async def test_rotation_by_rename_reads_the_old_tail_then_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("")
    source = LogFileSource(path, poll_interval=POLL)
    collector = Collector()
    async with running(source, collector):
        await collector.wait_for(ev.TargetUp)
        _append(path, "before rotation\n")
        await _line(collector, "before rotation")
        _append(path, "last words of the old file\n")
        replacement = tmp_path / "server.log.new"
        replacement.write_text("first line of the new file\n")
        os.rename(path, tmp_path / "server.log.1")
        os.rename(replacement, path)
        await _line(collector, "first line of the new file")
        _append(path, "second line of the new file\n")
        await _line(collector, "second line of the new file")
    assert _texts(collector) == [
        "before rotation",
        "last words of the old file",
        "first line of the new file",
        "second line of the new file",
    ]


async def test_truncation_while_following_reads_again_from_the_top(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("")
    source = LogFileSource(path, poll_interval=POLL)
    collector = Collector()
    async with running(source, collector):
        await collector.wait_for(ev.TargetUp)
        _append(path, "a fairly long line written before the file is truncated\n")
        await _line(collector, "a fairly long line written before the file is truncated")
        with path.open("w") as f:  # copytruncate: same inode, size 0
            f.write("short\n")
        await _line(collector, "short")
        _append(path, "and on\n")
        await _line(collector, "and on")
    assert _texts(collector)[-2:] == ["short", "and on"]


async def test_missing_file_is_down_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    collector = Collector()
    async with running(LogFileSource(path, poll_interval=POLL), collector):
        down = await collector.wait_for(ev.TargetDown)
        assert (down.error, down.kind) == ("no such file", "missing")  # type: ignore[attr-defined]
        path.write_text("hello from a new file\n")  # a file that appears later is read from its start
        await collector.wait_for(ev.TargetUp)
        await _line(collector, "hello from a new file")
        path.unlink()
        await collector.wait_for(ev.TargetDown, after=len(collector.events) - 1)
    assert [type(e) for e in collector.events if not isinstance(e, ev.LogLine)] == [
        ev.TargetAdded,
        ev.TargetDown,
        ev.TargetUp,
        ev.TargetDown,
    ]


async def test_a_stack_trace_in_the_file_is_one_error_event(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("")
    collector = Collector()
    async with running(LogFileSource(path, poll_interval=POLL), collector):
        await collector.wait_for(ev.TargetUp)
        _append(
            path,
            "MessageDeliveryError: Message delivery failed: msg_5 - Connection not open\n"
            "    at Router.deliver (/app/router.js:42:11)\n"
            "    at async Promise.all (index 0)\n"
            "server still running\n",
        )
        await _line(collector, "server still running")
        _append(path, "Error: connect ETIMEDOUT 10.0.0.9:5432\n")  # nothing follows: flushed when idle
        started = time.monotonic()
        await _line(collector, "Error: connect ETIMEDOUT 10.0.0.9:5432")
        assert time.monotonic() - started < 3
    failed = collector.of(ev.DeliveryFailed)
    assert len(failed) == 1 and failed[0].message_id == "msg_5"  # type: ignore[attr-defined]
    trace = collector.of(ev.LogLine)[0]
    assert isinstance(trace, ev.LogLine) and trace.level == "error" and trace.text.count("\n") == 2


def test_stack_folder_rules() -> None:
    folder = StackFolder(max_lines=4)
    assert folder.feed("plain line") == ["plain line"]
    assert folder.feed("ERROR:root:boom") == []
    assert folder.feed("Traceback (most recent call last):") == []
    assert folder.feed('  File "x.py", line 1, in <module>') == []
    assert folder.feed("ValueError: boom") == []
    assert folder.feed("next") == [
        "ERROR:root:boom\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: boom",
        "next",
    ]
    assert folder.feed("Error: x") == []
    for _ in range(3):
        assert folder.feed("    at f (a.js:1:1)") == []
    # Bounded: the fifth line starts over.
    assert folder.feed("    at g (a.js:2:2)") == [
        "Error: x" + "\n    at f (a.js:1:1)" * 3,
        "    at g (a.js:2:2)",
    ]


def test_line_splitter_holds_partials_and_decodes_badly_encoded_bytes() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r\nb") == ["a"]
    assert splitter.feed(b"c\n\xffd\n") == ["bc", "\ufffdd"]
    assert splitter.feed(b"tail") == []
    assert splitter.flush() == ["tail"]


async def test_stdin_pipe_until_end_of_input() -> None:
    read_end, write_end = os.pipe()
    collector = Collector()
    source = StdinLogSource(target="stdin", fd=read_end)
    task = asyncio.create_task(source.run(collector))
    try:
        os.write(write_end, b"\x1b[32minfo\x1b[39m: listening on 3001\n")
        await _line(collector, "info: listening on 3001")
        os.write(write_end, b"Error: connect ECONNREFUSED 127.0.0.1:6379\n")  # held, flushed when idle
        refused = await _line(collector, "Error: connect ECONNREFUSED 127.0.0.1:6379")
        assert refused.level == "error"
        os.write(write_end, b"no newline at the end")
        os.close(write_end)
        write_end = -1
        await asyncio.wait_for(task, 5)  # the end of the input ends the source, quietly
    finally:
        if write_end >= 0:
            os.close(write_end)
        task.cancel()
        os.close(read_end)
    assert _texts(collector)[-1] == "no newline at the end"
    assert [type(e) for e in collector.events][:2] == [ev.TargetAdded, ev.TargetUp]
    assert not collector.of(ev.TargetDown)


async def test_stdin_redirected_from_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "saved.log"
    path.write_text('{"level":"warn","message":"Invalid message format","conn":"c1"}\nplain\n')
    collector = Collector()
    with path.open("rb") as f:
        await asyncio.wait_for(StdinLogSource(fd=f.fileno()).run(collector), 5)
    assert _texts(collector) == ["Invalid message format", "plain"]


async def test_without_follow_a_file_is_read_from_its_start_to_its_end_then_the_source_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "server.log"
    path.write_text("first line\nsecond line\npartial last line")
    collector = Collector()
    source = LogFileSource(path, target="api", poll_interval=POLL, follow=False)
    await asyncio.wait_for(source.run(collector), 5)  # ends at the end of input, by itself
    assert _texts(collector) == ["first line", "second line", "partial last line"]
    assert not collector.of(ev.TargetDown)

    missing = Collector()
    await asyncio.wait_for(LogFileSource(tmp_path / "nope.log", follow=False).run(missing), 5)
    assert [e.error for e in missing.of(ev.TargetDown)] == ["no such file or directory"]  # type: ignore[attr-defined]


async def test_stdin_from_a_file_with_follow_reads_on_as_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "saved.log"
    path.write_text("before\n")
    collector = Collector()
    with path.open("rb") as f:
        task = asyncio.create_task(
            StdinLogSource(fd=f.fileno(), follow=True, poll_interval=POLL).run(collector)
        )
        try:
            await _line(collector, "before")
            _append(path, "appended later\n")
            await _line(collector, "appended later")
            assert not task.done()  # the end of the file so far is not the end: it is followed
        finally:
            task.cancel()
