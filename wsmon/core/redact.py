"""Secrets never reach the screen, a recording, a report or a log: passwords in DSNs, tokens in URLs."""

from __future__ import annotations

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
    return name in SECRET_PARAMS or any(name.endswith("_" + secret) for secret in SECRET_PARAMS)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with its secrets masked: URLs' passwords and tokens, ``--password VALUE``,
    ``--token=VALUE``, ``PASSWORD=VALUE`` and libpq ``password=…``; everything else unchanged."""
    out: list[str] = []
    for arg in redact_header_args(argv):
        if out and out[-1].startswith("--") and "=" not in out[-1] and _secret_name(out[-1]):
            out.append(MASK)
            continue
        if " " in arg and "://" in arg:
            out.append(_redact_words(arg))  # a command in one argument: --server "node s.js --db URL"
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
        return redact_url(text)
    masked = redact_argv(words)
    return text if masked == words else shlex.join(masked)


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
