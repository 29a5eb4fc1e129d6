"""How a probe connection fails: the kind, HTTP status and one-line error of a failed attempt, what
the user can do about it, and which end closed a connection with which code."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl

from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Close

from wsmon.core import events as ev

NOT_TLS = "TLS handshake failed"


def classify_failure(exc: BaseException, *, secure: bool = False) -> tuple[ev.FailKind, int | None, str]:
    """(kind, HTTP status, one-line error) for a failed connection attempt; never an empty error.

    ``secure``: the URL is wss://, so a reset or an early end is most likely a server without TLS there.
    """
    if secure and (not_tls := _not_tls(exc)):
        return "tls", None, f"{NOT_TLS}: {not_tls}; is the server plain ws:// on that port?"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return "rejected", status, f"handshake rejected: HTTP {status} {exc.response.reason_phrase}".rstrip()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls", None, f"TLS: {exc.verify_message or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls", None, f"TLS: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, ConnectionRefusedError) or _all_refused(exc):
        return "refused", None, "connection refused (ECONNREFUSED)"
    if isinstance(exc, HandshakeTimeout):
        return "timeout", None, str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", None, "timed out opening the connection"
    if isinstance(exc, socket.gaierror):
        return "dns", None, f"name not resolved: {exc.strerror or exc}"
    if isinstance(exc, InvalidHandshake | InvalidURI):
        return "rejected", None, f"handshake failed: {exc}"
    if isinstance(exc, OSError):
        return "error", None, exc.strerror or str(exc) or type(exc).__name__
    return "error", None, str(exc) or type(exc).__name__


def _not_tls(exc: BaseException) -> str:
    """What a TLS handshake with a server that does not speak TLS ends in; '' for anything else."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason in (
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "RECORD_LAYER_FAILURE",
    ):
        return f"wrong protocol ({reason})"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | EOFError | asyncio.IncompleteReadError):
        return "the server ended the connection"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "the server reset the connection"
    return ""


def _all_refused(exc: BaseException) -> bool:
    """asyncio joins the errors of every address it tried (localhost is ::1 and 127.0.0.1) into one."""
    if (
        not isinstance(exc, OSError)
        or exc.errno is not None
        or not str(exc).startswith("Multiple exceptions:")
    ):
        return False
    errnos = _ERRNO.findall(str(exc))
    return bool(errnos) and all(int(n) == errno.ECONNREFUSED for n in errnos)


_ERRNO = re.compile(r"\[Errno (\d+)\]")


def hint_for(kind: str, status: int | None, error: str = "") -> str:
    """What the user can do about a failure of this kind."""
    if kind == "refused":
        return "nothing listens there: is the server running, on this host and port?"
    if kind == "timeout" and error.startswith("handshake:"):
        return "it accepts connections but does not answer: is the server stopped (SIGSTOP) or stuck?"
    if kind == "timeout":
        return "no answer in time: check the host, a firewall, or an overloaded server"
    if kind == "tls" and error.startswith(NOT_TLS):
        return "use ws://, or the port where the server (or its proxy) speaks TLS"
    if kind == "tls":
        return "pass --ca FILE for a private CA, or --insecure to skip verification"
    if kind == "dns":
        return "check the host name in the URL"
    if kind == "rejected" and status in (401, 403):
        return (
            "the server refused the handshake: check the path, --origin and credentials "
            "(--header 'Authorization: env:TOKEN')"
        )
    if kind == "rejected" and status == 426:
        return "the server wants another protocol or version (is this a WebSocket endpoint?)"
    if kind == "rejected" and status == 404:
        return "no WebSocket endpoint at that path"
    if kind == "rejected":
        return "the server did not complete the WebSocket handshake"
    return ""


class HandshakeTimeout(TimeoutError):
    """The TCP (and TLS) connection was made but the HTTP upgrade got no answer in time: the server
    accepts (or its kernel does, for a stopped process) and does not speak."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"handshake: no answer to the upgrade request within {timeout:g} s (the connection was accepted)"
        )


class StepFailed(Exception):
    """A step after the HTTP handshake failed (subprotocol, first exchange): which one and how."""

    def __init__(self, step: str, kind: ev.FailKind, error: str, hint: str = "") -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.kind: ev.FailKind = kind
        self.hint = hint


def close_details(
    rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None
) -> tuple[int, str, ev.Closer]:
    """(code, reason, who closed first) seen from the probe: the server is the other end.

    1006 when no close frame went either way (the TCP connection just ended); 1005 when the server's
    frame carried no status code, exactly as websockets parses it.
    """
    if rcvd is None and sent is None:
        return 1006, "", "neither"
    if rcvd is not None and (sent is None or rcvd_then_sent):
        return int(rcvd.code), rcvd.reason, "server"
    assert sent is not None
    return int(sent.code), sent.reason, "client"
