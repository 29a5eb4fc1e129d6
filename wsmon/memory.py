"""Keep a long session's RSS flat: large buffers come from mmap, not from the heap.

glibc raises its mmap threshold (from 128 KiB, up to 32 MiB) each time a large mmapped block is freed.
wsmon frees several-MiB blocks regularly (zstd's workspace for each recording keyframe), and after the
first one every 256 KiB buffer asyncio allocates for a socket read comes from the heap and is shrunk in
place to the bytes read. With thousands of reads a second beside long-lived objects, the heap's free
space then grows without bound: the fault soak (bench/soak.py) saw RSS climb 0.11 MiB/s for 300 s
while the live Python objects stayed flat. Setting the threshold explicitly turns glibc's adjustment
off, so those buffers stay mmapped and go back to the system when freed. The trim threshold (how much
free space the heap's top may keep) is set back to its default too: glibc raised it along with the
other (to twice it), and a large free top serves big requests from the heap whatever the mmap
threshold says.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers in glibc's <malloc.h>
THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value of both


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap and trim thresholds at 128 KiB for this process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl and others: no mallopt, and no such threshold to pin
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    pinned = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES))
    libc.malloc_trim(0)  # what the raised thresholds kept on the heap goes back now
    return pinned
