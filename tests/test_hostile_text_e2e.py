"""A stranger's escape sequences, through the real tap, the server's log and the CLI, reach no output.

wsmon attach runs a real server that writes OSC 52 (a clipboard write), CSI and dangling ESCs into
its log lines, ack reasons and close reasons; a real client talks to it through the tap. The
recording, every report format and the export must hold the text with its controls made visible."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from helpers import free_port
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from wsmon.core.sanitize import is_visible
from wsmon.store import RecordingReader

FIXTURES = Path(__file__).parent / "fixtures"


async def client(url: str, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        try:
            async with connect(url) as ws:
                for n in range(3):
                    await ws.send(json.dumps({"type": "message", "id": f"msg_{n}_hostile"}))
                    await ws.recv()
                await ws.close()
                return
        except (OSError, InvalidHandshake):
            await asyncio.sleep(0.2)  # the server is still starting
    raise AssertionError("the tap never let the client through")


def test_escapes_from_tap_and_log_reach_no_recording_report_or_export(tmp_path: Path) -> None:
    server_port, tap_port = free_port(), free_port()
    record = tmp_path / "hostile.wsmon"
    argv = [
        sys.executable, "-m", "wsmon", "attach", f"ws://127.0.0.1:{server_port}/",
        "--server", f"{sys.executable} {FIXTURES / 'hostile_server.py'} {server_port}",
        "--tap", f"127.0.0.1:{tap_port}=ws://127.0.0.1:{server_port}/",
        "--headless", "--duration", "8", "--record", str(record),
    ]  # fmt: skip
    wsmon = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        asyncio.run(client(f"ws://127.0.0.1:{tap_port}/", deadline=asyncio.new_event_loop().time() + 6))
        stdout, stderr = wsmon.communicate(timeout=60)
    finally:
        if wsmon.poll() is None:
            wsmon.kill()
    assert b"Traceback" not in stderr, stderr.decode()
    for name, output in (("stdout", stdout), ("stderr", stderr)):
        assert b"\x1b" not in output and b"\x07" not in output and b"\xc2\x9b" not in output, name

    with RecordingReader(record) as reader:
        events = list(reader.iter_events())
    texts = [value for event in events for value in _strings(event)]
    assert all(
        is_visible(text) or (text.count("\n") and is_visible(text.replace("\n", ""))) for text in texts
    )
    joined = "\n".join(texts)
    assert "␛]52;c;ZXZpbA==␇" in joined  # shown, not dropped: the operator sees what was attempted
    assert any("Message delivery failed" in text for text in texts)

    for fmt in ("text", "markdown", "json", "junit"):
        out = subprocess.run(
            [sys.executable, "-m", "wsmon", "report", str(record), "--format", fmt], capture_output=True
        )
        assert out.returncode in (0, 1), out.stderr.decode()
        assert b"\x1b" not in out.stdout and b"\x07" not in out.stdout, fmt
    export = subprocess.run(
        [sys.executable, "-m", "wsmon", "export", str(record), "--jsonl"], capture_output=True
    )
    assert export.returncode == 0 and b"\x1b" not in export.stdout
    # Decoded, as jq would: no string carries a control character (a raw log line's literal "\u001b"
    # text, six printable characters, is fine).
    for line in export.stdout.decode().splitlines():
        assert all(is_visible(text.replace("\n", "")) for text in _json_strings(json.loads(line)))


def _strings(event: object) -> list[str]:
    import msgspec

    out: list[str] = []
    for value in msgspec.structs.astuple(event):  # type: ignore[arg-type]
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, dict):
            out.extend(str(k) for k in value)
            out.extend(v for v in value.values() if isinstance(v, str))
    return out


def _json_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_json_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _json_strings(v)]
    return []
