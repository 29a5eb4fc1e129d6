"""What a probe is asked to do: where to connect, how to open like a real client (headers,
subprotocols, an Origin, a scripted first exchange), and how to keep header values out of every text."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from wsmon.core.redact import MASK

# websockets' own keepalive is off: the probe pings on its own schedule to measure the round trip.
CLOSE_TIMEOUT_S = 2.0
MIN_REPLY_TIMEOUT_S = 5.0
DEFAULT_RECONNECT_S = 30.0


@dataclass(frozen=True)
class ExchangeStep:
    """One step of the first exchange: send ``send`` (if any), then wait up to ``timeout`` seconds for a
    message matching ``expect`` (if any), reading past others. ``{id}`` and ``{probe}`` in ``send`` and
    ``expect`` become a fresh id and the probe's number (1, 2, …), e.g. for a device id per probe.

    ``expect`` is a substring of the reply, or a JSON value (a dict) the reply, parsed as JSON, must
    contain: every key of it with the same value, nested dicts compared the same way.
    """

    send: str | None = None
    expect: str | dict[str, Any] | None = None
    timeout: float = 5.0


@dataclass(frozen=True)
class ProbeConfig:
    url: str
    target: str = "websocket"
    count: int = 2
    interval: float = 1.0
    open_timeout: float = 5.0
    # Optional request/reply round trip: the text to send ("{id}" is replaced by a fresh id) and a
    # substring ("{id}" replaced too) that marks its reply; without it the reply must carry the id.
    request: str | None = None
    reply_contains: str | None = None
    ssl_context: ssl.SSLContext | None = None
    display_url: str = ""  # the URL as shown; by default the URL with its secrets masked
    ca_file: str | None = None  # a private CA for wss:// (PEM)
    insecure: bool = False  # wss:// without verifying the certificate: only when asked explicitly
    reply_timeout: float = field(default=0.0)  # 0: five intervals, at least 5 s
    # Close and reopen each probe connection this often (seconds), so the handshake is measured again;
    # 0 keeps a connection open for as long as the server does.
    reconnect_every: float = DEFAULT_RECONNECT_S
    # How the probe opens like a real client. Header values are secrets as far as wsmon is concerned.
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    first_exchange: tuple[ExchangeStep, ...] = ()

    @property
    def secure(self) -> bool:
        return self.url.lower().startswith("wss://")

    @property
    def wait_s(self) -> float:
        """How long a pong or a reply may take before the probe calls it a timeout."""
        return self.reply_timeout or max(self.interval * 5, MIN_REPLY_TIMEOUT_S)


def tls_context(config: ProbeConfig) -> ssl.SSLContext | None:
    """The TLS context for a wss:// probe; None lets websockets use the system's default trust store.

    Raises OSError/ssl.SSLError when the CA file cannot be read: that is a usage error, found at start.
    """
    if not config.secure:
        return None  # websockets refuses an ssl argument for ws://
    if config.ssl_context is not None:
        return config.ssl_context
    if config.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return None


def reply_matches(expect: str | dict[str, Any], text: str) -> bool:
    """A substring, or a JSON object the reply must contain (see ExchangeStep)."""
    if isinstance(expect, str):
        return expect in text
    try:
        reply = json.loads(text)
    except ValueError:
        return False
    return _contains(reply, expect)


def _contains(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _contains(value[key], wanted) for key, wanted in pattern.items()
        )
    return bool(value == pattern)


def fill(template: Any, values: dict[str, str]) -> Any:
    """``template`` with each ``{name}`` of ``values`` replaced, in every string of a JSON value."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template


_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate"})


_HTTP_BLANKS = " \t"


def secret_words(headers: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """What to mask in any text: each header value, its credential alone ("Bearer X" → also X), and
    each longer word of it. Values shorter than 3 characters are not looked for (they would mask
    half of every message)."""
    words: set[str] = set()
    for _, value in headers:
        # Only HTTP's own blanks (space, tab) are stripped: str.strip() would also take a no-break space
        # that is part of the credential, and what is left of it would then be masked without it.
        value = value.strip(_HTTP_BLANKS)
        scheme, _, credential = value.partition(" ")
        if scheme.lower() in _AUTH_SCHEMES:
            words.add(credential.strip(_HTTP_BLANKS))
        words.add(value)
        words.update(part for part in value.split() if len(part) >= 6 and part.lower() not in _AUTH_SCHEMES)
    kept = (word for word in words if len(word) >= 3)
    return tuple(sorted(kept, key=len, reverse=True))  # longest first: a value before its parts


def scrub_secrets(text: str, words: tuple[str, ...]) -> str:
    for word in words:
        text = text.replace(word, MASK)
    return text
