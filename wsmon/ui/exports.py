"""Files the dashboard writes when asked (a connection's events, the view): a new name, never over a file.

The names are made only of letters, digits, '.', '_' and '-' (anything else in a connection id from the
wire becomes '_'), so what is written stays in the directory it was meant for.
"""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


def new_path(directory: Path, stem: str, suffix: str = ".jsonl") -> Path:
    """``<stem><suffix>`` in ``directory``, or ``<stem>-2<suffix>`` … when that exists."""
    stem = _UNSAFE_IN_NAME.sub("_", stem)[:100]
    path = directory / f"{stem}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}{suffix}"
    return path


def write_new(path: Path, data: bytes) -> str | None:
    """Write ``data`` to a file that must not exist yet; None, or the one-line reason it failed."""
    try:
        # 'x': never over a file that appeared since new_path looked.
        with path.open("xb") as out:
            out.write(data)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None


__all__ = ["new_path", "write_new"]
