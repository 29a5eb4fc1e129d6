"""TAP (13 and 14, as ``node --test --test-reporter=tap`` writes it): test points, subtests, YAML.

``ok 1 - name`` / ``not ok 2 - name``, with ``# SKIP`` / ``# TODO`` directives; a subtest's lines are
indented four spaces more than its parent and come before the parent's own test point (``# Subtest:
name`` announces them); a YAML block (``---`` … ``...``) after a test point may give ``duration_ms`` and
the failure (``error``). TAP has no clock: results are placed back to back from ``anchor_wall`` (when
the test command started), subtests inside their parent, so every window is approximate.

A test with subtests is reported through them; itself only when it failed and none of them did (a
hook that threw).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from wsmon.core.testresults import TestResult, TestResultsError, first_line

_POINT = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?(?:\s*-)?\s*(.*)$")
_DIRECTIVE = re.compile(r"\s+#\s*(SKIP|TODO)\b\S*\s*(.*)$", re.IGNORECASE)
_PLAN = re.compile(r"^\d+\.\.\d+")
_VERSION = re.compile(r"^TAP version \d+", re.MULTILINE)
INDENT = 4
MAX_DEPTH = 100  # subtest levels; deeper is not a test run (and would exhaust the recursion below)


def looks_like(body: str) -> bool:
    if _VERSION.search(body[:200]):
        return True
    lines = [line.strip() for line in body.splitlines()[:50] if line.strip()]
    return any(_POINT.match(line) for line in lines) and any(_PLAN.match(line) for line in body.splitlines())


@dataclass
class _Node:
    name: str
    ok: bool
    directive: str = ""  # "skip" | "todo" | ""
    reason: str = ""
    duration_s: float | None = None
    message: str = ""
    children: list[_Node] = field(default_factory=list)


def parse(text: str, *, anchor_wall: float | None = None) -> list[TestResult]:
    roots = _tree(text.splitlines())
    if not roots:
        raise TestResultsError("TAP: no test points (ok / not ok lines) found")
    results: list[TestResult] = []
    clock = anchor_wall
    for node in roots:
        clock = _place(node, [], clock, results)
    return results


def _tree(lines: list[str]) -> list[_Node]:
    pending: dict[int, list[_Node]] = {}  # per depth: test points waiting for their parent's point
    last: _Node | None = None
    index = 0
    while index < len(lines):
        line = lines[index].rstrip()
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // INDENT
        index += 1
        if depth > MAX_DEPTH and _POINT.match(stripped):
            raise TestResultsError(f"TAP: line {index}: subtests nested more than {MAX_DEPTH} levels deep")
        if stripped == "---" and last is not None:
            index = _yaml(lines, index, last)
            continue
        match = _POINT.match(stripped)
        if match is None:
            continue
        description = match.group(2)
        node = _Node(name="", ok=match.group(1) == "ok")
        directive = _DIRECTIVE.search(description)
        if directive:
            node.directive, node.reason = directive.group(1).lower(), directive.group(2).strip()
            description = description[: directive.start()]
        node.name = description.replace("\\#", "#").strip() or "?"
        node.children = pending.pop(depth + 1, [])
        for deeper in [d for d in pending if d > depth + 1]:
            pending.pop(deeper)  # subtests whose parent's point never came: dropped
        pending.setdefault(depth, []).append(node)
        last = node
    return pending.get(0, [])


def _yaml(lines: list[str], index: int, node: _Node) -> int:
    """Read the YAML block after a test point (a small subset: ``key: value`` and ``|-`` blocks)."""
    block_key, block_indent, block_lines = "", 0, []
    while index < len(lines):
        line = lines[index].rstrip()
        index += 1
        if line.strip() == "...":
            break
        indent = len(line) - len(line.lstrip(" "))
        if block_key and (not line.strip() or indent > block_indent):
            block_lines.append(line.strip())
            continue
        if block_key == "error":
            node.message = node.message or first_line("\n".join(block_lines))
        block_key = ""
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if value in ("|", "|-", ">", ">-"):
            block_key, block_indent, block_lines = key, indent, []
        elif key == "duration_ms":
            try:
                milliseconds = float(value)
            except ValueError:
                continue
            if math.isfinite(milliseconds):  # "nan", "inf", "1e400": no duration
                node.duration_s = max(milliseconds, 0.0) / 1000.0
        elif key in ("error", "message") and not node.message:
            node.message = first_line(value.strip("'\""))
    if block_key == "error":
        node.message = node.message or first_line("\n".join(block_lines))
    return index


def _place(node: _Node, path: list[str], clock: float | None, out: list[TestResult]) -> float | None:
    """Add ``node``'s results starting at ``clock``; returns where the next sibling starts."""
    start = clock
    names = [*path, node.name]
    child_clock = clock
    for child in node.children:
        child_clock = _place(child, names, child_clock, out)
    children_span = (child_clock - start) if (start is not None and child_clock is not None) else 0.0
    duration = node.duration_s if node.duration_s is not None else children_span
    failed = not node.ok and node.directive != "todo"
    if not node.children or (failed and not any(_failed(c) for c in node.children)):
        out.append(
            TestResult(
                name="::".join(names),
                outcome=_outcome(node, failed),
                start_wall=start,
                duration_s=duration,
                message=(node.message or "failed") if failed else "",
                approximate=True,
            )
        )
    end = None if start is None else start + duration
    return end if end is not None and math.isfinite(end) else None


def _outcome(node: _Node, failed: bool) -> str:
    if node.directive in ("skip", "todo"):
        return "skipped"
    return "failed" if failed else "passed"


def _failed(node: _Node) -> bool:
    if not node.ok and node.directive != "todo":
        return True
    return any(_failed(child) for child in node.children)
