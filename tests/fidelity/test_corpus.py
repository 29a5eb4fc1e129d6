"""A corpus of real loggers' output, and what each line of it is recognised as.

The lines are not typed by hand: each test runs a real logger, installed from its registry (winston,
pino and bunyan from npm; structlog and python-json-logger from PyPI; the standard library's logging),
through the same scenario in that logger's default or common configuration, and checks what wsmon makes
of every line it wrote: a connection opened and closed with its code, a delivery with its latency, a
failed send and a message to an unknown recipient with their ids and reasons, an error with its stack
trace, and two lines that must stay plain log lines (start-up chatter, "connected to redis").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_logparse_fastpath import assert_same

from wsmon.core import events as ev
from wsmon.sources.logs.explain import Explained, explain_lines
from wsmon.sources.logs.folding import StackFolder

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).parent / "corpus"
NODE_STYLES = ("winston-json", "winston-simple", "pino", "bunyan")
PYTHON_STYLES = ("structlog-json", "structlog-kv", "structlog-console", "logging-text", "logging-json")
# Loggers that keep fields apart from the message; plain text has its ids in its words only.
STRUCTURED = frozenset((*NODE_STYLES, "structlog-json", "structlog-kv", "structlog-console", "logging-json"))


def written_by(style: str, node_modules: Path | None) -> list[str]:
    if style in NODE_STYLES:
        assert node_modules is not None
        argv = ["node", str(CORPUS / "emit_node.js"), style]
        env = {**os.environ, "NODE_PATH": str(node_modules)}
    else:
        argv = [sys.executable, str(CORPUS / "emit_python.py"), style]
        env = dict(os.environ)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)
    return (done.stdout + done.stderr).splitlines()


def kinds(item: Explained) -> list[str]:
    return [ev.TAGS[type(e)] for e in item.events]


def only(item: Explained, kind: type[ev.Event]) -> ev.Event:
    [event] = [e for e in item.events if isinstance(e, kind)]
    return event


@pytest.fixture
def lines(request: pytest.FixtureRequest) -> list[str]:
    style = request.param
    modules = request.getfixturevalue("node_modules") if style in NODE_STYLES else None
    return written_by(style, modules)


@pytest.mark.parametrize("lines", NODE_STYLES + PYTHON_STYLES, indirect=True)
def test_each_line_of_a_real_logger_is_recognised_as_what_it_says(
    lines: list[str], request: pytest.FixtureRequest
) -> None:
    style = request.node.callspec.params["lines"]
    listening, opened, delivered, failed, unknown, closed, crashed, redis = list(explain_lines(lines))

    assert kinds(listening) == ["log"], listening
    assert kinds(opened) == ["conn.open"] and only(opened, ev.ConnectionOpened).conn == "c-1", opened  # type: ignore[attr-defined]
    sample = only(delivered, ev.LatencySample)
    assert (sample.ref, sample.ms) == ("m-1", 3.0), delivered  # type: ignore[attr-defined]

    assert kinds(failed) == ["delivery.fail", "log"], failed
    failure = only(failed, ev.DeliveryFailed)
    assert (failure.message_id, failure.conn) == ("m-2", "c-1"), failed  # type: ignore[attr-defined]
    assert "Traceback" not in failure.reason and failure.reason, failure  # type: ignore[attr-defined]
    kept = only(failed, ev.LogLine)
    assert kept.level == "error"  # type: ignore[attr-defined]
    if style in STRUCTURED:
        assert "m-2" in kept.fields.values(), kept  # type: ignore[attr-defined]

    assert kinds(unknown) == ["delivery.fail", "log"], unknown
    assert only(unknown, ev.DeliveryFailed).message_id == "m-3"  # type: ignore[attr-defined]

    close = only(closed, ev.ConnectionClosed)
    assert (close.conn, close.code) == ("c-1", 1006), closed  # type: ignore[attr-defined]

    assert kinds(crashed) == ["log"] and only(crashed, ev.LogLine).level == "error", crashed  # type: ignore[attr-defined]
    assert "does not exist" in crashed.text or any(
        "does not exist" in v
        for v in only(crashed, ev.LogLine).fields.values()  # type: ignore[attr-defined]
    )
    assert kinds(redis) == ["log"], redis  # the server connecting to Redis is no WebSocket connection


@pytest.mark.parametrize("lines", NODE_STYLES + PYTHON_STYLES, indirect=True)
def test_the_fast_path_makes_what_the_full_path_makes_of_each_real_loggers_lines(lines: list[str]) -> None:
    """Differential: every line a real logger wrote, and every block folded from them, through the
    pre-filter and the memos and through the full path with nothing remembered, make the same events
    (chatter the pre-filter keeps: the same text and level; tests/test_logparse_fastpath.py)."""
    assert_same(lines)
    folder = StackFolder()
    assert_same([*folder.feed_many(lines), *folder.flush()])
