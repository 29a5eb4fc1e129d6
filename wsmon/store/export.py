"""Plain JSON Lines out of a recording, so that jq and grep work on it."""

from __future__ import annotations

from typing import Any, TextIO

import msgspec

from wsmon.core.events import to_dict
from wsmon.store.reader import RecordingReader

# JSON escapes the C0 controls but writes DEL and the C1 controls (0x9B is a one-byte CSI on some
# terminals) as they are; escaped, `cat` and `less` of an export are harmless and jq reads the same text.
_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _line(data: Any, encode: Any) -> str:
    return encode(data).decode().translate(_ESCAPES) + "\n"


def export_jsonl(reader: RecordingReader, out: TextIO) -> int:
    """Write the header, then one named-form event a line; returns the number of events written."""
    encode = msgspec.json.Encoder().encode
    header: dict[str, Any] = {"type": "header", **msgspec.to_builtins(reader.header)}
    out.write(_line(header, encode))
    count = 0
    for _first_seq, events in reader.iter_batches():
        out.write("".join(_line(to_dict(event), encode) for event in events))
        count += len(events)
    return count
