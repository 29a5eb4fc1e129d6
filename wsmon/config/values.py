"""The parsers of setting values: each takes the raw value (a flag's string, an environment
variable, a TOML value) and ``where`` it came from, and returns the typed value or raises a one-line
ConfigError naming ``where`` and what was expected. wsmon.config.options says which setting uses which.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar

from wsmon.config.settings import ConfigError, Settings
from wsmon.core.fleet import check_node_name
from wsmon.core.redact import redact_header, redact_url
from wsmon.core.sanitize import shown_key
from wsmon.sources.probe import ExchangeStep

T = TypeVar("T")
Parser = Callable[[Any, str], T]


def expect(value: Any, kind: type | UnionType | tuple[type, ...], where: str, expected: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    return value


def url(value: Any, where: str, schemes: tuple[str, ...]) -> str:
    text = expect(value, str, where, f"a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if not text.startswith(tuple(s + "://" for s in schemes)):
        shown = redact_url(text)
        raise ConfigError(
            f"{where}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {shown!r}"
        )
    return text


def port(value: Any, where: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    port = expect(value, int, where, "a port number 1-65535")
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: expected a port number 1-65535, got {port}")
    return port


def positive(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number of seconds, got {value!r}") from None
    number = expect(value, int | float, where, "a positive number of seconds")
    if not number > 0 or not math.isfinite(number):  # nan and inf too: a sleep of nan never returns
        raise ConfigError(f"{where}: expected a positive number of seconds, got {number}")
    return float(number)


def count(value: Any, where: str) -> int:
    number = expect(value, int, where, "a whole number")
    if number < 1:
        raise ConfigError(f"{where}: expected a whole number of at least 1, got {number}")
    return int(number)


def choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of series names, got {value!r}")
    return list(value)


def reconnect_every(value: Any, where: str) -> float:
    if value == 0 or value == "0":
        return 0.0  # never on purpose: each probe connection lives until the server closes it
    return positive(value, where)


def probe_count(value: Any, where: str) -> int:
    count = expect(value, int, where, "a number of probe connections 0-50")
    if not 0 <= count <= 50:
        raise ConfigError(f"{where}: expected a number of probe connections 0-50, got {count}")
    return count


def pid(value: Any, where: str) -> int:
    pid = expect(value, int, where, "a process id")
    if pid <= 0:
        raise ConfigError(f"{where}: expected a process id, got {pid}")
    return pid


def ca_file(value: Any, where: str) -> str:
    path = expect(value, str, where, "a path to a PEM file")
    if not Path(path).is_file():
        raise ConfigError(f"{where}: expected a path to a readable PEM file, got {path!r}")
    return path


# RFC 9110 token: what a header name or a subprotocol may be.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by the handshake itself; two would confuse a server. Origin and subprotocols have their own flags.
_HANDSHAKE_HEADERS = {
    "host": "",
    "upgrade": "",
    "connection": "",
    "sec-websocket-key": "",
    "sec-websocket-version": "",
    "sec-websocket-extensions": "",
    "sec-websocket-protocol": " (use --subprotocol)",
    "origin": " (use --origin)",
}


def headers(value: Any, where: str) -> list[tuple[str, str]]:
    """'Name: value' strings (the flag, a TOML list) or a TOML table of name = value. Values are not
    echoed in errors: they are credentials."""
    if isinstance(value, dict):
        pairs = []
        for name, text in value.items():
            if not isinstance(text, str):
                raise ConfigError(
                    f"{where}.{shown_key(name)}: expected a string value, got a {type(text).__name__}"
                )
            pairs.append((str(name), text.strip()))
    else:
        lines = [value] if isinstance(value, str) else value
        if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
            raise ConfigError(f"{where}: expected 'Name: value' strings or a table of name = value")
        pairs = []
        for line in lines:
            name, sep, text = line.partition(":")
            if not sep:
                raise ConfigError(f"{where}: expected 'Name: value', got {redact_header(line)!r}")
            pairs.append((name.strip(), text.strip()))
    for name, _ in pairs:
        if not _TOKEN.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a header name")
        reserved = _HANDSHAKE_HEADERS.get(name.lower())
        if reserved is not None:
            raise ConfigError(f"{where}: {name} is set by the WebSocket handshake itself{reserved}")
    return pairs


_ENV_WORD = re.compile(r"(?<!\S)env:([A-Za-z_][A-Za-z0-9_]*)(?!\S)")


def resolve_env_refs(pairs: list[tuple[str, str]], settings: Settings, where: str) -> list[tuple[str, str]]:
    """Each word ``env:NAME`` of a header value becomes that variable (environment, then .env), so the
    secret stays out of the command line and of a committed wsmon.toml."""

    resolved = []
    for header, text in pairs:
        for name in _ENV_WORD.findall(text):
            if not settings.env.get(name):
                raise ConfigError(f"{where}: {header}: environment variable {name} is not set (nor in .env)")
        value = _ENV_WORD.sub(lambda match: settings.env[match.group(1)].strip(), text)
        if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
            # A line break would end the header early and start another: not a value a server reads.
            raise ConfigError(f"{where}: {header}: the value has a line break or a control character")
        resolved.append((header, value))
    return resolved


def subprotocols(value: Any, where: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(
        isinstance(n, str) and _TOKEN.fullmatch(n) for n in names
    ):
        raise ConfigError(f"{where}: expected subprotocol names such as chat.v1, got {value!r}")
    return list(names)


def origin(value: Any, where: str) -> str:
    text = expect(value, str, where, "an origin such as https://app.example.com")
    if text != "null" and not re.fullmatch(r"https?://[^/?#\s]+", text):
        raise ConfigError(f"{where}: expected an origin such as https://app.example.com, got {text!r}")
    return text


def first_exchange(value: Any, where: str) -> list[ExchangeStep]:
    """[[probe.first_exchange]] tables: send (a string, or a table sent as JSON), expect (a substring,
    or a table the JSON reply must contain), timeout (seconds, default 5)."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigError(f"{where}: expected [[probe.first_exchange]] tables with send and expect")
    steps = []
    for number, item in enumerate(items, 1):
        at = f"{where}[{number}]"
        unknown = sorted(set(item) - {"send", "expect", "timeout"})
        if unknown:
            raise ConfigError(
                f"{at}.{shown_key(unknown[0])}: unknown key; expected one of expect, send, timeout"
            )
        send, expect = item.get("send"), item.get("expect")
        if send is None and expect is None:
            raise ConfigError(f"{at}: expected send, expect or both")
        if send is not None and not isinstance(send, str | dict | list):
            raise ConfigError(f"{at}.send: expected a string or a table (sent as JSON), got {send!r}")
        if expect is not None and not isinstance(expect, str | dict):
            raise ConfigError(
                f"{at}.expect: expected a substring or a table the reply contains, got {expect!r}"
            )
        text = send if isinstance(send, str) or send is None else json.dumps(send, ensure_ascii=False)
        timeout = positive(item["timeout"], f"{at}.timeout") if "timeout" in item else 5.0
        steps.append(ExchangeStep(send=text, expect=expect, timeout=timeout))
    return steps


def urls(*schemes: str) -> Parser[str]:
    return lambda value, where: url(value, where, schemes)


def string_of(expected: str) -> Parser[str]:
    """A string, described as ``expected`` when it is not one."""
    return lambda value, where: expect(value, str, where, expected)


def node_name(value: Any, where: str) -> str:
    """A fleet node's name (``--node``): it prefixes the node's connection ids as NODE/ID."""
    expect(value, str, where, "a node name")
    try:
        return check_node_name(value)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def choice_of(*choices: str) -> Parser[str]:
    return lambda value, where: choice(value, where, choices)


def boolean(value: Any, where: str) -> bool:
    return expect(value, bool, where, "true or false")


def strings(value: Any, where: str) -> list[str]:
    """One string, or a list of them (a flag given several times)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return list(items)


def each(parse: Callable[[str, str], T]) -> Parser[list[T]]:
    """A list of strings, each parsed on its own."""
    return lambda value, where: [parse(item, where) for item in strings(value, where)]
