"""Server log lines into events: pure, synchronous, testable without a process.

Understands the lines real loggers write in their default and common configurations — JSON from
winston, pino, bunyan, Python's logging with a JSON formatter, structlog, Go's slog and zap; key=value
text (logfmt, structlog's renderers); and plain text — and recognises what a line is about by
vocabulary (``vocabulary``): a connection opened or closed, a delivery that succeeded or failed, an
error or a crash. ANSI colour codes are stripped everywhere, inside every field too.

Every line that is a warning or worse, or that no recogniser claimed, is kept as a LogLine with its
structured fields (capped, secrets masked), so nothing is lost. A line that cannot be decoded (a JSON
document nested 10,000 deep, say) is kept as a plain line: no line can stop a log source.

A "line" may be a folded block: an error line with its stack trace below it, joined by newlines (see
``folding.StackFolder``); it is one LogLine of level error at least, and the source-code lines a crash
prints (Node's ``throw new …`` above the error) are part of it, never events of their own.

Custom rules (``rules``) are tried before the built-in recognisers. This module holds the recogniser
itself (``LogParser``: the pre-filter, the order of the recognisers, what each one makes); a line is
decoded in ``lines``, what it says is read in ``text`` and ``fields``, and remembered in ``memos``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from wsmon.core import events as ev
from wsmon.sources.logs import scan
from wsmon.sources.logs import vocabulary as vocab
from wsmon.sources.logs.fields import (
    _close_code,
    _closer,
    _conn_of,
    _duration_s,
    _latency_ms,
    _message_id,
    _number,
    _peer_of,
    _text_of,
)
from wsmon.sources.logs.lines import (
    _decode_record,
    _from_record,
    _from_text,
    _head_decoder,
    _Line,
    _record_parts,
)
from wsmon.sources.logs.memos import (
    _CHATTER_SEEN,
    _MEMO_MAX_CHARS,
    _UNSEEN,
    _chatter_kept,
    _quiet,
    _remember,
    _Shape,
    _Words,
)
from wsmon.sources.logs.rules import Rule
from wsmon.sources.logs.scan import scan as scan_words
from wsmon.sources.logs.text import (
    _failure_from_text,
    _is_warning,
    _level_for_text,
    _level_said,
    _phrase_reason,
    at_least,
)
from wsmon.sources.logs.vocabulary import strip_ansi

MAX_CLOSED_REMEMBERED = 10_000
_NOT_CHATTER = scan.CUE | scan.ALARM
MAX_TEXT_CHARS = 16_384  # a line kept as plain text after it failed to decode is cut here


@dataclass(frozen=True, slots=True)
class Explanation:
    """What one log line was recognised as, and by which rule: for ``wsmon logs explain``."""

    events: list[ev.Event]
    why: str


Clock = Callable[[], tuple[float, float]]


class LogParser:
    """Turns one server's log lines into events. ``source`` names the target (e.g. "server")."""

    def __init__(self, source: str, clock: Clock, rules: Sequence[Rule] | None = None) -> None:
        self.source = source
        self.clock = clock
        self.rules = tuple(rules or ())
        self._open_since: dict[str, float] = {}
        # Connections this log has closed: a server that logs one close twice ("client left", then
        # "connection closed code=1000") must not count it twice. Bounded; a reopened id leaves it.
        self._closed_ids: dict[str, None] = {}

    def parse(self, line: str) -> list[ev.Event]:
        return self._explain(line)[0]

    def parse_many(self, blocks: Iterable[str]) -> list[ev.Event]:
        """The events of several lines (a read chunk's), in their order: ``parse`` for each, in one call,
        all stamped with one reading of the clock (the lines were read at one time)."""
        events: list[ev.Event] = []
        explain = self._explain
        at = self.clock()
        for block in blocks:
            events += explain(block, at=at)[0]
        return events

    def explain(self, line: str) -> Explanation:
        events, why = self._explain(line)
        return Explanation(events, why)

    def _explain(
        self, line: str, *, shortcuts: bool = True, at: tuple[float, float] | None = None
    ) -> tuple[list[ev.Event], str]:
        """(events, why): ``parse`` needs no Explanation made for each line. Without ``shortcuts`` (the
        pre-filter and the quiet JSON line) every line goes through the recognisers: the full path the
        fast one is tested against (tests/test_logparse_fastpath.py). ``at``: the clock, read already."""
        block = line.rstrip("\r\n")
        if not block or block.isspace():
            return [], "blank"
        wall, mono = self.clock() if at is None else at
        try:
            parsed: _Line | None = None
            if shortcuts and "\n" not in block and not self.rules:
                if block[0] == "{":
                    chatter = self._chatter(block, wall, mono)
                    if chatter is not None:
                        return chatter
                    record = _decode_record(block)
                    if record is not None:
                        return self._recognise_record(record, wall, mono)
                else:
                    chatter = self._text_chatter(block, wall, mono)
                    if isinstance(chatter, _Line):
                        parsed = chatter  # not chatter: made ready with what the pre-filter found
                        if _quiet_pairs(parsed):
                            return [self._log(parsed, wall, mono)], _plain_why(parsed)
                    elif chatter is not None:
                        return chatter
            if parsed is None:
                parsed = self._prepare(block)
            if self.rules:
                ruled = self._by_rules(parsed, wall, mono)
                if ruled is not None:
                    return ruled
            return self._recognise(parsed, wall, mono)
        except Exception as error:  # no line may stop the source: keep it as plain text
            text = vocab.mask_text(strip_ansi(block)[:MAX_TEXT_CHARS])
            start = text[:200]
            level = _level_said(start, start.lower()) or "info"
            note = f"not decoded ({type(error).__name__}): kept as a plain line"
            log = ev.LogLine(wall=wall, mono=mono, level=level, text=text, source=self.source)
            return [log], note

    # --- the pre-filter: most lines are chatter -------------------------------------------------

    def _chatter(self, block: str, wall: float, mono: float) -> tuple[list[ev.Event], str] | None:
        """The pre-filter. A JSON line is first decoded for its message and level alone (msgspec into
        a small Struct, skipping every other field); when the message names nothing wsmon recognises
        and the level is below a warning — most lines of a busy server — it is kept as its message and
        level, without the recognisers and without its other fields. None for any other line."""
        try:
            head = _head_decoder.decode(block)
        except msgspec.DecodeError:  # not JSON, not an object, a message that is not a string ...
            return None
        message = head.msg or head.message or head.event
        if not message:
            return None
        raw_level = head.level
        if raw_level is None:
            raw_level = head.severity
            if raw_level is None:
                raw_level = head.levelname if head.levelname is not None else head.lvl
        seen = (message, raw_level)
        kept = _CHATTER_SEEN.get(seen, _UNSEEN)
        if kept is _UNSEEN:
            kept = _chatter_kept(message, raw_level)
            if len(message) <= _MEMO_MAX_CHARS:
                _remember(_CHATTER_SEEN, seen, kept)
        if kept is None:
            return None
        log = ev.LogLine(wall=wall, mono=mono, level=kept[0], text=kept[1], source=self.source)
        return [log], "no event in its words, below a warning: kept as its message (pre-filter)"

    def _text_chatter(
        self, block: str, wall: float, mono: float
    ) -> tuple[list[ev.Event], str] | _Line | None:
        """The pre-filter for a plain text line: none of the recognisers' words, no level above info.
        An ASCII line it does not keep comes back ready for recognition, with what its scan found."""
        plain = strip_ansi(block)
        lowered = plain.lower()
        if plain.isascii():  # its words scanned once, each word's verdict remembered (``scan``)
            scanned = scan_words(lowered)
            flags, said = scanned
            if flags & _NOT_CHATTER:
                return None if block.lstrip().startswith("{") else _from_text(plain, scanned, lowered)
            # no word masking looks for and no URL: masking would leave the line as it is
            text = vocab.mask_text(plain) if flags & scan.SECRET or "://" in plain else plain
        else:
            if "warn" in lowered or "err" in lowered or "crit" in lowered or vocab.line_has_cue(lowered):
                return None
            said, text = _level_said(plain, lowered), vocab.mask_text(plain)
        log = ev.LogLine(wall=wall, mono=mono, level=said or "info", text=text, source=self.source)
        return [log], "no event in its words, below a warning: kept as it is (pre-filter)"

    def _recognise_record(
        self, record: dict[str, Any], wall: float, mono: float
    ) -> tuple[list[ev.Event], str]:
        """A one-line JSON record the pre-filter did not keep. When no recogniser can make an event of a
        line with its keys and message, whatever the values (known once per keys and message), it is
        kept as a log line at once; otherwise it goes through the recognisers."""
        flat, shape, message, level, words = _record_parts(record)
        if not _quiet_memo(shape, message, words):
            line = _Line(message, level, message, flat, shape.skip, record, words.crashed, shape=shape,
                         lowered=words.lowered, _words=words)  # fmt: skip
            return self._recognise(line, wall, mono)
        floor = words.level_floor
        log = ev.LogLine(
            wall=wall,
            mono=mono,
            level=at_least(level, floor) if floor else level,
            text=words.masked,
            source=self.source,
            fields=vocab.kept_by(flat, shape.kept) if flat else {},
        )
        return [log], _plain_why_of(words.crashed, level)

    # --- one line, ready for recognition --------------------------------------------------------

    def _prepare(self, block: str) -> _Line:
        head, _, continuation = block.partition("\n")
        stripped = head.lstrip()
        if stripped.startswith("{"):
            record = _decode_record(stripped)
            if record is not None:
                return _from_record(record, strip_ansi(continuation))
        return _from_text(strip_ansi(block))

    # --- custom rules ---------------------------------------------------------------------------

    def _by_rules(self, line: _Line, wall: float, mono: float) -> tuple[list[ev.Event], str] | None:
        # A rule's regex is searched in a JSON line's message, or in the whole (first) line of text.
        subject = line.message if line.record is not None else line.text.partition("\n")[0]
        for rule in self.rules:
            event = rule.apply(subject, line.record, wall=wall, mono=mono, source=self.source)
            if event is None:
                continue
            out: list[ev.Event] = [event]
            if _is_warning(line.level):
                out.append(self._log(line, wall, mono))
            return out, f"custom rule {rule.name or '(unnamed)'}"
        return None

    # --- vocabulary -----------------------------------------------------------------------------

    def _recognise(self, line: _Line, wall: float, mono: float) -> tuple[list[ev.Event], str]:
        lowered = line.lowered
        if line.source_line:
            return [self._log(line, wall, mono)], "source line of a stack trace: kept, no event"
        if lowered == "connection stats":
            traffic = self._traffic(line, wall, mono)
            if traffic is not None:
                return [traffic], "traffic: 'connection stats'"
        if not line.words.cue:
            return [self._log(line, wall, mono)], _plain_why(line)
        failure = self._failure(line, wall, mono)
        if failure is not None:
            event, phrase = failure
            line.level = at_least(line.level, "error")
            return [event, self._log(line, wall, mono)], f"delivery failed: {phrase!r}"
        if not line.crash:
            for attempt in (self._closed, self._opened, self._delivered):
                found = attempt(line, wall, mono)
                if found is not None:
                    event, why = found
                    out: list[ev.Event] = [event]
                    if _is_warning(line.level):
                        out.append(self._log(line, wall, mono))
                    return out, why
        return [self._log(line, wall, mono)], _plain_why(line)

    def _failure(self, line: _Line, wall: float, mono: float) -> tuple[ev.DeliveryFailed, str] | None:
        words = line.words
        match = words.strong
        if match is None:
            weak = words.weak
            if weak is None and line.flat and words.send:
                # "send" with error "write after end": the weak words may be in the error field
                error = line.error_text().lower()
                weak = vocab.gated(vocab.FAIL_WEAK, vocab.WEAK_GATE, error) if error else None
            if weak is None:
                return None
            if not (words.send or _message_id(line)):
                return None
            match = weak
        message_id = _message_id(line)
        phrase = match.group(0)
        text_id, text_reason = _failure_from_text(line.message)
        reason = text_reason or line.error_text() or _phrase_reason(line.message, match)
        conn = _conn_of(line, bare_id=False)  # a recipient that is not connected has no connection
        event = ev.DeliveryFailed(
            wall=wall,
            mono=mono,
            message_id=message_id or text_id,
            conn=conn,
            reason=vocab.mask_text(reason) if reason else "delivery failed",
            source=self.source,
        )
        return event, phrase

    def _closed(self, line: _Line, wall: float, mono: float) -> tuple[ev.ConnectionClosed, str] | None:
        match = line.words.close
        if (
            match is None
            and "code" not in line.lowered
            and not (line.may_have("code") and "code" in line.roles)
        ):
            return None  # neither a word nor a code of a close: skip the code searches
        code = _close_code(line, close_words=match is not None)
        if match is None and code is None:
            return None
        conn = _conn_of(line)
        if not conn:
            return None
        if conn in self._closed_ids:
            return None  # already closed by an earlier line of this log: kept as a log line only
        self._closed_ids[conn] = None
        if len(self._closed_ids) > MAX_CLOSED_REMEMBERED:
            del self._closed_ids[next(iter(self._closed_ids))]
        opened = self._open_since.pop(conn, None)
        duration = _duration_s(line.flat)
        event = ev.ConnectionClosed(
            wall=wall,
            mono=mono,
            conn=conn,
            code=1005 if code is None else code,
            reason=vocab.mask_text(_text_of(line.roles.get("reason"))),
            closed_by=_closer(line),
            duration_s=duration if duration is not None else (mono - opened if opened is not None else None),
            source=self.source,
        )
        said = repr(match.group(0)) if match else "a close code"
        return event, f"connection closed: {said}" + ("" if code is not None else ", no code given: 1005")

    def _opened(self, line: _Line, wall: float, mono: float) -> tuple[ev.ConnectionOpened, str] | None:
        match = line.words.open
        if match is None or line.words.not_opening:
            return None
        conn = _conn_of(line)
        if not conn:
            return None
        self._open_since[conn] = mono
        self._closed_ids.pop(conn, None)
        event = ev.ConnectionOpened(
            wall=wall,
            mono=mono,
            conn=conn,
            peer=_peer_of(line),
            path=vocab.mask_text(_text_of(line.flat.get("path", line.flat.get("url", "")))),  # ?token=…
            source=self.source,
        )
        return event, f"connection opened: {match.group(0)!r}"

    def _delivered(self, line: _Line, wall: float, mono: float) -> tuple[ev.LatencySample, str] | None:
        match = line.words.delivered
        if match is None:
            return None
        latency = None
        if line.may_have("latency_ms") or line.may_have("latency_s"):
            latency = _latency_ms(line.roles)
        if latency is None:
            latency = line.words.said_ms
        if latency is None:
            return None  # a success without a latency is kept as a line; there is no event to count it
        sample = ev.LatencySample(
            wall=wall, mono=mono, kind="delivery", ms=latency, target=self.source, ref=_message_id(line)
        )
        return sample, f"delivered: {match.group(0)!r} with a latency"

    def _traffic(self, line: _Line, wall: float, mono: float) -> ev.Traffic | None:
        conn = _conn_of(line)
        if not conn:
            return None
        flat = line.flat
        return ev.Traffic(
            wall=wall,
            mono=mono,
            conn=conn,
            msgs_in=int(_number(flat.get("msgs_in"), 0)),
            msgs_out=int(_number(flat.get("msgs_out"), 0)),
            bytes_in=int(_number(flat.get("bytes_in"), 0)),
            bytes_out=int(_number(flat.get("bytes_out"), 0)),
            interval_s=_number(flat.get("interval_ms"), 1000.0) / 1000.0,
        )

    def _log(self, line: _Line, wall: float, mono: float) -> ev.LogLine:
        if line.text is line.message:  # a JSON line's text is its message: what the words say is known
            words = line.words
            floor = words.level_floor
            level = at_least(line.level, floor) if floor else line.level
            text = line.text if line.maskless else words.masked
        else:
            level = _level_for_text(line.level, line.text)
            text = line.text if line.maskless else vocab.mask_text(line.text)
        if not line.flat:
            fields: dict[str, str] = {}
        elif line.shape is not None:
            fields = vocab.kept_by(line.flat, line.shape.kept, maskless=line.maskless)
        else:
            fields = vocab.kept_fields(line.flat.items(), line.skip)
        return ev.LogLine(
            wall=wall,
            mono=mono,
            level=level,
            text=text,
            source=self.source,
            fields=fields,
        )


def _quiet_pairs(line: _Line) -> bool:
    """Whether no recogniser can make an event of a key=value line, known by its keys and message as a
    JSON line's is (``memos._quiet``, remembered in its shape): ``_recognise`` would keep it as a log
    line, after the recognisers' checks (a routed message's line: 1.5 µs). Only when the line's crash
    is its message's (``_quiet`` reads the message's)."""
    shape = line.shape
    if shape is None or line.source_line:
        return False
    words = line.words
    if line.crash != words.crashed:
        return False
    return _quiet_memo(shape, line.message, words)


def _quiet_memo(shape: _Shape, message: str, words: _Words) -> bool:
    """``memos._quiet`` for these keys and this message, remembered in the shape (short messages)."""
    quiet = shape.quiet.get(message)
    if quiet is None:
        quiet = _quiet(shape, words)
        if len(message) <= _MEMO_MAX_CHARS:
            _remember(shape.quiet, message, quiet)
    return quiet


def _plain_why(line: _Line) -> str:
    return _plain_why_of(line.crash, line.level)


def _plain_why_of(crash: bool, level: str) -> str:
    if crash:
        return "crash or stack trace: kept as an error line"
    if _is_warning(level):
        return f"no event in its words; kept ({level})"
    return "no event in its words; kept as a log line"


__all__ = ["Explanation", "LogParser"]
