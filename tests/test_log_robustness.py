"""Issue 10 item 2: one log line must not kill a log source. A line that cannot be decoded is kept as a
plain line; a source that fails anyway is shown DOWN with the error, never UP."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from services import Collector, running

from wsmon.core import events as ev
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.source import LogFileSource, StdinLogSource

DEEP = '{"a":' * 10_000 + "1" + "}" * 10_000  # msgspec raises RecursionError on this
POLL = 0.02


def test_a_line_nested_ten_thousand_deep_is_kept_as_a_plain_line() -> None:
    parser = LogParser("api", lambda: (1.0, 2.0))
    explained = parser.explain(DEEP)
    [log] = explained.events
    assert isinstance(log, ev.LogLine) and log.text.startswith('{"a":{"a":')
    assert "RecursionError" in explained.why
    # The parser goes on with the next line as if nothing happened.
    [closed] = parser.parse('{"level":"info","msg":"client disconnected","connId":"c1","code":1000}')
    assert isinstance(closed, ev.ConnectionClosed) and closed.conn == "c1"


async def test_file_source_survives_a_deep_line_and_reads_every_later_line(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("")
    collector = Collector()
    async with running(LogFileSource(path, poll_interval=POLL), collector):
        await collector.wait_for(ev.TargetUp)
        with path.open("a") as f:
            f.write(DEEP + "\n")
            f.write('{"level":"warn","msg":"after the deep line","connectionId":"c9"}\n')
        after = await collector.wait_for(ev.LogLine, lambda e: e.text == "after the deep line")  # type: ignore[attr-defined]
        assert after.fields == {"connectionId": "c9"}  # type: ignore[attr-defined]
    assert not collector.of(ev.TargetDown)
    assert any(e.text.startswith('{"a":') for e in collector.of(ev.LogLine))  # type: ignore[attr-defined]


async def test_stdin_source_survives_a_deep_line() -> None:
    read_end, write_end = os.pipe()
    collector = Collector()
    task = asyncio.create_task(StdinLogSource(fd=read_end).run(collector))
    try:
        os.write(write_end, (DEEP + "\nstill reading\n").encode())
        os.close(write_end)
        write_end = -1
        await asyncio.wait_for(task, 10)  # ends at the end of the input, not on the deep line
    finally:
        if write_end >= 0:
            os.close(write_end)
        task.cancel()
        os.close(read_end)
    assert [e.text for e in collector.of(ev.LogLine)][-1] == "still reading"  # type: ignore[attr-defined]
    assert not collector.of(ev.TargetDown)


async def test_a_file_source_that_fails_is_down_with_the_error_and_resumes_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "server.log"
    path.write_text("")
    source = LogFileSource(path, poll_interval=POLL)
    collector = Collector()
    calls = 0
    real_poll = source._poll

    async def failing_once(lines: object, emit: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk on fire")
        await real_poll(lines, emit)  # type: ignore[arg-type]

    source._poll = failing_once  # type: ignore[method-assign]
    task = asyncio.create_task(source.run(collector))
    try:
        await collector.wait_for(ev.TargetUp)
        down = await collector.wait_for(ev.TargetDown)
        assert "disk on fire" in down.error  # type: ignore[attr-defined]
        assert isinstance(task.exception(), OSError) if task.done() else True
        await asyncio.wait({task}, timeout=2)
        assert task.done()  # the session's guard restarts it; here, a second run() does
        ups_before = len(collector.of(ev.TargetUp))
        with path.open("a") as f:
            f.write("written while it was down\n")
        task = asyncio.create_task(source.run(collector))
        await collector.wait_for(ev.LogLine, lambda e: e.text == "written while it was down")  # type: ignore[attr-defined]
        assert len(collector.of(ev.TargetUp)) == ups_before + 1  # up again only once it reads again
        assert "I/O operation on closed file" not in " ".join(
            e.text
            for e in collector.of(ev.LogLine)  # type: ignore[attr-defined]
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
