"""One connection is one row and one count, whatever witnesses it has (tap, server log, probe).

Reducer-level rules, so fixed and generated event scripts: every connection is witnessed by some set
of witnesses whose events arrive in any interleaving, and the counts must equal the truth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from helpers import Clock
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmon.core import events as ev
from wsmon.core.reducer import fold
from wsmon.core.state import MAX_OWN_PEERS, State

at = Clock(wall0=1_700_000_000.0)
CODES = (1000, 1001, 1005, 1006, 1008, 1013)


@dataclass(frozen=True)
class Truth:
    index: int
    witnesses: str  # "tap", "tap+log", "log", "probe", "probe+log", "probe+tap" (a probe via the tap), …
    code: int | None  # None: still open at the end

    @property
    def counted(self) -> bool:
        return "probe" not in self.witnesses

    @property
    def local(self) -> str:
        return f"127.0.0.1:{40000 + self.index}"


def witness_scripts(truth: Truth, log_has_peers: bool) -> list[list[dict[str, object]]]:
    """Each witness's events for one connection, in that witness's own order (open, then close)."""
    scripts = []
    i = truth.index
    if truth.witnesses.startswith("tap"):
        script: list[dict[str, object]] = [
            {"cls": ev.ConnectionOpened, "conn": f"tap:{i}", "peer": f"10.0.0.9:{5000 + i}",
             "source": "tap", "local": truth.local},
        ]  # fmt: skip
        if truth.code is not None:
            script.append({"cls": ev.ConnectionClosed, "conn": f"tap:{i}", "code": truth.code,
                           "closed_by": "client", "source": "tap"})  # fmt: skip
        scripts.append(script)
    if truth.witnesses.startswith("probe+tap"):  # wsmon's probe connecting through the tap
        script = [
            {"cls": ev.ConnectionOpened, "conn": f"tap:{i}", "peer": f"127.0.0.1:{30000 + i}",
             "source": "tap", "local": truth.local},
        ]  # fmt: skip
        if truth.code is not None:
            script.append({"cls": ev.ConnectionClosed, "conn": f"tap:{i}", "code": truth.code,
                           "closed_by": "client", "source": "tap"})  # fmt: skip
        scripts.append(script)
    if "probe" in truth.witnesses:
        probe_local = f"127.0.0.1:{30000 + i}" if "tap" in truth.witnesses else truth.local
        script = [
            {"cls": ev.ConnectionOpened, "conn": f"probe:{i}", "peer": "127.0.0.1:3001",
             "source": "probe", "own": True, "local": probe_local},
        ]  # fmt: skip
        if truth.code is not None:
            script.append({"cls": ev.ConnectionClosed, "conn": f"probe:{i}", "code": truth.code,
                           "closed_by": "client", "source": "probe", "own": True})  # fmt: skip
        scripts.append(script)
    if "log" in truth.witnesses:
        peer = truth.local if log_has_peers else ""
        if truth.witnesses == "log":
            peer = f"10.0.0.7:{6000 + i}" if log_has_peers else ""  # a client that bypassed every tap
        script = [{"cls": ev.ConnectionOpened, "conn": f"c{i}", "peer": peer, "source": "server"}]
        if truth.code is not None:
            script.append({"cls": ev.ConnectionClosed, "conn": f"c{i}", "code": truth.code,
                           "closed_by": "unknown", "source": "server"})  # fmt: skip
        scripts.append(script)
    return scripts


@st.composite
def sessions(draw: st.DrawFn) -> tuple[bool, bool, list[Truth], list[ev.Event]]:
    tapped = draw(st.booleans())
    log_has_peers = draw(st.booleans())
    kinds = (
        ["tap", "tap+log", "log", "probe", "probe+log", "probe+tap", "probe+tap+log"]
        if tapped
        else ["log", "probe", "probe+log"]
    )
    specs = draw(
        st.lists(st.tuples(st.sampled_from(kinds), st.sampled_from((*CODES, None))), min_size=1, max_size=12)
    )
    truths = [Truth(i, witnesses, code) for i, (witnesses, code) in enumerate(specs)]
    scripts = [script for truth in truths for script in witness_scripts(truth, log_has_peers)]
    events: list[ev.Event] = []
    if tapped:
        events.append(ev.TargetAdded(**at(0.0), target="tap", kind="tap", covers=["server"]))
    # Any interleaving of the witnesses' events; each witness keeps its own order. Everything happens
    # within a second, as two witnesses of one close do.
    while scripts:
        script = scripts[draw(st.integers(0, len(scripts) - 1))]
        fields = dict(script.pop(0))
        cls = fields.pop("cls")
        events.append(cls(**at(0.01 + len(events) * 0.001), **fields))  # type: ignore[operator]
        scripts = [s for s in scripts if s]
    return tapped, log_has_peers, truths, events


def visible_rows(state: State) -> list[str]:
    """The rows the connections table shows (a mirrored log row is the same connection as its witness)."""
    return [conn.id for conn in state.connections.values() if not conn.mirror_of]


@settings(max_examples=400, deadline=None)
@given(sessions())
def test_a_connection_seen_by_any_set_of_witnesses_is_counted_once(
    session: tuple[bool, bool, list[Truth], list[ev.Event]],
) -> None:
    tapped, log_has_peers, truths, events = session
    state = fold(events)
    # Behind a tap the tap owns every count; a log row it cannot match is the log's, never counted.
    # Without a tap, a log without peer addresses cannot tell a probe's connection from a user's: the
    # log's row of it counts (once) as the log's.
    counted = [
        t
        for t in truths
        if (t.counted and (not tapped or "tap" in t.witnesses))
        or (not tapped and not log_has_peers and t.witnesses == "probe+log")
    ]
    closed = [t for t in counted if t.code is not None]
    assert state.opened_total == len(counted)
    assert state.open_count == len(counted) - len(closed)
    assert state.close_codes == dict(Counter(t.code for t in closed))
    assert sum(state.closed_by.values()) == len(closed)
    kinds = {t.witnesses for t in truths}
    # A row counted before its probe spoke (the probe's own report comes last) may have raised the peak.
    counted_early = {"probe+tap", "probe+tap+log"} | (set() if tapped else {"probe+log"})
    if not kinds & counted_early:
        assert state.peak_open <= len(counted)
    # One row a connection: the log's rows of tapped or probed connections are folded into them, except
    # where nothing can say which they are (no peer address, and not closed yet, or a probe's).
    shown_twice = [
        t
        for t in truths
        if not log_has_peers
        and (t.witnesses in ("probe+log", "probe+tap+log") or (t.witnesses == "tap+log" and t.code is None))
    ]
    if tapped and not log_has_peers and not kinds <= {"tap+log", "probe", "probe+log"}:
        # A peerless log's close pairs with a tap row's of the same code: when the tap carried
        # connections the log did not see (or a probe's, not yet known as one), or the log saw some
        # the tap did not, nothing tells them apart and rows may fold crosswise (counts stay right).
        return
    assert len(visible_rows(state)) == len(truths) + len(shown_twice)


def test_a_tapped_server_whose_log_has_no_peer_addresses_counts_each_close_once() -> None:
    """The issue's case: 27 closes reported for 14 real ones. The log names its own connection ids
    only; its closes are matched to the tap's by close code and time, and never counted again."""
    events: list[ev.Event] = [ev.TargetAdded(**at(0.0), target="tap", kind="tap", covers=["server"])]
    for i in range(14):
        code = (1000, 1006, 1005)[i % 3]
        t = 1.0 + i
        events += [
            ev.ConnectionOpened(**at(t), conn=f"tap:{i}", peer=f"10.0.0.9:{i}", source="tap", local=f"l:{i}"),
            ev.ConnectionOpened(**at(t + 0.01), conn=f"c{i}", source="server"),
            ev.ConnectionClosed(**at(t + 0.5), conn=f"c{i}", code=code, source="server"),
            ev.ConnectionClosed(**at(t + 0.52), conn=f"tap:{i}", code=code, closed_by="client", source="tap"),
        ]
    state = fold(events)
    assert sum(state.close_codes.values()) == 14
    assert state.opened_total == 14 and state.open_count == 0
    rows = visible_rows(state)
    assert len(rows) == 14 and all(row.startswith("tap:") for row in rows)
    assert {state.connections[row].server_conn for row in rows} == {f"c{i}" for i in range(14)}


def test_the_servers_log_row_of_a_probe_is_the_probes_row() -> None:
    """◆ c1 beside ◆ probe1#1: the log's row of wsmon's own probe is the same connection, shown once."""
    for probe_first in (True, False):
        probe_open = ev.ConnectionOpened(
            **at(1.0), conn="probe1#1", peer="127.0.0.1:3001", source="probe", own=True, local="127.0.0.1:4"
        )
        log_open = ev.ConnectionOpened(**at(1.01), conn="c1", peer="127.0.0.1:4", source="server")
        state = fold([probe_open, log_open] if probe_first else [log_open, probe_open])
        assert visible_rows(state) == ["probe1#1"] if probe_first else ["probe1#1"]
        assert state.connections["probe1#1"].server_conn == "c1"
        assert state.opened_total == 0 and state.open_count == 0


def test_a_log_row_that_closed_before_its_witness_spoke_is_uncounted() -> None:
    state = fold(
        [
            ev.ConnectionOpened(**at(1.0), conn="c1", peer="127.0.0.1:4", source="server"),
            ev.ConnectionClosed(**at(1.5), conn="c1", code=1000, source="server"),
            ev.ConnectionOpened(**at(1.6), conn="p1", source="probe", own=True, local="127.0.0.1:4"),
        ]
    )
    assert (state.opened_total, state.open_count, state.close_codes, state.closed_by) == (0, 0, {}, {})


def test_a_reused_port_is_another_connection() -> None:
    """Ports are reused: a client of the tap may get the port the tap's upstream leg had a minute ago,
    and the server's log may name a peer a long-closed connection had. Neither is that old connection."""
    P5000, P7000 = "127.0.0.1:5000", "127.0.0.1:7000"
    state = fold(
        [
            ev.TargetAdded(**at(0.0), target="tap", kind="tap", covers=["server"]),
            ev.ConnectionOpened(**at(1.0), conn="tap:1", peer=P7000, source="tap", local=P5000),
            ev.ConnectionOpened(**at(1.01), conn="c1", peer="127.0.0.1:5000", source="server"),
            ev.ConnectionClosed(**at(2.0), conn="tap:1", code=1000, closed_by="client", source="tap"),
            ev.ConnectionClosed(**at(2.0), conn="c1", code=1000, source="server"),
            # A minute later a client of the tap has port 5000; the tap's new upstream leg has 7000.
            ev.ConnectionOpened(**at(60.0), conn="c2", peer="127.0.0.1:7000", source="server"),
            ev.ConnectionOpened(**at(60.0), conn="tap:2", peer=P5000, source="tap", local=P7000),
        ]
    )  # fmt: skip
    assert state.opened_total == 2 and state.open_count == 1
    assert state.connections["tap:2"].counted
    assert state.connections["c2"].mirror_of == "tap:2"
    assert state.connections["tap:2"].server_conn == "c2"


def test_thousands_of_tapped_connections_each_find_their_log_row_through_the_index() -> None:
    """Issue 13: a tapped open used to scan every connection for its log row. Through the peer index,
    with 6,000 connections open at once (log first for half, tap first for the rest) and 6,000 more
    churned past what the State keeps of closed ones, every log row is its tap row's, counted once,
    and the indexes stay bounded."""
    n = 6_000
    events: list[ev.Event] = [ev.TargetAdded(**at(0.0), target="tap", kind="tap", covers=["server"])]

    def both_open(i: int, t: float) -> list[ev.Event]:
        local = f"127.0.0.1:{10_000 + i}"
        tap = ev.ConnectionOpened(**at(t), conn=f"tap:{i}", peer=f"10.1.0.1:{i}", source="tap", local=local)
        log = ev.ConnectionOpened(**at(t + 0.001), conn=f"c{i}", peer=local, source="server")
        return [log, tap] if i % 2 else [tap, log]

    def both_closed(i: int, t: float) -> list[ev.Event]:
        return [
            ev.ConnectionClosed(**at(t), conn=f"tap:{i}", code=1000, closed_by="client", source="tap"),
            ev.ConnectionClosed(**at(t + 0.001), conn=f"c{i}", code=1000, source="server"),
        ]

    for i in range(n):
        events += both_open(i, 1.0 + i * 0.01)
    for i in range(n, 2 * n):  # churn: the first n close one by one as as many new ones open
        t = 100.0 + (i - n) * 0.01
        events += both_closed(i - n, t) + both_open(i, t + 0.005)
    state = fold(events)
    assert (state.opened_total, state.open_count, state.close_codes) == (2 * n, n, {1000: n})
    for i in range(n, 2 * n):
        assert state.connections[f"c{i}"].mirror_of == f"tap:{i}"
        assert state.connections[f"tap:{i}"].server_conn == f"c{i}"
    assert all(row.mirror_of for row in state.connections.values() if row.source == "server")
    assert len(state.relayed_peers) <= 2 * MAX_OWN_PEERS and len(state.log_peers) <= 2 * MAX_OWN_PEERS
