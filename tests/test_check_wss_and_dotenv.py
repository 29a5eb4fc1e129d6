"""`wsmon check wss://` against servers without TLS says what failed; a .env's inline comments are not
part of its values (python-dotenv reads it). The real CLI against real servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from helpers import clean_env
from services import REDIS_URL, demo_server_process, port_open
from test_cli_check import table_rows, wsmon_check

from wsmon.config import ConfigError, load_settings, read_dotenv


@pytest.fixture(scope="module")
def plain_ws_server() -> Iterator[int]:
    """The reference WebSocket server, plain ws:// only; yields its port."""
    with demo_server_process() as port:
        yield port


@pytest.fixture(scope="module")
def plain_http_server() -> Iterator[int]:
    """An HTTP server without TLS: it answers a TLS hello with an HTTP error page."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_wss_to_a_plain_websocket_server_says_the_tls_handshake_failed(
    tmp_path: Path, plain_ws_server: int
) -> None:
    proc = wsmon_check(tmp_path, f"wss://127.0.0.1:{plain_ws_server}/")
    assert proc.returncode == 1, proc.stderr
    row = table_rows(proc.stdout)["websocket"]
    assert row["status"] == "FAIL"
    # It was an empty error before: a bare ConnectionResetError has no text.
    assert row["error"].startswith("TLS handshake failed: the server ")
    assert "plain ws://" in row["error"]
    assert row["hint"] == "use ws://, or the port where the server (or its proxy) speaks TLS"


def test_wss_to_a_plain_http_server_says_wrong_protocol(tmp_path: Path, plain_http_server: int) -> None:
    proc = wsmon_check(tmp_path, f"wss://127.0.0.1:{plain_http_server}/")
    assert proc.returncode == 1, proc.stderr
    row = table_rows(proc.stdout)["websocket"]
    assert row["error"].startswith("TLS handshake failed: wrong protocol (")


def test_dotenv_inline_comments_are_not_part_of_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "REDIS_URL=redis://127.0.0.1:6379/0   # the local Redis\n"
        "WSMON_URL='ws://127.0.0.1:9/#fragment' # quoted: the '#' inside stays\n"
        "DATABASE_URL=postgresql://u@127.0.0.1/db#not-a-comment\n"
    )
    assert read_dotenv(tmp_path / ".env") == {
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "WSMON_URL": "ws://127.0.0.1:9/#fragment",
        "DATABASE_URL": "postgresql://u@127.0.0.1/db#not-a-comment",  # no space before '#': not a comment
    }


def test_dotenv_with_an_inline_comment_checks_the_real_redis(tmp_path: Path) -> None:
    if not port_open("127.0.0.1", 6379):
        pytest.skip("the machine's Redis is not running")
    (tmp_path / ".env").write_text(f"REDIS_URL={REDIS_URL}  # the machine's Redis\n")
    proc = subprocess.run(
        [sys.executable, "-m", "wsmon", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_rows(proc.stdout)["redis"]["status"] == "ok"


def test_a_dotenv_line_python_dotenv_cannot_parse_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:6379/0\nnot a line\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cwd=tmp_path)
    # Only the first word is echoed: a line without '=' may be "PASSWORD hunter2" (issue 10 item 7).
    assert str(caught.value) == f"{tmp_path / '.env'}:2: expected KEY=VALUE, got 'not ***'"
