"""What a recognised line is about, from its fields by role or else from its words: the connection,
the message id, the close code and who closed, the client's address, a duration, a latency. Pure.
"""

from __future__ import annotations

from typing import Any

from wsmon.core.events import Closer
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.lines import _Line
from wsmon.sources.logs.text import (
    _CLOSERS,
    _MESSAGE_ID,
    _MESSAGE_WORD,
    _TEXT_PEER,
    _close_context,
    _text_close_code,
    _text_conn,
)


def _text_of(value: Any) -> str:
    if type(value) is str and "\x1b" not in value:  # most ids: no colour to strip, no conversion
        return value.strip()
    return "" if value is None else vocab.text_of(value)


def _conn_of(line: _Line, *, bare_id: bool = True) -> str:
    """The connection a line is about; a bare ``id`` field counts only on lines about a connection."""
    found = line.roles.get("conn")
    if found is not None:
        return _text_of(found)
    if bare_id and line.record is not None and "id" in line.flat:
        value = line.flat["id"]
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return _text_conn(line.message, exclude_message_ids=True)


def _peer_of(line: _Line) -> str:
    """The client's address: a peer field (with the port field beside it, if any), or "from 1.2.3.4:5678"."""
    peer = _text_of(line.roles.get("peer"))
    port = line.flat.get("remotePort", line.flat.get("remote_port"))
    if peer and isinstance(port, int) and not isinstance(port, bool) and not peer.endswith(f":{port}"):
        return f"{peer}:{port}"
    if peer:
        return peer
    said = _TEXT_PEER.search(line.message)
    return f"{said.group('peer')}:{said.group('port')}" if said else ""


def _message_id(line: _Line) -> str:
    found = line.roles.get("message_id")
    if found is None and line.record is not None:
        found = line.flat.get("id")  # a bare "id" on a line about a delivery names the message
    if found is not None and not isinstance(found, bool | dict | list):
        return _text_of(found)
    matched = _MESSAGE_ID.search(line.message) or _MESSAGE_WORD.search(line.message)
    return matched.group(1).rstrip(".,;:") if matched else ""


def _close_code(line: _Line, *, close_words: bool) -> int | None:
    code = _as_close_code(line.roles.get("code"))
    if code is not None:
        return code
    if close_words or _close_context(line.message, line.lowered):
        code = _as_close_code(line.flat.get("code"))
        if code is not None:
            return code
    return _text_close_code(line.message, line.lowered)


def _closer(line: _Line) -> Closer:
    said = line.roles.get("closer")
    if said is not None:
        return _CLOSERS.get(_text_of(said).lower(), "unknown")
    return line.words.closer


def _duration_s(flat: dict[str, Any]) -> float | None:
    for key in ("duration_ms", "durationMs"):
        value = flat.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) / 1000.0
    return None


def _latency_ms(roles: dict[str, Any]) -> float | None:
    """A latency from the fields (``latency_ms``, ``took`` …); the words' is ``_Words.said_ms``."""
    for role, scale in (("latency_ms", 1.0), ("latency_s", 1000.0)):
        value = roles.get(role)
        if not isinstance(value, int | float | str):
            continue
        try:
            number = float(str(value).removesuffix("ms")) if isinstance(value, str) else float(value)
        except ValueError:
            continue
        if number >= 0:
            return number * scale
    return None


def _as_close_code(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 1000 <= value <= 4999:
        return value
    return None


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default
