"""TCP states by netlink: the one-walk request (both families) against the per-family ones and /proc."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from wsmon.sources import sockdiag
from wsmon.sources.process import tcp_states_from_proc

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_NETLINK"), reason="netlink is Linux's")


def _per_family(port: int) -> dict[str, int]:
    counts: dict[int, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as sock:
        sock.settimeout(2.0)
        for family in (socket.AF_INET, socket.AF_INET6):
            assert sockdiag._dump_family(sock, family, sockdiag._port_filter(port), counts)
    return {sockdiag.STATE_NAMES[state]: n for state, n in counts.items()}


@pytest.fixture
def mixed_port() -> Iterator[int]:
    """A dual-stack listener with IPv4 (mapped) and IPv6 clients, some of them gone (CLOSE_WAIT), an IPv4
    listener on another port with a client of its own (not to be counted)."""
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", 0))
    server.listen(20)
    port = server.getsockname()[1]
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    kept = [socket.create_connection(other.getsockname()), server, other]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    clients += [socket.create_connection(("::1", port)) for _ in range(2)]
    accepted = [server.accept()[0] for _ in range(5)]
    try:
        clients[0].close()
        clients[3].close()  # their server-side ends go to CLOSE_WAIT, one IPv4 and one IPv6
        deadline = time.monotonic() + 2
        while tcp_states_from_proc(port).get("CLOSE_WAIT", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield port
    finally:
        for sock in [*clients, *accepted, *kept]:
            sock.close()


def test_one_walk_counts_what_the_per_family_requests_and_proc_count(mixed_port: int) -> None:
    assert sockdiag._compat_works
    expected = {"LISTEN": 1, "ESTABLISHED": 3, "CLOSE_WAIT": 2}
    assert tcp_states_from_proc(mixed_port) == expected
    assert _per_family(mixed_port) == expected
    assert sockdiag.tcp_states_netlink(mixed_port) == expected
    assert sockdiag._compat_works  # answered in one walk, not by the fallback


def test_a_kernel_that_refuses_the_one_walk_request_is_asked_per_family(
    mixed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unknown request type is what an old or stripped kernel would refuse: NLMSG_ERROR.
    monkeypatch.setattr(sockdiag, "_TCPDIAG_GETSOCK", 0x3FF)
    monkeypatch.setattr(sockdiag, "_compat_works", True)
    assert sockdiag.tcp_states_netlink(mixed_port) == {"LISTEN": 1, "ESTABLISHED": 3, "CLOSE_WAIT": 2}
    assert not sockdiag._compat_works
    assert sockdiag.tcp_states_netlink(mixed_port) == {"LISTEN": 1, "ESTABLISHED": 3, "CLOSE_WAIT": 2}
