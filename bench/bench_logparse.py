"""Log recognition throughput: lines/s through ``LogParser.parse`` on a mixed, realistic server log.

The log mixes what real WebSocket servers write: winston JSON with coloured levels, pino JSON with
numeric levels and ``err`` objects, structlog JSON, Go slog JSON and plain text lines, mostly the info
chatter of a busy router (messages relayed, devices registering, heartbeats), with connections opening
and closing and the odd failure. main's parser (``git show main:wsmon/sources/logparse.py``) is
measured in the same run, on the same lines, as the reference.

Goal (issue 9): at least 200,000 JSON lines/s on one core, and at least 5× main's parser.
Run: ``python bench/bench_logparse.py [--lines 200000]``; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from wsmon.sources.logparse import LogParser

GOAL_LINES_PER_S = 200_000
GOAL_RATIO = 5.0
ESC = "\x1b"


def mixed_log(count: int, seed: int = 9) -> list[str]:
    rng = random.Random(seed)
    conns = [f"c{n}" for n in range(200)]
    lines: list[str] = []
    for n in range(count):
        conn, mid, roll = rng.choice(conns), f"msg_{n}", rng.random()
        kind = n % 5
        if roll < 0.80:  # chatter: deliveries without latency, registrations, heartbeats, queries
            chatter = rng.choice(["Message routed", "Heartbeat", "Device registered", "Query ok", "Cached"])
            record = {"connectionId": conn, "messageId": mid, "payload": {"type": "ack", "seq": n}}
        elif roll < 0.90:
            chatter, record = "Client connected", {"connectionId": conn, "remoteAddress": "10.0.0.7"}
        elif roll < 0.98:
            chatter, record = "Client disconnected", {"connectionId": conn, "code": 1000, "reason": ""}
        else:
            chatter = "Failed to send message"
            record = {"connectionId": conn, "messageId": mid, "error": "WebSocket is not open: readyState 3"}
        if kind == 0:  # winston: JSON with a colourised level
            lines.append(
                json.dumps(
                    {
                        **record,
                        "level": f"{ESC}[32minfo{ESC}[39m",
                        "message": chatter,
                        "timestamp": "2026-12-02T03:00:00.000Z",
                        "service": "router",
                    }
                )
            )
        elif kind == 1:  # pino
            lines.append(
                json.dumps(
                    {
                        "level": 30,
                        "time": 1796180000000 + n,
                        "pid": 7,
                        "hostname": "h",
                        **record,
                        "msg": chatter,
                    }
                )
            )
        elif kind == 2:  # structlog JSON
            lines.append(
                json.dumps(
                    {**record, "event": chatter.lower(), "level": "info", "timestamp": "2026-12-02T03:00:00Z"}
                )
            )
        elif kind == 3:  # Go slog JSON
            slog = {"time": "2026-12-02T03:00:00Z", "level": "INFO", "msg": chatter}
            lines.append(json.dumps({**slog, **record}))
        else:  # plain text
            lines.append(f"2026-12-02 03:00:00,000 INFO [router] {chatter.lower()}: client {conn} {mid}")
    return lines


def main_parser_module() -> ModuleType | None:
    """main's logparse.py, loaded beside this checkout's wsmon package."""
    try:
        source = subprocess.run(
            ["git", "show", "main:wsmon/sources/logparse.py"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "main_logparse.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("main_logparse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # main's parser may import what this checkout no longer has
        print(f"main's parser could not be loaded here: {error}", file=sys.stderr)
        return None
    return module


def rate(parse: Callable[[str], object], lines: list[str], rounds: int = 3) -> float:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for line in lines:
            parse(line)
        best = max(best, len(lines) / (time.perf_counter() - started))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    lines = mixed_log(args.lines)
    json_lines = [line for line in lines if line.startswith("{")]
    clock = lambda: (0.0, 0.0)  # noqa: E731 - the clock is not what is measured
    new_all = rate(LogParser("server", clock).parse, lines)
    new_json = rate(LogParser("server", clock).parse, json_lines)
    probe = LogParser("server", clock)
    chatter = [line for line in json_lines if "pre-filter" in probe.explain(line).why]
    new_chatter = rate(LogParser("server", clock).parse, chatter)
    print(f"{len(lines):,} lines ({len(json_lines):,} JSON, {len(chatter):,} of them chatter), one core")
    print(f"new parser:  {new_all:>10,.0f} lines/s mixed   {new_json:>10,.0f} lines/s JSON")
    print(f"             {new_chatter:>10,.0f} lines/s on the JSON chatter the pre-filter keeps at once")
    ok = new_json >= GOAL_LINES_PER_S
    old = main_parser_module()
    if old is not None:
        old_all = rate(old.LogParser("server", clock).parse, lines)
        old_json = rate(old.LogParser("server", clock).parse, json_lines)
        print(f"main parser: {old_all:>10,.0f} lines/s mixed   {old_json:>10,.0f} lines/s JSON")
        ratio = new_json / old_json
        print(f"ratio (JSON): {ratio:.2f}×  (goal ≥ {GOAL_RATIO:.0f}×)")
        ok = ok and ratio >= GOAL_RATIO
    print(f"goal ≥ {GOAL_LINES_PER_S:,} JSON lines/s: {'met' if new_json >= GOAL_LINES_PER_S else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
