"""Plain JSON Lines out of a recording, so that jq and grep work on it."""

from __future__ import annotations

from typing import Any, TextIO

import msgspec

from wsmon.core.events import to_dict
from wsmon.store.reader import RecordingReader


def export_jsonl(reader: RecordingReader, out: TextIO) -> int:
    """Write the header, then one named-form event a line; returns the number of events written."""
    encode = msgspec.json.Encoder().encode
    header: dict[str, Any] = {"type": "header", **msgspec.to_builtins(reader.header)}
    out.write(encode(header).decode())
    out.write("\n")
    count = 0
    for _first_seq, events in reader.iter_batches():
        out.write("".join(encode(to_dict(event)).decode() + "\n" for event in events))
        count += len(events)
    return count
