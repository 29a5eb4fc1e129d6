"""GatheringPipes on real pipes: gathered reads, the pipes' order kept, ends and timeouts."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time

import pytest

from wsmon.sources.pipe_reader import PIPE_BUFFER_BYTES, GatheringPipes


def _pipes(count: int) -> tuple[list[int], list[int]]:
    pairs = [os.pipe() for _ in range(count)]
    return [r for r, _ in pairs], [w for _, w in pairs]


async def test_lines_written_while_it_gathers_come_in_one_read() -> None:
    reads, (write,) = _pipes(1)
    pipes = GatheringPipes(reads, gather_s=0.2)
    try:
        os.write(write, b"first\n")
        assert await pipes.read(1.0) == [b"first\n"]
        started = time.monotonic()
        for n in range(50):  # fifty writes while the reader waits: one read takes them all
            os.write(write, b"line %d\n" % n)
        (chunk,) = await pipes.read(1.0)
        assert chunk == b"".join(b"line %d\n" % n for n in range(50))
        assert time.monotonic() - started >= 0.15  # it did wait for more to gather
    finally:
        pipes.close()
        os.close(write)


async def test_a_quiet_pipe_is_read_at_once() -> None:
    reads, (write,) = _pipes(1)
    pipes = GatheringPipes(reads, gather_s=5.0)
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.write, write, b"hello\n")
        started = time.monotonic()
        assert await pipes.read(2.0) == [b"hello\n"]
        assert time.monotonic() - started < 1.0  # no gathering before the first bytes
    finally:
        pipes.close()
        os.close(write)


async def test_pipes_are_read_in_the_order_given_and_each_end_is_told_once() -> None:
    reads, (out, err) = _pipes(2)
    pipes = GatheringPipes(reads, gather_s=0.01)
    try:
        os.write(out, b"stdout line\n")
        os.write(err, b"stderr line\n")
        assert await pipes.read(1.0) == [b"stdout line\n", b"stderr line\n"]
        os.close(err)
        assert await pipes.read(1.0) == [None, b""]
        assert pipes.open
        os.write(out, b"last\n")
        os.close(out)
        got = await pipes.read(1.0)
        assert got[0] == b"last\n" and got[1] is None
        assert await pipes.read(1.0) == [b"", None]
        assert not pipes.open
    finally:
        pipes.close()


async def test_nothing_within_the_timeout_raises_and_the_fd_is_left_watched_by_no_one() -> None:
    reads, (write,) = _pipes(1)
    pipes = GatheringPipes(reads)
    try:
        with pytest.raises(TimeoutError):
            await pipes.read(0.05)
        # The reader it added was removed: remove_reader finds none left to remove. (Adding one first,
        # as this test did, replaced whatever was there, so it could not fail.)
        assert not asyncio.get_running_loop().remove_reader(reads[0])
    finally:
        pipes.close()
        os.close(write)


def test_the_pipe_buffer_is_raised_where_the_system_allows() -> None:
    reads, (write,) = _pipes(1)
    try:
        GatheringPipes(reads)
        get_size = getattr(fcntl, "F_GETPIPE_SZ", None)
        if get_size is None:
            pytest.skip("this system cannot size pipes")
        with open("/proc/sys/fs/pipe-max-size") as limit:
            allowed = int(limit.read())
        assert fcntl.fcntl(reads[0], get_size) >= min(PIPE_BUFFER_BYTES, allowed)
    finally:
        os.close(reads[0])
        os.close(write)
