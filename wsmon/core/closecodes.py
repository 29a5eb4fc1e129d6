"""WebSocket close codes with their names and what usually causes each (RFC 6455, IANA registry)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class CloseClass(StrEnum):
    """What kind of end a close code tells of."""

    NORMAL = "normal"
    GOING_AWAY = "going away"
    PROTOCOL = "protocol"  # a frame, payload or extension the other side could not accept
    NO_STATUS = "no status"
    ABNORMAL = "abnormal"  # no close frame at all
    POLICY = "policy"
    SERVER_ERROR = "server error"
    RESTART = "restart"
    OVERLOAD = "overload"
    GATEWAY = "gateway"
    TLS = "tls"
    LIBRARY = "library"  # 3000-3999, registered by libraries and frameworks
    APPLICATION = "application"  # 4000-4999, the application's own
    UNKNOWN = "unknown"


# The ends a healthy server has: anything else is worth a look (and a stop when stepping a replay).
EXPECTED_CLASSES = frozenset({CloseClass.NORMAL, CloseClass.GOING_AWAY})


class CloseCode(NamedTuple):
    name: str
    cause: str
    kind: CloseClass


CLOSE_CODES: dict[int, CloseCode] = {
    1000: CloseCode("Normal Closure", "the peer finished and closed on purpose", CloseClass.NORMAL),
    1001: CloseCode(
        "Going Away",
        "server shutting down, page navigated away, or a heartbeat timeout",
        CloseClass.GOING_AWAY,
    ),
    1002: CloseCode("Protocol Error", "a malformed frame or a protocol rule broken", CloseClass.PROTOCOL),
    1003: CloseCode(
        "Unsupported Data", "a message type the endpoint does not accept (e.g. binary)", CloseClass.PROTOCOL
    ),
    1005: CloseCode(
        "No Status Received",
        "a close frame without a status code (a bare close() call)",
        CloseClass.NO_STATUS,
    ),
    1006: CloseCode(
        "Abnormal Closure",
        "no close frame: crash, killed process, network drop, TCP reset",
        CloseClass.ABNORMAL,
    ),
    1007: CloseCode(
        "Invalid Payload Data", "text that is not UTF-8, or data the application rejects", CloseClass.PROTOCOL
    ),
    1008: CloseCode(
        "Policy Violation", "authentication or registration rejected, policy broken", CloseClass.POLICY
    ),
    1009: CloseCode("Message Too Big", "a message above the endpoint's size limit", CloseClass.PROTOCOL),
    1010: CloseCode(
        "Mandatory Extension",
        "the client required an extension the server did not offer",
        CloseClass.PROTOCOL,
    ),
    1011: CloseCode("Internal Error", "an unhandled exception on the server", CloseClass.SERVER_ERROR),
    1012: CloseCode("Service Restart", "the server is restarting", CloseClass.RESTART),
    1013: CloseCode("Try Again Later", "overload: too many connections or rate limited", CloseClass.OVERLOAD),
    1014: CloseCode("Bad Gateway", "a proxy got a bad answer from upstream", CloseClass.GATEWAY),
    1015: CloseCode("TLS Handshake", "the TLS handshake failed (never sent in a frame)", CloseClass.TLS),
}


def close_code_name(code: int | None) -> str:
    if code is None:
        return "—"
    known = CLOSE_CODES.get(code)
    if known:
        return known.name
    if 3000 <= code <= 3999:
        return "Registered (library/framework)"
    if 4000 <= code <= 4999:
        return "Application-defined"
    return "Unknown"


def close_code_cause(code: int) -> str:
    known = CLOSE_CODES.get(code)
    if known:
        return known.cause
    if 4000 <= code <= 4999:
        return "defined by the application: see the server's own documentation"
    if 3000 <= code <= 3999:
        return "defined by a library or framework"
    return "not a registered code"


def close_code_label(code: int | None) -> str:
    """'1006 Abnormal Closure' — the form every screen and report uses."""
    return "—" if code is None else f"{code} {close_code_name(code)}"


def close_class(code: int) -> CloseClass:
    known = CLOSE_CODES.get(code)
    if known:
        return known.kind
    if 3000 <= code <= 3999:
        return CloseClass.LIBRARY
    if 4000 <= code <= 4999:
        return CloseClass.APPLICATION
    return CloseClass.UNKNOWN


def expected_close(code: int) -> bool:
    """A close a healthy server and its clients make (1000, 1001)."""
    return close_class(code) in EXPECTED_CLASSES
