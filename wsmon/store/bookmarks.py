"""Replay bookmarks in a sidecar beside the recording: ``FILE.bookmarks.json``.

The recording itself is never written: a bookmark is the reader's own note, kept apart so a shared or
read-only recording can still be bookmarked (in memory) and a broken sidecar can be ignored whole.
Written atomically (a temporary file in the same directory, then a rename), so a crash leaves the old
sidecar or the new one, never half of one. Format: docs/recording-format.md, "Bookmarks sidecar".
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

SIDECAR_SUFFIX = ".bookmarks.json"
SIDECAR_VERSION = 1


@dataclass(frozen=True, order=True)
class Bookmark:
    """A place in a recording: after its first ``seq`` events, at replay time ``mono`` (wall: UTC)."""

    seq: int
    mono: float
    wall: float


def sidecar_path(recording: Path) -> Path:
    return recording.with_name(recording.name + SIDECAR_SUFFIX)


def load_bookmarks(recording: Path) -> tuple[list[Bookmark], str | None]:
    """The sidecar's bookmarks, sorted, and a one-line warning naming the file when it is unreadable
    (then no bookmarks). No sidecar is no bookmarks and no warning."""
    path = sidecar_path(recording)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError) as exc:
        return [], f"bookmarks ignored: cannot read {path}: {exc}"
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("version") != SIDECAR_VERSION:
            raise ValueError(f"expected an object with version {SIDECAR_VERSION}")
        entries = document["bookmarks"]
        if not isinstance(entries, list):
            raise ValueError("'bookmarks' is not a list")
        marks = [_bookmark(entry) for entry in entries]
    except (ValueError, KeyError, TypeError) as exc:
        return [], f"bookmarks ignored: {path} is malformed ({exc})"
    return sorted(set(marks)), None


def _bookmark(entry: object) -> Bookmark:
    if not isinstance(entry, dict):
        raise ValueError("a bookmark is not an object")
    seq, mono, wall = entry["seq"], entry["mono"], entry["wall"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"bad seq {seq!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (mono, wall)):
        raise ValueError("mono and wall must be numbers")
    return Bookmark(seq, float(mono), float(wall))


def save_bookmarks(recording: Path, marks: list[Bookmark]) -> None:
    """Replace the sidecar with ``marks``; OSError when its directory cannot be written."""
    path = sidecar_path(recording)
    document = {
        "version": SIDECAR_VERSION,
        "recording": recording.name,
        "bookmarks": [{"seq": m.seq, "mono": m.mono, "wall": m.wall} for m in sorted(marks)],
    }
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
