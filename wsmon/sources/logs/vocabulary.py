"""The words and field names real WebSocket servers log with, and a log line's fields kept for later.

Recognition matches vocabulary, not sentences: a server may say "client joined", "new connection" or
"connection established" for the same thing, and name the connection ``connectionId``, ``socketId``,
``sid`` or ``client.id``. Field names are compared normalised (lower case, without ``_``/``-``), and
nested objects are flattened to dotted keys, so ``payload.messageId`` and ``error.message`` are found
wherever a logger put them. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from wsmon.core.redact import MASK, redact_text
from wsmon.sources.logs.quickre import quick

MAX_FIELDS = 32  # a kept line carries at most this many fields ...
MAX_FIELD_CHARS = 400  # ... each cut to this many characters
MAX_DEPTH = 4  # nested objects deeper than this are kept as their JSON-ish text

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


# --- vocabulary -----------------------------------------------------------------------------------

# Failing to send: phrases that say so on their own ...
FAIL_STRONG = quick(
    r"fail(?:ed|ure)? to (?:send|deliver|write|forward|route|relay|emit|push)"
    r"|(?:delivery|send|sending|write|forward(?:ing)?|routing|relay) (?:has |was )?(?:failed|failure|error)"
    r"|(?:could|can)\s?not (?:send|deliver|forward|route|relay)|unable to (?:send|deliver|forward|route)"
    r"|undeliverable|messagedeliveryerror|not delivered"
    r"|(?:unknown|missing|unregistered|offline|absent|invalid) (?:recipient|target|device|destination|peer)"
    r"|(?:recipient|target device|device|destination|peer) (?:was |is )?(?:not found|unknown|offline"
    r"|not connected|not registered|does not exist|gone)"
    r"|no such (?:recipient|device|client|connection|peer)"
    r"|(?:message|msg) dropped|drop(?:ped|ping) (?:message|msg)"
    r"|(?:recipient|device|destination|peer) \S+ (?:is |was )?"
    r"(?:not connected|not found|unknown|offline|gone)"
)
# ... and words that mean it only where a send is in view (a message id, or "send", "deliver" ...).
FAIL_WEAK = quick(
    r"\bnot open\b|\bepipe\b|\beconnreset\b|write after end|broken pipe|readystate [23]\b"
    r"|(?:on|to) (?:a |the )?closed (?:socket|connection|websocket)|is (?:already )?closed"
    r"|after (?:it was |the socket was )?closed|socket hang up"
)
SEND_CONTEXT = re.compile(r"send|sent\b|deliver|writ|forward|recipient|relay|rout")
CLOSE = quick(
    r"\bdisconnect(?:ed|ing)?\b|\bclos(?:ed|ing|e)\b|\bconnection (?:lost|dropped|reset|terminated|ended)\b"
    r"|\bhung up\b|\bhang up\b|\bwent away\b|\bleft\b|\bterminated\b|\bgoodbye\b|\bdeparted\b"
)
OPEN = quick(
    r"\b(?:re)?connected\b|\bconnection (?:established|opened|open|accepted|ready)\b"
    r"|\bnew (?:websocket |ws |socket )?(?:connection|client|socket|session)\b"
    r"|\b(?:client|socket|device|peer|user) (?:joined|connected|attached|opened)\b|\bjoined\b|\bopened\b"
    r"|\baccepted (?:connection|websocket|client)\b|\bhandshake (?:complete|completed|done|succeeded)\b"
)
DELIVERED = quick(
    r"\bdelivered\b|\b(?:message|msg) (?:sent|forwarded|routed|relayed|acked|acknowledged)\b"
    r"|\b(?:sent|forwarded|routed|relayed) (?:message|msg)\b|\backnowledged\b|\back(?:ed)? received\b"
)
CRASH = quick(r"uncaught ?exception|unhandled ?rejection|unhandled exception|\bfatal\b|\bpanic\b")
CRASH_GATE = ("uncaught", "unhandled", "fatal", "panic")
# Each regex above is tried only when one of its words is in the line: a substring test costs a
# fraction of a regex scan, and most lines have none of them.
STRONG_GATE = ("fail", "not", "unable", "undeliver", "unknown", "missing", "unregistered", "offline",
               "absent", "invalid", "no such", "drop", "gone", "can")  # fmt: skip
WEAK_GATE = (
    "not open",
    "epipe",
    "econnreset",
    "write after",
    "broken pipe",
    "readystate",
    "closed",
    "hang up",
)
CLOSE_GATE = ("disconnect", "clos", "connection ", "hung up", "hang up", "went away", "left", "terminated",
              "goodbye", "departed")  # fmt: skip
OPEN_GATE = ("connect", "new ", "joined", "opened", "accepted", "handshake", "attached")
DELIVERED_GATE = ("deliver", "sent", "forward", "rout", "relay", "ack")


def gated(pattern: re.Pattern[str], gate: tuple[str, ...], lowered: str) -> re.Match[str] | None:
    for word in gate:
        if word in lowered:
            return pattern.search(lowered)
    return None


# Whether a line can be about any of the above: a few substring tests before any regex or decoding.
CUES = (
    "conn", "open", "clos", "join", "left", "hung", "hang", "went", "termin", "bye", "depart", "accept",
    "handshake", "fail", "deliver", "send", "sent", "recipient", "epipe", "reset", "write", "dropped",
    "error", "not ", "ack", "routed", "relay", "forward", "uncaught", "unhandled", "fatal", "panic",
    "offline", "unknown", "missing", "no such", "exception", "refused", "timed", "invalid", "stats", "gone",
)  # fmt: skip


def _by_first_letter(words: Iterable[str]) -> str:
    """One alternation of literal words, grouped by their first letter ("c(?:onn|los)|o(?:pen|ffline)"):
    the regex engine then tries one group at a position instead of every word (about twice as fast);
    it matches where any of the words is found, as a plain alternation of them would."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(re.escape(word[1:]))
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in groups.items())


_CUE = re.compile(_by_first_letter(CUES))


def has_cue(lowered: str) -> bool:
    """Whether a line's (lower-cased) message can be about anything wsmon recognises: one regex scan
    decides, before any of the recognisers' work, for the many lines that are chatter."""
    return _CUE.search(lowered) is not None


# A whole text line's cues, by its words. A cue of letters alone lies within one run of the letters
# a-z, so the line is cut into such runs (one bytes.translate and split, in C) and each run's verdict
# is remembered: a line's words repeat line after line (its ids are digits, cut away here), and a
# dictionary look-up per word costs a third of the regex scan of the whole line. Cues with other
# characters ("not ", "no such") are looked for in the line itself.
_SPACED_CUES = tuple(cue for cue in CUES if not re.fullmatch("[a-z]+", cue))
_LETTER_CUES = re.compile(_by_first_letter(cue for cue in CUES if re.fullmatch("[a-z]+", cue)).encode())
_LETTERS_ONLY = bytes(c if 0x61 <= c <= 0x7A else 0x20 for c in range(256))  # a-z kept, all else a space
_RUN_CUES: dict[bytes, bool] = {}
_RUN_MAX_BYTES = 64  # longer runs (a base64 blob) are searched, never remembered


def line_has_cue(lowered: str) -> bool:
    """``has_cue`` of a whole (lower-cased) text line, found word by word: the same verdict."""
    for cue in _SPACED_CUES:
        if cue in lowered:
            return True
    memo = _RUN_CUES
    for run in lowered.encode("utf-8", "surrogatepass").translate(_LETTERS_ONLY).split():
        found = memo.get(run)
        if found is None:
            found = _LETTER_CUES.search(run) is not None
            if len(run) <= _RUN_MAX_BYTES:
                if len(memo) >= 4096:
                    memo.clear()
                memo[run] = found
        if found:
            return True
    return False


# --- field names ----------------------------------------------------------------------------------


def norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


MESSAGE_KEYS = ("msg", "message", "event", "@m", "MESSAGE")
LEVEL_KEYS = ("level", "severity", "levelname", "log.level", "lvl", "@l")
CONN_NAMES = frozenset(
    {
        "conn", "connid", "connectionid", "connection", "socketid", "socket", "clientid", "client", "sid",
        "wsid", "websocketid", "connectionkey", "clientkey", "peerid",
    }
)  # fmt: skip
CONN_PARENTS = frozenset({"conn", "connection", "client", "socket", "ws", "websocket", "peer"})
MESSAGE_ID_NAMES = frozenset({"messageid", "msgid", "mid", "deliveryid"})
MESSAGE_PARENTS = frozenset({"message", "msg", "payload", "data", "body", "envelope", "packet"})
RECIPIENT_NAMES = frozenset({"to", "recipient", "recipientid", "target", "targetid", "todevice", "dest"})
ERROR_NAMES = ("error.message", "err.message", "exception.message", "error", "err", "exception", "exc_info")
CODE_NAMES = frozenset({"closecode", "closestatus", "wscode"})
REASON_NAMES = frozenset({"reason", "closereason", "reasontext"})
CLOSER_NAMES = frozenset({"closedby", "initiator", "initiatedby", "by", "side", "origin"})
PEER_NAMES = frozenset({"peer", "remoteaddress", "remoteaddr", "remote", "ip", "clientaddr", "address"})
LATENCY_MS_NAMES = frozenset(
    {"latencyms", "latency", "durationms", "duration", "elapsedms", "elapsed", "tookms", "took", "ms",
     "deliveryms", "responsetime", "rtt", "rttms"}
)  # fmt: skip
LATENCY_S_NAMES = frozenset({"latencys", "durations", "elapseds", "seconds", "latencyseconds"})


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Nested objects as dotted keys, leaves only; lists and objects deeper than MAX_DEPTH stay whole."""
    for value in record.values():
        if type(value) is dict:
            break
    else:
        return record  # flat already: most lines are
    out: dict[str, Any] = {}
    for key, value in record.items():  # the top level here: one call less for the common one-level nesting
        if type(value) is dict and value:
            _flatten_into(out, key + ".", value, 1)
        else:
            out[key] = value
    return out


def _flatten_into(out: dict[str, Any], prefix: str, obj: dict[str, Any], depth: int) -> None:
    # In the line's own order (so the cap keeps its first fields); the depth is bounded: no deep recursion.
    for key, value in obj.items():
        name = prefix + key
        if type(value) is dict and value and depth < MAX_DEPTH:
            _flatten_into(out, name + ".", value, depth + 1)
        else:
            out[name] = value


_KEY_CACHE: dict[str, tuple[str, str, bool, str]] = {}  # key -> (leaf, parent, secret, role)
_ROLES = (
    ("conn", CONN_NAMES),
    ("message_id", MESSAGE_ID_NAMES),
    ("recipient", RECIPIENT_NAMES),
    ("code", CODE_NAMES),
    ("reason", REASON_NAMES),
    ("closer", CLOSER_NAMES),
    ("peer", PEER_NAMES),
    ("latency_ms", LATENCY_MS_NAMES),
    ("latency_s", LATENCY_S_NAMES),
)


def _key_info(key: str) -> tuple[str, str, bool, str]:
    """What a field's name says (cached: the same keys come line after line)."""
    info = _KEY_CACHE.get(key)
    if info is None:
        if len(_KEY_CACHE) > 4096:  # a logger that puts ids in its keys must not grow this forever
            _KEY_CACHE.clear()
        parent, _, leaf = key.rpartition(".")
        leaf_norm = norm(leaf)
        parent_norm = norm(parent.rpartition(".")[2]) if parent else ""
        secret = leaf_norm in _SECRET_EXACT or any(word in leaf_norm for word in _SECRET_WORDS)
        role = next((role for role, names in _ROLES if leaf_norm in names), "")
        if not role and leaf_norm == "id":
            role = (
                "conn"
                if parent_norm in CONN_PARENTS
                else "message_id"
                if parent_norm in MESSAGE_PARENTS
                else ""
            )
        info = _KEY_CACHE[key] = (leaf_norm, parent_norm, secret, role)
    return info


def roles(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that name a connection, a message id, a close code … by the role their names give
    them; where several fields have one role, the shallowest (then the first) wins."""
    found: dict[str, Any] = {}
    depths: dict[str, int] = {}
    for key, value in flat.items():
        role = _key_info(key)[3]
        if not role or value is None or value == "" or isinstance(value, bool | list | dict):
            continue
        depth = key.count(".") if "." in key else 0
        if role not in found or depth < depths[role]:
            found[role], depths[role] = value, depth
    return found


RoleKeys = tuple[tuple[str, tuple[str, ...]], ...]


def role_keys(keys: Iterable[str]) -> RoleKeys:
    """For a line's keys (the same keys come line after line from one logger, so this is worked out
    once a shape): each role some key names, with the keys that name it, shallowest first, then in the
    line's order. ``roles_by`` then finds what ``roles`` would without looking at every key."""
    candidates: dict[str, list[tuple[int, int, str]]] = {}
    for index, key in enumerate(keys):
        role = _key_info(key)[3]
        if role:
            candidates.setdefault(role, []).append((key.count("."), index, key))
    return tuple((role, tuple(key for _, _, key in sorted(found))) for role, found in candidates.items())


def roles_by(flat: Mapping[str, Any], keys: RoleKeys) -> dict[str, Any]:
    """``roles(flat)`` for a line whose keys ``role_keys`` has read: the first usable value per role."""
    found: dict[str, Any] = {}
    for role, candidates in keys:
        for key in candidates:
            value = flat[key]
            if value is None or value == "" or isinstance(value, bool | list | dict):
                continue
            found[role] = value
            break
    return found


def find(flat: Mapping[str, Any], names: frozenset[str], parents: frozenset[str] = frozenset()) -> Any:
    """The first scalar value whose key's last part is one of ``names`` (top level first), or whose key
    is ``<parent>.id`` for one of ``parents``; None when there is none."""
    best: tuple[int, Any] | None = None
    for key, value in flat.items():
        if value is None or value == "" or isinstance(value, bool | list | dict):
            continue
        leaf, parent, _, _ = _key_info(key)
        if leaf in names or (leaf == "id" and parent in parents):
            depth = key.count(".")
            if best is None or depth < best[0]:
                best = (depth, value)
                if depth == 0:
                    break
    return None if best is None else best[1]


def text_of(value: Any) -> str:
    return strip_ansi(value if isinstance(value, str) else str(value)).strip()


def error_text(flat: Mapping[str, Any]) -> str:
    """The error a line carries: ``error.message``, ``err.message``, ``error``, ``err`` ... first line."""
    for key in ERROR_NAMES:
        value = flat.get(key)
        if value not in (None, "", {}) and not isinstance(value, bool | dict | list):
            text = text_of(value)
            if text.startswith("Traceback") and "\n" not in text:
                text = text.replace("\\n", "\n")  # a repr()'d traceback (structlog's key=value renderer)
            if text.startswith("Traceback"):  # Python's exc_info: the exception is the last line
                return text.rstrip().rpartition("\n")[2].strip()
            return text.partition("\n")[0]
    return ""


# --- key=value text (logfmt, structlog's key-value and console renderers) ------------------------

# A pair starts the line or follows a whitespace. The pattern that says so with a lookbehind is tried at
# every position; these two are tried at the start and, skipping there in C, at each whitespace (which
# the second takes up: a pair never ends with one, so no pair loses the whitespace before it). The
# quoted values are unrolled (runs of plain characters between escapes): the same values, found faster.
_PAIR = r"""([A-Za-z_@][\w.@-]*)=("[^"\\]*(?:\\.[^"\\]*)*"|'[^'\\]*(?:\\.[^'\\]*)*'|[^\s"']\S*)"""
_KV_FIRST = re.compile(_PAIR)
_KV_AFTER_SPACE = re.compile(r"\s" + _PAIR)


def first_key_value(text: str) -> int:
    """Where the first key=value pair of a line starts, or -1."""
    if _KV_FIRST.match(text):
        return 0
    match = _KV_AFTER_SPACE.search(text)
    return match.start() + 1 if match else -1


# The same pairs with a quoted value's text inside its quotes as a group of its own: each pair is
# (key, "-quoted text, '-quoted text, bare value), one of the three matched and the others empty, so
# the value is the first one not empty and no value is unquoted afterwards: 0.6 µs less a line of
# eight pairs than the dict and its unquoting loop. For lines with no backslash (no escape to undo).
_PAIR_PARTS = (
    r"""([A-Za-z_@][\w.@-]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|'([^'\\]*(?:\\.[^'\\]*)*)'|([^\s"']\S*))"""
)
_KV_PARTS_AFTER_SPACE = re.compile(r"\s" + _PAIR_PARTS)


def key_values(text: str) -> dict[str, str]:
    """A line's key=value pairs, quoted values unquoted, at most MAX_FIELDS of them."""
    if "\\" in text:  # an escaped quote to undo, perhaps: the pairs as they are, then unquoted
        return _key_values_escaped(text)
    # A space before the line: a pair at its start follows a whitespace too (one findall, no match)
    pairs = _KV_PARTS_AFTER_SPACE.findall(" " + text)
    if len(pairs) > MAX_FIELDS:
        return _key_values_escaped(text)  # the cap: the pairs one by one
    return {key: double or single or bare for key, double, single, bare in pairs}


def _key_values_escaped(text: str) -> dict[str, str]:
    """``key_values`` of any line: the pairs with their quotes, unquoted after."""
    first = _KV_FIRST.match(text)
    # findall: the pairs in one call, no match object each (a key=value line has a dozen of them)
    pairs = _KV_AFTER_SPACE.findall(text, first.end()) if first else _KV_AFTER_SPACE.findall(text)
    if first:
        pairs.insert(0, first.groups())
    if len(pairs) <= MAX_FIELDS:  # the cap cannot be reached: the pairs as they are, in C, then unquoted
        out = dict(pairs)
        if '"' in text or "'" in text:
            for key, value in out.items():  # a value replaced, no key added: the dict may be iterated
                quote = value[0]  # a value is never empty
                if (quote == '"' or quote == "'") and len(value) >= 2 and value[-1] == quote:
                    out[key] = _unquoted(value)
        return out
    out = {}
    for key, value in pairs:
        quote = value[0]
        out[key] = _unquoted(value) if quote in "\"'" and len(value) >= 2 and value[-1] == quote else value
        if len(out) >= MAX_FIELDS:
            break
    return out


def _unquoted(value: str) -> str:
    return value[1:-1].replace('\\"', '"').replace("\\'", "'")


# --- what a kept line carries ---------------------------------------------------------------------

_SECRET_WORDS = ("password", "passwd", "secret", "token", "authorization", "cookie", "apikey", "credential")
_SECRET_EXACT = frozenset({"auth", "pwd", "key", "sig", "signature", "jwt", "session", "sessionid"})


def is_secret_key(key: str) -> bool:
    return _key_info(key)[2]


def mask_text(text: str) -> str:
    """Passwords and tokens in URLs, ``password=…``-like assignments and bearer credentials in free
    text, masked (a logged DSN, ``Authorization: Bearer …``)."""
    return redact_text(text)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1] + "…"


def kept_fields(items: Iterable[tuple[str, Any]], skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """A line's fields as text for the recording: at most MAX_FIELDS, each capped, secrets masked."""
    out: dict[str, str] = {}
    cache = _KEY_CACHE
    for key, value in items:
        if value is None or key in skip:
            continue
        if len(out) >= MAX_FIELDS:
            out["…"] = "more fields not kept"
            break
        info = cache.get(key) or _key_info(key)
        if info[2]:
            out[key] = MASK
            continue
        kind = type(value)
        if kind is str:
            if len(value) > 12 or "\x1b" in value:  # an id is kept as it is, quickly
                value = _cut(mask_text(strip_ansi(value)))
        elif kind is int or kind is float:
            value = str(value)
        else:
            value = _cut(_scalar_text(value))
        out[key] = value
    return out


class KeptPlan(NamedTuple):
    """The keys ``kept_fields`` keeps of a line with these keys, each with whether it is a secret."""

    keys: tuple[tuple[str, bool], ...]
    plain: tuple[str, ...] | None  # the same keys when none is a secret and they fit under the cap


def kept_plan(keys: Iterable[str], skip: frozenset[str] = frozenset()) -> KeptPlan:
    """Worked out once a shape (a logger's set of keys), for ``kept_by``."""
    kept = tuple((key, _key_info(key)[2]) for key in keys if key not in skip)
    plain = len(kept) <= MAX_FIELDS and not any(secret for _, secret in kept)
    return KeptPlan(kept, tuple(key for key, _ in kept) if plain else None)


def kept_by(flat: Mapping[str, Any], plan: KeptPlan, *, maskless: bool = False) -> dict[str, str]:
    """``kept_fields(flat.items(), skip)`` for a line whose keys ``kept_plan`` has read. ``maskless``:
    the values are known to hold no colour code and nothing masking would change (``scan``)."""
    if plan.plain is None:
        return kept_fields(((key, flat[key]) for key, _ in plan.keys))
    out: dict[str, str] = {}
    for key in plan.plain:  # no secret, and the cap cannot be reached: only the values to write
        value = flat[key]
        kind = type(value)
        if kind is str:
            if len(value) > 12 or "\x1b" in value:  # an id is kept as it is, quickly
                value = _cut(value if maskless else mask_text(strip_ansi(value)))
        elif kind is int or kind is float:
            value = str(value)
        elif value is None:
            continue
        else:
            value = _cut(_scalar_text(value))
        out[key] = value
    return out


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return repr(value)[: MAX_FIELD_CHARS + 1]


__all__ = [
    "CLOSE",
    "CRASH",
    "CRASH_GATE",
    "DELIVERED",
    "FAIL_STRONG",
    "FAIL_WEAK",
    "OPEN",
    "SEND_CONTEXT",
    "error_text",
    "find",
    "flatten",
    "has_cue",
    "kept_by",
    "kept_fields",
    "kept_plan",
    "key_values",
    "line_has_cue",
    "mask_text",
    "norm",
    "role_keys",
    "roles_by",
    "strip_ansi",
]
