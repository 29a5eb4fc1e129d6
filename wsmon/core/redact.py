"""Secrets never reach the screen, a recording, a report or a log: passwords in DSNs, tokens in URLs."""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "key",
        "apikey",
        "api_key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "auth",
        "authorization",
        "sig",
        "signature",
        "jwt",
        "session",
        "sessionid",
        "cookie",
    }
)
_LIBPQ_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with its password and any token-like query values replaced by ***."""
    if "://" not in url:
        return _LIBPQ_PASSWORD.sub(lambda m: m.group(1) + MASK, url)
    if url.startswith("unix://") and "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if sep else f"{user}@{hostport}"
        # redis://:password@host has an empty user and a password
        if not sep and user and parts.scheme.startswith("redis") and not parts.username:
            netloc = f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*")
    fragment = parts.fragment
    if parts.scheme == "unix" and not netloc:
        # urlunsplit would drop the empty authority of unix:///path
        return f"unix://{parts.path}" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _secret_name(name: str) -> bool:
    name = name.lstrip("-").lower().replace("-", "_")
    if name in SECRET_PARAMS or any(name.endswith("_" + secret) for secret in SECRET_PARAMS):
        return True
    return name.endswith(_SECRET_ENDINGS)  # PGPASSWORD, MYAPP_DBPASSWORD, GITHUBTOKEN


_SECRET_ENDINGS = ("password", "passwd", "secret", "token", "apikey", "credential", "credentials")


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with its secrets masked: URLs' passwords and tokens, ``--password VALUE``,
    ``--token=VALUE``, ``PASSWORD=VALUE``, libpq ``password=…``, ``Authorization: Bearer …`` header
    arguments and commands inside one argument; everything else unchanged."""
    out: list[str] = []
    for arg in redact_header_args(argv):
        if out and out[-1].startswith("--") and "=" not in out[-1] and _secret_name(out[-1]):
            out.append(MASK)
            continue
        if (out and out[-1] in HEADER_FLAGS) or arg.partition("=")[0] in HEADER_FLAGS:
            out.append(arg)  # already shown by redact_header (env: references kept)
            continue
        if out and out[-1] == "-H" and ":" in arg:
            out.append(f"{arg.partition(':')[0]}: {MASK}")  # curl -H 'X-Key: …' in a command: a credential
            continue
        header = _SECRET_HEADER.match(arg)
        if header:
            out.append(f"{header.group(1)}: {MASK}")  # curl -H 'Authorization: Bearer …'
            continue
        if " " in arg:
            out.append(_redact_words(arg))  # a command in one argument: --server "node s.js --token T"
            continue
        name, sep, value = arg.partition("=")
        if sep and "://" not in name and " " not in name and _secret_name(name):
            out.append(f"{name}={MASK}")
        elif sep and "://" not in name and "://" in value:
            out.append(f"{name}={redact_url(value)}")
        else:
            out.append(redact_url(arg))  # a URL, or the libpq password= form; anything else unchanged
    return out


def _redact_words(text: str) -> str:
    try:
        words = shlex.split(text)
    except ValueError:
        return redact_text(text)
    masked = redact_argv(words)
    return redact_text(text) if masked == words else shlex.join(masked)


def redact_command(command: str | Sequence[str]) -> str:
    """A command line (a string, or its words) as it may be shown or recorded: secrets masked."""
    if isinstance(command, str):
        return _redact_words(command)
    return shlex.join(redact_argv([str(word) for word in command]))


# --- free text: log lines, error messages that echo what they were given ---------------------------

_HEADER_NAMES = r"(?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token|x-access-token|api-key"
_SECRET_HEADER = re.compile(rf"\s*({_HEADER_NAMES})\s*:\s*\S", re.IGNORECASE)
# Free text is searched lower-cased and case-sensitively: one quick scan for a cue word, then a match
# at each cue. An IGNORECASE pattern tried at every position cost ~50 µs a log line; this a few.
_CUE = re.compile(
    r"password|passwd|secret|token|apikey|api[_-]key|credential|pwd|auth|cookie|session|jwt|sig|bearer"
    r"|basic|digest"
)
# Every _CUE match contains one of CUE_WORDS within a run of letters, digits and _, or is one of
# CUE_ACROSS: a text with none of them (and no "://") is one ``redact_text`` leaves as it is. The log
# pre-filter tests a line's words for them, remembered per word, instead of scanning the line.
CUE_WORDS = (
    "password", "passwd", "secret", "token", "apikey", "api_key", "credential", "pwd", "auth", "cookie",
    "session", "jwt", "sig", "bearer", "basic", "digest",
)  # fmt: skip
CUE_ACROSS = ("api-key",)
# A name that holds a secret: strong words at the end of any name (DB_PASSWORD, PGPASSWORD,
# access_token), weaker ones only as a whole word or after a separator (auth, but not author).
_SECRET_KEY = (
    r"(?:password|passwd|secret|token|apikey|api[_-]key|credentials?"
    r"|(?<![a-z0-9])(?:pwd|auth|authorization|cookie|session|sessionid|jwt|sig|signature))\b"
)
_VALUE = (
    r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    r"|(?:bearer|basic|digest|token)\s+[^\s,;]+"
    r"|[\"']?[^\s,;&\"'<>}\])]+)"
)
_ASSIGNED_AT = re.compile(rf"{_SECRET_KEY}\"?'?\s*[=:]\s*({_VALUE})")
_CREDENTIAL_AT = re.compile(r"(?<![a-z0-9])(bearer|basic|digest)\s+([\w.~+/=-]{6,})")
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][\w+.-]*://[^\s\"'<>]+")
_SCHEMES = re.compile(r"[Bb]earer|BEARER|[Bb]asic|BASIC|[Dd]igest|DIGEST")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def redact_text(text: str) -> str:
    """Free text with its secrets masked: passwords and tokens in URLs, ``password=…``/``token: …``
    assignments (also JSON-ish ``"password": "…"``), ``Authorization: …`` and ``Bearer``/``Basic``
    credentials."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    if "=" not in text and ":" not in text and (" " not in text or _SCHEMES.search(text) is None):
        return text  # no assignment and no credential: most log lines end here, in well under a µs
    lowered = text.lower()
    if len(lowered) != len(text):  # a few non-ASCII letters lower-case to two characters
        lowered = text.translate(_ASCII_LOWER)
    cues = _CUE.finditer(lowered)
    first = next(cues, None)
    if first is None:
        return text
    out: list[str] = []
    done = 0  # text[:done] is settled
    for cue in itertools.chain((first,), cues):
        at = cue.start()
        if at < done:
            continue
        found = _ASSIGNED_AT.match(lowered, at)
        if found is not None:
            start, end = found.span(1)
        else:
            found = _CREDENTIAL_AT.match(lowered, at)
            if found is None or not _credential(found, text):
                continue
            start, end = found.span(2)
        value = text[start:end]
        if value.endswith(MASK):
            continue
        quote = value[0] if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0] else ""
        out.append(text[done:start] + quote + MASK + quote)
        done = end
    return "".join(out) + text[done:] if out else text


def _credential(found: re.Match[str], text: str) -> bool:
    """``Bearer x`` always; ``Basic``/``Digest`` only as the scheme names are written, with a value that
    is no plain word ("the basic idea" stays)."""
    if found.group(1) == "bearer":
        return True
    value = text[found.start(2) : found.end(2)]
    return text[found.start(1)].isupper() and len(value) >= 8 and not value.isalpha()


# A header value that only names where the secret is (env:NAME), with an optional auth scheme.
_ENV_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*")
_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate"})


def is_env_ref(word: str) -> bool:
    return _ENV_REF.fullmatch(word) is not None


def redact_header(line: str) -> str:
    """A ``Name: value`` header (``--header``) as it may be shown: every value is masked, since headers
    given to a probe are mostly credentials, unless it only names an environment variable
    (``Authorization: Bearer env:TOKEN``). A line without a colon is masked whole."""
    name, sep, value = line.partition(":")
    if not sep:
        return MASK
    words = value.split()
    if (
        words
        and all(is_env_ref(w) or w.lower() in _AUTH_SCHEMES for w in words)
        and any(map(is_env_ref, words))
    ):
        return f"{name.strip()}: {' '.join(words)}"
    return f"{name.strip()}: {MASK}"


HEADER_FLAGS = frozenset({"--header"})


def redact_header_args(argv: Sequence[str]) -> list[str]:
    """A command line with each ``--header VALUE`` / ``--header=VALUE`` shown by ``redact_header``:
    for the command line a recording keeps (a header's value is a credential, not a URL)."""
    out: list[str] = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if out and out[-1] in HEADER_FLAGS:
            out.append(redact_header(arg))
        elif sep and flag in HEADER_FLAGS:
            out.append(f"{flag}={redact_header(value)}")
        else:
            out.append(arg)
    return out
