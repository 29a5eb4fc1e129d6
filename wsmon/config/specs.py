"""The specs a flag packs into one string, parsed once into typed values: a tap's LISTEN=UPSTREAM
(``TapSpec``) and a feed's URL#channel (``FeedSpec``, parsed by wsmon.sources.feeds, beside the
source that reads it). What reaches the sources is the parsed value, never the string again.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from wsmon.config.settings import ConfigError
from wsmon.config.values import each
from wsmon.core.hostport import HostPort, HostPortError
from wsmon.core.redact import redact_text
from wsmon.sources.feeds import FeedSpec, FeedSpecError, parse_feed_spec

DEFAULT_LISTEN_HOST = "127.0.0.1"  # a tap listens on loopback unless told otherwise


@dataclass(frozen=True)
class TapSpec:
    listen: HostPort
    upstream: str  # a ws:// or wss:// URL; may carry a password or a token: shown only redacted


def parse_tap_spec(spec: str) -> TapSpec:
    """``[HOST:]PORT=ws[s]://UPSTREAM``; ValueError (one line, starting ``--tap``) if not."""
    shown = redact_text(spec)  # an upstream URL may carry a password or a token: never echoed
    listen, sep, upstream = spec.partition("=")
    listen, upstream = listen.strip(), upstream.strip()
    if not sep or not listen or not upstream:
        raise ValueError(
            f"--tap {shown!r}: expected LISTEN=UPSTREAM, e.g. 127.0.0.1:9001=ws://127.0.0.1:3001"
        )
    if not upstream.lower().startswith(("ws://", "wss://")):
        scheme, found, _ = upstream.partition("://")
        got = f"a {scheme}:// URL" if found else "no URL"  # only the scheme: the rest may be a secret
        raise ValueError(f"--tap {shown!r}: the upstream must be a ws:// or wss:// URL, got {got}")
    try:
        parts = urlsplit(upstream)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise ValueError(f"--tap {shown!r}: bad upstream URL: {error}") from None
    if not parts.hostname:
        raise ValueError(f"--tap {shown!r}: the upstream URL has no host")
    try:
        address = HostPort.parse(listen, default_host=DEFAULT_LISTEN_HOST)
    except HostPortError:
        raise ValueError(f"--tap {shown!r}: the listening port must be a number from 0 to 65535") from None
    return TapSpec(address, upstream)


def _tap_spec(spec: str, where: str) -> TapSpec:
    try:
        return parse_tap_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('--tap ')}") from None


def _feed_spec(spec: str, where: str) -> FeedSpec:
    try:
        return parse_feed_spec(spec)
    except FeedSpecError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('--feed ')}") from None


tap_specs = each(_tap_spec)
feed_specs = each(_feed_spec)
