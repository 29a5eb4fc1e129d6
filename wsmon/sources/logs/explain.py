"""``wsmon logs explain FILE``: what each line of a log was recognised as, and by which rule.

So a user can see why a line was missed: the same folding (stack traces joined to their error line)
and the same parser (custom rules first, then the vocabulary) as a live session, on a saved log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from wsmon.core import events as ev
from wsmon.core.redact import redact_text
from wsmon.sources.logs.folding import StackFolder
from wsmon.sources.logs.parser import LogParser
from wsmon.sources.logs.rules import Rule

_QUIET = frozenset({"wall", "mono", "type", "source", "target"})
TEXT_SHOWN = 160  # characters of a line shown; the rest is elided


@dataclass(frozen=True)
class Explained:
    number: int  # the block's place in the log, from 1
    text: str
    events: list[ev.Event]
    why: str


def explain_lines(lines: Iterable[str], rules: Sequence[Rule] = ()) -> Iterator[Explained]:
    """Every block of the log (a line, or an error line with its stack trace), explained."""
    parser = LogParser("log", lambda: (0.0, 0.0), rules)
    folder = StackFolder()
    number = 0

    def blocks() -> Iterator[str]:
        for line in lines:
            yield from folder.feed(line.rstrip("\r\n"))
        yield from folder.flush()

    for block in blocks():
        explanation = parser.explain(block)
        if explanation.why == "blank":
            continue
        number += 1
        yield Explained(number, block, explanation.events, explanation.why)


def describe(event: ev.Event) -> str:
    """An event as its tag and the fields that say something: ``conn.close conn=c1 code=1006``."""
    data = ev.to_dict(event)
    parts = [str(data["type"])]
    for key, value in data.items():
        if key in _QUIET or value in (None, "", {}, [], "unknown", False):
            continue
        if key == "text":
            continue  # the line itself is shown above
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items())
            parts.append(f"{key}{{{value}}}")
            continue
        parts.append(f"{key}={value}")
    return " ".join(parts)


def report(explained: Iterable[Explained], *, per_kind: int = 3, every: bool = False) -> Iterator[str]:
    """The printed form: a few examples of each kind of recognition (or every line), then the counts."""
    kinds: Counter[str] = Counter()
    for item in explained:
        kind = _kind(item.why)
        kinds[kind] += 1
        if not every and kinds[kind] > per_kind:
            continue
        first, _, rest = item.text.partition("\n")
        first = redact_text(first)  # printed output gets pasted into tickets: no secrets in it
        shown = first if len(first) <= TEXT_SHOWN else first[: TEXT_SHOWN - 1] + "…"
        more = f"  (+{rest.count(chr(10)) + 1} folded lines)" if rest else ""
        yield f"#{item.number}: {shown}{more}"
        for event in item.events:
            yield f"    -> {describe(event)}"
        yield f"    because: {item.why}"
    yield ""
    yield "recognised as (lines):"
    for kind, count in kinds.most_common():
        yield f"  {count:>7}  {kind}"


def _kind(why: str) -> str:
    """The rule a line was recognised by, without the words it matched: the category to count."""
    head = why.partition(":")[0]
    return head if head.startswith(("custom rule", "not decoded")) else why.split(": '")[0]


__all__ = ["Explained", "describe", "explain_lines", "report"]
