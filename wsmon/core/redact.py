"""Secrets never reach the screen, a recording, a report or a log: passwords in DSNs, tokens in URLs."""

from __future__ import annotations

import re
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
