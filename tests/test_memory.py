"""A live session keeps large buffers out of glibc's heap, so its RSS stays flat over hours.

glibc raises its mmap threshold each time a large mmapped block is freed; a recording's keyframe (zstd
frees a workspace of several MiB) did that, and from then on every 256 KiB socket-read buffer came
from the heap and fragmented it (the fault soak, bench/soak.py, saw RSS grow 0.11 MiB/s for 300 s).
Checked in a fresh interpreter: the threshold is process-wide."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = r"""
import asyncio, ctypes, sys
from pathlib import Path
from wsmon.session import Session

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def from_mmap(size):
    before = libc.mallinfo2().hblkhd
    block = bytearray(size)  # what a socket read of asyncio's allocates
    return libc.mallinfo2().hblkhd - before >= size

# (Importing wsmon may already have raised the threshold: large blocks come and go at import too.)
session = Session([], title="memory", record=Path(sys.argv[1]), duration=1.0)
asyncio.run(session.run())  # closing the recording writes a keyframe, through zstd
print("mmapped" if from_mmap(256 * 1024) else "heap")
"""


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018 - glibc 2.33 or newer
    except (OSError, AttributeError):
        return False
    return True


@pytest.mark.skipif(not _has_mallinfo2(), reason="glibc only: other C libraries have no such threshold")
def test_socket_read_buffers_stay_out_of_the_heap_after_a_keyframe(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "session.wsmon")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "mmapped"
