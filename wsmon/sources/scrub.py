"""Scrubbing a target's URL and password out of free text: error messages can echo a DSN or its password."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from wsmon.core.redact import MASK, redact_url


def scrub(text: str, url: str) -> str:
    """``text`` with the URL replaced by its redacted form and its password, raw or decoded, masked."""
    if not text:
        return text
    if url and url in text:
        text = text.replace(url, redact_url(url))
    password = _password_of(url)
    if password:
        # Masked even when short and even where it is not a secret in context: a leak costs more.
        for form in {password, unquote(password)}:
            text = text.replace(form, MASK)
    return text


def _password_of(url: str) -> str:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return ""
    userinfo, at, _ = netloc.rpartition("@")
    if not at:
        return ""
    _, colon, password = userinfo.partition(":")
    return password if colon else ""
