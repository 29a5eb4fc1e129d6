"""Log recognition throughput: lines/s through ``LogParser.parse`` on a mixed, realistic server log.

The log mixes what real WebSocket servers write: winston JSON with coloured levels, pino JSON with
numeric levels and ``err`` objects, structlog JSON, Go slog JSON and plain text lines, mostly the info
chatter of a busy router (messages relayed, devices registering, heartbeats), with connections opening
and closing and the odd failure.

The parser before issue 9 and the vocabulary parser as issue 9 first merged it (pinned commits, each
read with ``git show`` together with the logvocab.py of its commit) are measured in the same run, on
the same lines, as the references. Figures are
lines per CPU second of this process (``time.process_time``), the best of several runs, so a busy
machine slows them less than wall time would; compare the ratios.

Goal (issues 9 and 13): at least 200,000 JSON lines/s on one core, and at least 5× the old parser.
Run: ``python bench/bench_logparse.py [--lines 100000] [--repeats 5]``; exits 1 when a goal is missed.
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
from typing import Any

from wsmon.sources.logs.parser import LogParser

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


# The references, pinned so the figures mean the same after this branch is merged: the parser before
# issue 9 (main at 51eb1c7, the "old parser" the 5x goal is against) and the vocabulary parser as
# issue 9 first merged it (eed90b8, before the speed work), both measured in the same run.
REFERENCES = (
    ("old parser (before issue 9, 51eb1c7)", "51eb1c745cdf3f63d285a22af9074c3b432f9963"),
    ("vocabulary parser as first merged (eed90b8)", "eed90b829c9406cd16ff84cde754a9c1c8c7b214"),
)


def _source_at(commit: str, path: str) -> str | None:
    try:
        return subprocess.run(
            ["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def _load(name: str, source: str) -> ModuleType | None:
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # an old parser may import what this checkout no longer has
        print(f"{name} could not be loaded here: {error}", file=sys.stderr)
        return None
    return module


def parser_module_at(commit: str) -> ModuleType | None:
    """logparse.py as it was at ``commit`` (with the logvocab.py of that commit, where it had one),
    loaded beside this checkout's wsmon package."""
    source = _source_at(commit, "wsmon/sources/logparse.py")
    if source is None:
        print(f"no logparse.py at {commit[:7]} here (not a full git checkout?)", file=sys.stderr)
        return None
    vocab_source = _source_at(commit, "wsmon/sources/logvocab.py")
    if vocab_source is not None:
        vocab_name = f"logvocab_{commit[:7]}"
        if _load(vocab_name, vocab_source) is None:
            return None
        import_vocab = "from wsmon.sources import logvocab as vocab"
        source = source.replace(import_vocab, f"import {vocab_name} as vocab")
        source = source.replace("from wsmon.sources.logvocab import", f"from {vocab_name} import")
    # The rules module has moved since (into wsmon.sources.logs); its Rule is the same.
    source = source.replace("from wsmon.sources.logrules import", "from wsmon.sources.logs.rules import")
    return _load(f"logparse_{commit[:7]}", source)


def rate(make_parser: Callable[[], Any], lines: list[str], repeats: int) -> float:
    """Lines per CPU second (this process's CPU time, not wall time: the machine may be busy), the
    best of ``repeats`` runs, each with a fresh parser."""
    best = 0.0
    for _ in range(repeats):
        parse = make_parser().parse
        started = time.process_time()
        for line in lines:
            parse(line)
        best = max(best, len(lines) / max(time.process_time() - started, 1e-9))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the best counts")
    args = parser.parse_args()
    lines = mixed_log(args.lines)
    json_lines = [line for line in lines if line.startswith("{")]
    text_lines = [line for line in lines if not line.startswith("{")]
    clock = lambda: (0.0, 0.0)  # noqa: E731 - the clock is not what is measured
    probe = LogParser("server", clock)
    chatter = [line for line in json_lines if "pre-filter" in probe.explain(line).why]
    print(f"{len(lines):,} lines: {len(json_lines):,} JSON ({len(chatter):,} of them chatter the pre-filter")
    print(f"keeps at once), {len(text_lines):,} text; lines per CPU second, best of {args.repeats}, one core")
    print(f"{'parser':<46}{'JSON':>10}{'text':>10}{'mixed':>10}")

    def row(label: str, make: Callable[[], Any]) -> float:
        figures = [rate(make, subset, args.repeats) for subset in (json_lines, text_lines, lines)]
        print(f"{label:<46}" + "".join(f"{figure:>10,.0f}" for figure in figures))
        return figures[0]

    new_json = row("this checkout", lambda: LogParser("server", clock))
    chatter_rate = rate(lambda: LogParser("server", clock), chatter, args.repeats)
    print(f"{'  JSON chatter alone':<46}{chatter_rate:>10,.0f}")
    ok = new_json >= GOAL_LINES_PER_S
    ratios: list[tuple[str, float]] = []
    for label, commit in REFERENCES:
        module = parser_module_at(commit)
        if module is None:
            continue
        old_json = row(label, lambda module=module: module.LogParser("server", clock))
        ratios.append((label.partition(" (")[0], new_json / old_json))
        print(f"  ratio (JSON), this checkout against it: {ratios[-1][1]:.2f}×")
    met = "met" if new_json >= GOAL_LINES_PER_S else "MISSED"
    print(f"goal ≥ {GOAL_LINES_PER_S:,} JSON lines/s: {met} ({new_json:,.0f})")
    if ratios:  # "5× today's": judged against every reference, the parser before issue 9 first
        met = "met" if all(ratio >= GOAL_RATIO for _, ratio in ratios) else "MISSED"
        against = ", ".join(f"{ratio:.2f}× the {label}" for label, ratio in ratios)
        print(f"goal ≥ {GOAL_RATIO:.0f}× (JSON): {met} ({against})")
        ok = ok and met == "met"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
