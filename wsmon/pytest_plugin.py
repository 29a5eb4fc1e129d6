"""pytest plugin: with ``--wsmon``, each test's start and end go to the `wsmon run` watching the suite.

`wsmon run` sets WSMON_MARKERS=host:port for the test command; the plugin sends one JSON line per
test start and end. It is inert without ``--wsmon`` and never fails a test run: if wsmon is not
there, it says so once and stays quiet.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from typing import Any

import pytest

from wsmon.core.hostport import HostPort, HostPortError
from wsmon.core.testresults.junit import nodeid_key


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsmon")
    group.addoption(
        "--wsmon",
        action="store_true",
        default=False,
        help="send each test's start and end to the `wsmon run` watching this suite (via WSMON_MARKERS)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("wsmon"):
        return
    address = os.environ.get("WSMON_MARKERS", "")
    try:
        markers = HostPort.parse(address, default_host="")
    except HostPortError:
        markers = None
    if markers is None or not markers.host:
        warnings.warn("--wsmon: WSMON_MARKERS is not set; run the suite under `wsmon run`", stacklevel=1)
        return
    try:
        sock = socket.create_connection((markers.host, markers.port), timeout=2.0)
    except OSError as exc:
        warnings.warn(f"--wsmon: cannot reach wsmon at {address}: {exc}", stacklevel=1)
        return
    config.pluginmanager.register(_MarkerReporter(sock), "wsmon-markers")


class _MarkerReporter:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.durations: dict[str, float] = {}

    def _send(self, data: dict[str, Any]) -> None:
        try:
            self.sock.sendall(json.dumps(data).encode() + b"\n")
        except OSError:
            pass  # wsmon went away: the tests go on

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._send({"phase": "start", "name": nodeid_key(nodeid)})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        previous = self.outcomes.get(report.nodeid, ("passed", ""))
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
            message = _failure_message(report)
            self.outcomes[report.nodeid] = (outcome, message)
        elif report.skipped and previous[0] == "passed":
            self.outcomes[report.nodeid] = ("skipped", "")
        else:
            self.outcomes.setdefault(report.nodeid, previous)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        outcome, message = self.outcomes.pop(nodeid, ("passed", ""))
        self._send(
            {
                "phase": "end",
                "name": nodeid_key(nodeid),
                "outcome": outcome,
                "duration": round(self.durations.pop(nodeid, 0.0), 6),
                "message": message,
            }
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.sock.close()


def _failure_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr or "")
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""
