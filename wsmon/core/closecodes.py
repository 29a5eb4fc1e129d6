"""WebSocket close codes with their names and what usually causes each (RFC 6455, IANA registry)."""

from __future__ import annotations

from typing import NamedTuple


class CloseCode(NamedTuple):
    name: str
    cause: str


CLOSE_CODES: dict[int, CloseCode] = {
    1000: CloseCode("Normal Closure", "the peer finished and closed on purpose"),
    1001: CloseCode("Going Away", "server shutting down, page navigated away, or a heartbeat timeout"),
    1002: CloseCode("Protocol Error", "a malformed frame or a protocol rule broken"),
    1003: CloseCode("Unsupported Data", "a message type the endpoint does not accept (e.g. binary)"),
    1005: CloseCode("No Status Received", "a close frame without a status code (a bare close() call)"),
    1006: CloseCode("Abnormal Closure", "no close frame: crash, killed process, network drop, TCP reset"),
    1007: CloseCode("Invalid Payload Data", "text that is not UTF-8, or data the application rejects"),
    1008: CloseCode("Policy Violation", "authentication or registration rejected, policy broken"),
    1009: CloseCode("Message Too Big", "a message above the endpoint's size limit"),
    1010: CloseCode("Mandatory Extension", "the client required an extension the server did not offer"),
    1011: CloseCode("Internal Error", "an unhandled exception on the server"),
    1012: CloseCode("Service Restart", "the server is restarting"),
    1013: CloseCode("Try Again Later", "overload: too many connections or rate limited"),
    1014: CloseCode("Bad Gateway", "a proxy got a bad answer from upstream"),
    1015: CloseCode("TLS Handshake", "the TLS handshake failed (never sent in a frame)"),
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
