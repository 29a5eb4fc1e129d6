"""The demo's steady and churn loads, through the real demo server and wsmon's tap: wsmon's figures
equal what the load generator's clients counted themselves (its tally).

The demo server, the load generator and the tap run for real, over real sockets; the load generator
is the stand-alone program users run, and its tally is its own last stdout line.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wsmon.core.limits import DEFAULT_LIMITS
from wsmon.core.state import State
from wsmon.demo.runner import DemoLoad, build_demo_session, load_generator_of

pytestmark = pytest.mark.slow

STEADY_CLIENTS = 200


def tally_of(session: Any) -> dict[str, Any]:
    load = load_generator_of(session)
    assert load is not None and load.tally is not None, "the load generator printed no tally"
    return load.tally


def assert_counts_equal_the_tally(state: State, tally: dict[str, Any]) -> None:
    closes = {int(code): n for code, n in tally["closes"].items()}
    assert state.opened_total == tally["opened"]
    assert state.connect_failed == tally["refused"]
    assert state.close_codes == closes
    assert state.open_count == 0
    # Messages in are what the clients sent, messages out what they read: every data frame both ways.
    assert (state.msgs_in, state.msgs_out) == (tally["sent"], tally["received"])


async def test_steady_load_holds_its_connections_and_wsmon_counts_what_the_clients_counted() -> None:
    session = build_demo_session(
        clients=STEADY_CLIENTS, limits=DEFAULT_LIMITS, record=None, duration=9.0, load="steady"
    )
    run = asyncio.create_task(session.run())
    held: list[int] = []
    # The population ramps up in under a second, then stays: no faults, no refusals, no reconnects.
    for _ in range(80):
        await asyncio.sleep(0.1)
        if session.state.open_count == STEADY_CLIENTS:
            held.append(session.state.opened_total)
            if len(held) >= 20:
                break
    await run
    state = session.state
    tally = tally_of(session)
    assert len(held) >= 20, f"wsmon never saw {STEADY_CLIENTS} open for 2 s (open {state.open_count})"
    assert set(held) == {STEADY_CLIENTS}, "connections were opened again while the load was steady"
    assert tally["opened"] == STEADY_CLIENTS and tally["refused"] == 0
    assert tally["closes"] == {"1000": STEADY_CLIENTS}
    # About 1 msg/s each for ~7 s, their acks, heartbeats: thousands of frames, every one counted.
    assert tally["sent"] > 5 * STEADY_CLIENTS
    assert_counts_equal_the_tally(state, tally)


async def test_churn_opens_and_closes_at_its_rate_and_wsmon_counts_what_the_clients_counted() -> None:
    session = build_demo_session(
        clients=1,
        limits=DEFAULT_LIMITS,
        record=None,
        duration=6.0,
        load="churn",
        connect_rate=40.0,
        hold=0.3,
    )
    await session.run()
    tally = tally_of(session)
    # ~5 s of churn at 40/s after the server is up: the schedule, not a burst or a trickle.
    assert 120 <= tally["opened"] <= 260, tally
    assert tally["refused"] == 0
    assert tally["closes"] == {"1000": tally["opened"]}
    assert tally["sent"] == tally["received"] == tally["opened"]  # one registration and its reply each
    assert_counts_equal_the_tally(session.state, tally)


def test_each_load_leaves_the_demo_server_room_for_it_or_overruns_it_on_purpose() -> None:
    assert DemoLoad("steady", clients=1000).max_connections() >= 1050
    assert DemoLoad("churn", connect_rate=200, hold=1.0).max_connections() >= 600
    # The demo's own over-capacity bursts are meant to be refused with 1013.
    assert DemoLoad("demo", clients=50).max_connections() == 55
