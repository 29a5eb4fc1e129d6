"""Log recognition throughput: lines per CPU second, per kind of log, on one core.

Each mix is what one kind of real WebSocket server writes, made from the shapes its logger writes
(tests/fidelity/corpus has the loggers themselves): pino (with pino-http's request lines), winston JSON
with coloured levels, structlog JSON, key=value text (logfmt, structlog's key-value renderer), plain text
(Python's logging, uvicorn's access lines, the `websockets` library's own lines), and all of them
together. Most lines are ones that make no event (requests served, heartbeats, messages routed); the
rest are what wsmon is for: connections opened and closed, deliveries with a latency, failed sends,
warnings and errors.

Two figures per mix: ``parse`` (``LogParser.parse``, line by line) and ``source`` (what a log source
does with a read chunk of bytes: split into lines, fold stack traces, recognise, hand the events on).

``--base PATH`` measures the code at PATH (a checkout, e.g. ``git worktree add --detach /tmp/base main``)
in the same run, on the same lines, in alternating rounds, and prints the ratio; it also checks that
both make the same events from every line (encoded, the clock held still). Figures are lines per CPU
second of the measuring process (``time.process_time``), the best of the rounds, so a busy machine
slows them less than wall time would; the load average is printed beside them.

``--pinned`` adds the parsers before issue 9 (51eb1c7) and as issue 9 merged it (eed90b8), read with
``git show`` (issue 9's 5× goal was against them).

Goal (issue 13): at least 200,000 lines/s on one core, for every mix (``parse``).
Run: ``python bench/bench_logparse.py [--lines 60000] [--rounds 3] [--base PATH] [--pinned]``;
exits 1 when a goal is missed or the events differ from the base's.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

GOAL_LINES_PER_S = 200_000
ESC = "\x1b"
MIXES = ("pino", "winston", "structlog", "logfmt", "text", "mixed")
TIME = "2026-12-02T03:00:00.000Z"
ERROR = "WebSocket is not open: readyState 3 (CLOSED)"
STACK = 'Error: relation "devices" does not exist\n    at Query.run (/app/db.js:42:11)'


# --- what each kind of line says, logger by logger ----------------------------------------------------


def scenario(rng: random.Random, n: int) -> tuple[str, str, dict[str, Any]]:
    """(kind, level, fields) of the n-th line of a busy router: 85 % chatter, the rest events."""
    conn, mid = f"c-{rng.randrange(500)}", f"m-{n}"
    roll = rng.random()
    if roll < 0.45:
        req = {"id": n, "method": rng.choice(("GET", "POST")), "url": f"/api/devices/{rng.randrange(900)}"}
        return (
            "request",
            "info",
            {"req": req, "res": {"statusCode": 200}, "responseTime": rng.randrange(1, 40)},
        )
    if roll < 0.65:
        return "heartbeat", "info", {"connectionId": conn}
    if roll < 0.75:
        return (
            "routed",
            "info",
            {"connectionId": conn, "messageId": mid, "payload": {"type": "ack", "seq": n}},
        )
    if roll < 0.85:
        return rng.choice(("registered", "cache")), "debug", {"deviceId": f"d-{n % 97}"}
    if roll < 0.89:
        return (
            "open",
            "info",
            {"connectionId": conn, "remoteAddress": "10.0.0.7", "remotePort": 51000 + n % 999},
        )
    if roll < 0.93:
        return "close", "info", {"connectionId": conn, "code": rng.choice((1000, 1001, 1006)), "reason": ""}
    if roll < 0.96:
        return (
            "delivered",
            "info",
            {"connectionId": conn, "messageId": mid, "latencyMs": rng.randrange(1, 90)},
        )
    if roll < 0.975:
        return "failed", "error", {"connectionId": conn, "messageId": mid, "error": ERROR}
    if roll < 0.99:
        return "slow", "warn", {"connectionId": conn, "queued": rng.randrange(100, 900)}
    return "query", "error", {"error": 'relation "devices" does not exist'}


MESSAGES = {
    "request": "request completed",
    "heartbeat": "heartbeat",
    "routed": "message routed",
    "registered": "device registered",
    "cache": "cache hit",
    "open": "client connected",
    "close": "client disconnected",
    "delivered": "message delivered",
    "failed": "failed to send message",
    "slow": "slow consumer, queue growing",
    "query": "query failed",
}
PINO_LEVELS = {"debug": 20, "info": 30, "warn": 40, "error": 50}


def pino(rng: random.Random, n: int) -> str:
    kind, level, fields = scenario(rng, n)
    if kind == "failed":
        fields = {**fields, "err": {"type": "Error", "message": fields.pop("error"), "stack": STACK}}
    head = {"level": PINO_LEVELS[level], "time": 1796180000000 + n, "pid": 7, "hostname": "router-1"}
    return json.dumps({**head, **fields, "msg": MESSAGES[kind]})


def winston(rng: random.Random, n: int) -> str:
    kind, level, fields = scenario(rng, n)
    colour = {"debug": 34, "info": 32, "warn": 33, "error": 31}[level]
    coloured = f"{ESC}[{colour}m{level}{ESC}[39m"
    return json.dumps({**fields, "level": coloured, "message": MESSAGES[kind], "timestamp": TIME})


def structlog(rng: random.Random, n: int) -> str:
    kind, level, fields = scenario(rng, n)
    return json.dumps({"event": MESSAGES[kind], **_flat(fields), "level": level, "timestamp": TIME})


def logfmt(rng: random.Random, n: int) -> str:
    kind, level, fields = scenario(rng, n)
    pairs = " ".join(f"{key}={_logfmt_value(value)}" for key, value in _flat(fields).items())
    if n % 2:  # structlog's key-value renderer, event first
        return f"event='{MESSAGES[kind]}' {pairs} level='{level}' timestamp='{TIME}'"
    return f'time={TIME} level={level} msg="{MESSAGES[kind]}" {pairs}'


def text(rng: random.Random, n: int) -> str:
    kind, level, fields = scenario(rng, n)
    conn, mid = fields.get("connectionId", "c-1"), fields.get("messageId", f"m-{n}")
    stamp = "2026-12-02 03:00:00,000"
    said = {
        "request": None,
        "heartbeat": f"heartbeat from {conn}",
        "routed": f"message {mid} routed to {conn}",
        "registered": f"device d-{n % 97} registered",
        "cache": "cache hit for /api/devices",
        "open": f"client {conn} connected from 10.0.0.7:{51000 + n % 999}",
        "close": f"client {conn} disconnected (code {fields.get('code')})",
        "delivered": f"message {mid} delivered to client {conn} in {fields.get('latencyMs')} ms",
        "failed": f"could not send message {mid} to client {conn}: {ERROR}",
        "slow": f"slow consumer {conn}, queue growing",
        "query": 'query failed: relation "devices" does not exist',
    }[kind]
    if said is None:  # uvicorn's access line
        req = fields["req"]
        return f'INFO:     10.0.0.7:{51000 + n % 999} - "{req["method"]} {req["url"]} HTTP/1.1" 200 OK'
    if kind in ("open", "close") and n % 3 == 0:  # the websockets library's own logger
        return f"{stamp} INFO [websockets.server] connection {'open' if kind == 'open' else 'closed'}"
    return f"{stamp} {level.upper()} [router] {said}"


def _flat(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            out.update({f"{key}_{inner}": leaf for inner, leaf in value.items()})
        else:
            out[key] = value
    return out


def _logfmt_value(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) and (" " in value or not value) else str(value)


WRITERS: dict[str, Callable[[random.Random, int], str]] = {
    "pino": pino,
    "winston": winston,
    "structlog": structlog,
    "logfmt": logfmt,
    "text": text,
}


def mix(name: str, count: int, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    if name == "mixed":
        writers = list(WRITERS.values())
        return [writers[n % len(writers)](rng, n) for n in range(count)]
    return [WRITERS[name](rng, n) for n in range(count)]


# --- measuring ----------------------------------------------------------------------------------------


def still_clock() -> tuple[float, float]:
    return 0.0, 0.0  # the clock is not what is measured, and held still the events compare equal


def parse_rate(make_parser: Callable[[], Any], lines: list[str], repeats: int) -> float:
    """Lines per CPU second, the best of ``repeats`` runs, each with a fresh parser."""
    best = 0.0
    for _ in range(repeats):
        parse = make_parser().parse
        started = time.process_time()
        for line in lines:
            parse(line)
        best = max(best, len(lines) / max(time.process_time() - started, 1e-9))
    return best


def source_rate(lines: list[str], repeats: int) -> tuple[float, str]:
    """What a log source does with each read chunk (bytes in, events handed on), lines per CPU second,
    and the digest of the events it handed on."""
    from wsmon.sources.logs import source
    from wsmon.sources.logs.parser import LogParser

    data = ("\n".join(lines) + "\n").encode()
    chunks = [data[at : at + source.READ_CHUNK] for at in range(0, len(data), source.READ_CHUNK)]
    best, out = 0.0, []
    for _ in range(repeats):
        out = []
        # LogLines since the server's output is read through it too (e4c898a); _Lines before
        lines_of = getattr(source, "LogLines", None) or getattr(source, "_Lines")  # noqa: B009
        reader = lines_of(LogParser("server", still_clock), out.append)
        started = time.process_time()
        for chunk in chunks:
            reader.feed(chunk)
        reader.flush()
        best = max(best, len(lines) / max(time.process_time() - started, 1e-9))
    return best, digest_of([[event] for event in out])


def digest_of(batches: list[list[Any]]) -> str:
    """The events, encoded and hashed: two parsers that agree on every line agree here."""
    import msgspec

    digest = hashlib.sha256()
    for events in batches:
        digest.update(msgspec.json.encode(events))
        digest.update(b"\n")
    return digest.hexdigest()


def parse_digest(lines: list[str]) -> str:
    """The digest of the events each line makes through ``LogParser.parse``."""
    from wsmon.sources.logs.parser import LogParser

    parser = LogParser("server", still_clock)
    return digest_of([parser.parse(line) for line in lines])


def worker(count: int, repeats: int) -> dict[str, Any]:
    """One round in this process, with whichever wsmon PYTHONPATH gives it: rates and digests per mix."""
    import wsmon
    from wsmon.sources.logs.parser import LogParser

    out: dict[str, Any] = {"wsmon": str(Path(wsmon.__file__).parent.parent), "mixes": {}}
    for name in MIXES:
        lines = mix(name, count)
        source, source_digest = source_rate(lines, repeats)
        out["mixes"][name] = {
            "parse": parse_rate(lambda: LogParser("server", still_clock), lines, repeats),
            "source": source,
            "digest": f"{parse_digest(lines)} {source_digest}",
        }
    return out


def run_worker(checkout: Path, count: int, repeats: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    argv = [sys.executable, __file__, "--worker", "--lines", str(count), "--repeats", str(repeats)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True, cwd=checkout)
    result: dict[str, Any] = json.loads(done.stdout)
    if Path(result["wsmon"]).resolve() != checkout.resolve():
        raise SystemExit(f"the worker for {checkout} imported wsmon from {result['wsmon']}")
    return result


def best_of(rounds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for result in rounds:
        for name, figures in result["mixes"].items():
            kept = best.setdefault(name, dict(figures))
            for key in ("parse", "source"):
                kept[key] = max(kept[key], figures[key])
    return best


# --- the parsers before issue 9, for its 5x goal (--pinned) ----------------------------------------------

PINNED = (
    ("before issue 9 (51eb1c7)", "51eb1c745cdf3f63d285a22af9074c3b432f9963"),
    ("issue 9 as merged (eed90b8)", "eed90b829c9406cd16ff84cde754a9c1c8c7b214"),
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
    """logparse.py as it was at ``commit`` (with the logvocab.py of that commit, where it had one)."""
    source = _source_at(commit, "wsmon/sources/logparse.py")
    if source is None:
        print(f"no logparse.py at {commit[:7]} here (not a full git checkout?)", file=sys.stderr)
        return None
    vocab_source = _source_at(commit, "wsmon/sources/logvocab.py")
    if vocab_source is not None:
        vocab_name = f"logvocab_{commit[:7]}"
        if _load(vocab_name, vocab_source) is None:
            return None
        source = source.replace(
            "from wsmon.sources import logvocab as vocab", f"import {vocab_name} as vocab"
        )
        source = source.replace("from wsmon.sources.logvocab import", f"from {vocab_name} import")
    source = source.replace("from wsmon.sources.logrules import", "from wsmon.sources.logs.rules import")
    return _load(f"logparse_{commit[:7]}", source)


# --- the report ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--lines", type=int, default=60_000, help="lines per mix")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best counts")
    parser.add_argument("--repeats", type=int, default=2, help="runs per figure within a round")
    parser.add_argument("--base", type=Path, help="a checkout of the code before, measured in the same run")
    parser.add_argument("--pinned", action="store_true", help="also the parsers before issue 9")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.lines, args.repeats)))
        return 0
    if args.base is not None and not (args.base / "wsmon" / "sources" / "logs" / "source.py").is_file():
        parser.error(f"--base {args.base}: no wsmon checkout with wsmon/sources/logs there")

    here = Path(__file__).resolve().parent.parent
    print(f"{args.lines:,} lines a mix; lines per CPU second, best of {args.rounds} rounds × {args.repeats}")
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
    new_rounds, base_rounds = [], []
    for _ in range(args.rounds):
        new_rounds.append(run_worker(here, args.lines, args.repeats))
        if args.base is not None:
            base_rounds.append(run_worker(args.base, args.lines, args.repeats))
    new = best_of(new_rounds)
    base = best_of(base_rounds) if base_rounds else {}
    chatter = _chatter_share()
    print(f"{'mix':<11}{'chatter':>8}{'parse':>11}{'source':>11}" + ("" if not base else
          f"{'base parse':>12}{'base source':>13}{'× parse':>9}{'× source':>9}{'events':>8}"))  # fmt: skip
    ok, same = True, True
    for name in MIXES:
        figures = new[name]
        row = f"{name:<11}{chatter[name]:>7.0%} {figures['parse']:>11,.0f}{figures['source']:>11,.0f}"
        ok = ok and figures["parse"] >= GOAL_LINES_PER_S
        if base:
            before = base[name]
            equal = before["digest"] == figures["digest"]
            same = same and equal
            row += f"{before['parse']:>12,.0f}{before['source']:>13,.0f}"
            row += f"{figures['parse'] / before['parse']:>8.2f}×{figures['source'] / before['source']:>8.2f}×"
            row += f"{'same' if equal else 'DIFFER':>8}"
        print(row)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.pinned:
        _pinned(args.lines, args.rounds * args.repeats)
    met = "met" if ok else "MISSED"
    print(f"goal ≥ {GOAL_LINES_PER_S:,} lines/s (parse) in every mix: {met}")
    if base and not same:
        print("the events differ from the base's on some mix (DIFFER above)")
    return 0 if ok and same else 1


def _chatter_share() -> dict[str, float]:
    """The share of each mix's lines the pre-filter keeps as they are, without the recognisers."""
    from wsmon.sources.logs.parser import LogParser

    probe = LogParser("server", still_clock)
    shares = {}
    for name in MIXES:
        lines = mix(name, 2_000)
        shares[name] = sum("pre-filter" in probe.explain(line).why for line in lines) / len(lines)
    return shares


def _pinned(count: int, repeats: int) -> None:
    from wsmon.sources.logs.parser import LogParser

    lines = [line for line in mix("mixed", count) if line.startswith("{")]
    now = parse_rate(lambda: LogParser("server", still_clock), lines, repeats)
    print(f"JSON lines of the mixed log, against the parsers before issue 9: this checkout {now:,.0f}")
    for label, commit in PINNED:
        module = parser_module_at(commit)
        if module is not None:
            then = parse_rate(lambda module=module: module.LogParser("server", still_clock), lines, repeats)
            print(f"  {label}: {then:,.0f}, this checkout {now / then:.2f}×")


if __name__ == "__main__":
    sys.exit(main())
