"""HOST:PORT as wsmon's listening addresses are written: ``127.0.0.1:9001``, ``:9001``, ``9001`` or
``[::1]:9001``. The one parser of them: the tap's LISTEN, the Prometheus exporter's address and the
markers address that `wsmon run` hands to the test command's pytest plugin.

Each caller words its own error (a flag, an environment variable); the parser only says which part was
wrong, so the messages stay the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class HostPortError(ValueError):
    """``part`` says what was wrong: the port is not a number, or it is out of range (0-65535)."""

    def __init__(self, text: str, part: Literal["port", "range"], port_text: str) -> None:
        super().__init__(f"not HOST:PORT: {text!r}")
        self.part = part
        self.port_text = port_text


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_host: str) -> HostPort:
        """``default_host`` stands in for a missing or empty host (``9001``, ``:9001``); ``[v6]`` loses
        its brackets. The port must be digits, 0-65535 (0: any free port)."""
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = "", text
        host = host.strip("[]") or default_host
        if not (port_text.isascii() and port_text.isdigit()):
            raise HostPortError(text, "port", port_text)
        port = int(port_text)
        if port > 65535:
            raise HostPortError(text, "range", port_text)
        return cls(host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
