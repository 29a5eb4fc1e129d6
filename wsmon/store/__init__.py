"""Recordings: the writer, the reader, the replay engine and the JSON Lines export (file I/O only)."""

from wsmon.store.export import export_jsonl
from wsmon.store.format import (
    FORMAT_VERSION,
    SUFFIX,
    RecordedTarget,
    RecordingError,
    RecordingHeader,
    RecordingWriteError,
    new_header,
)
from wsmon.store.reader import Keyframe, RecordingReader
from wsmon.store.replay import SPEEDS, ReplayEngine
from wsmon.store.writer import RecordingWriter

__all__ = [
    "FORMAT_VERSION",
    "SPEEDS",
    "SUFFIX",
    "Keyframe",
    "RecordedTarget",
    "RecordingError",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriteError",
    "RecordingWriter",
    "ReplayEngine",
    "export_jsonl",
    "new_header",
]
