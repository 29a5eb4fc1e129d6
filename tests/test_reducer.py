"""The reducer folds hand-written event sequences into the State every screen and report reads."""

from __future__ import annotations

import math
import random

import msgspec
import pytest
from helpers import T0, at

from wsmon.core import events as ev
from wsmon.core.percentiles import exact_percentile
from wsmon.core.reducer import Reducer, fold
from wsmon.core.state import MAX_CLOSED_KEPT, ConnState, State, decode_state, encode_state
from wsmon.core.timeline import Timeline


def test_connection_life_cycle_moves_through_every_state_and_counts_open_once() -> None:
    reducer = Reducer()
    state = reducer.state

    reducer.apply(ev.ConnectionConnecting(**at(1.0), conn="a", peer="10.0.0.1:5000", source="tap"))
    assert state.connections["a"].state == ConnState.CONNECTING
    assert (state.open_count, state.opened_total) == (0, 0)

    reducer.apply(ev.ConnectionOpened(**at(1.1), conn="a", handshake_ms=4.0))
    conn = state.connections["a"]
    assert conn.state == ConnState.OPEN
    assert conn.peer == "10.0.0.1:5000"  # an event without a peer keeps what was known
    assert (state.open_count, state.opened_total, state.peak_open) == (1, 1, 1)
    opened_seq = conn.updated_seq

    reducer.apply(ev.ConnectionClosing(**at(2.0), conn="a", by="client"))
    assert conn.state == ConnState.CLOSING
    assert conn.updated_seq > opened_seq
    assert state.open_count == 1  # closing is still open until the close completes

    reducer.apply(ev.ConnectionClosed(**at(2.1), conn="a", code=1000, closed_by="client"))
    assert conn.state == ConnState.CLOSED
    assert (conn.close_code, conn.closed_by) == (1000, "client")
    assert (state.open_count, state.opened_total, state.peak_open) == (0, 1, 1)


def test_peak_open_is_the_highest_concurrent_count() -> None:
    events: list[ev.Event] = [ev.ConnectionOpened(**at(i), conn=f"c{i}") for i in range(3)]
    events += [ev.ConnectionClosed(**at(3 + i), conn=f"c{i}", code=1000) for i in range(2)]
    events += [ev.ConnectionOpened(**at(6.0), conn="d")]
    state = fold(events)
    assert (state.open_count, state.peak_open, state.opened_total) == (2, 3, 4)


def test_close_code_histogram_and_who_closed() -> None:
    closes = [(1000, "client")] * 5 + [(1006, "neither")] * 3 + [(1005, "server")] * 2 + [(1011, "server")]
    events: list[ev.Event] = []
    for i, (code, by) in enumerate(closes):
        events.append(ev.ConnectionOpened(**at(i), conn=f"c{i}"))
        events.append(ev.ConnectionClosed(**at(i + 0.5), conn=f"c{i}", code=code, closed_by=by))  # type: ignore[arg-type]
    state = fold(events)
    assert state.close_codes == {1000: 5, 1006: 3, 1005: 2, 1011: 1}
    assert state.closed_by == {"client": 5, "neither": 3, "server": 3}


def test_own_probe_connections_stay_out_of_the_figures() -> None:
    state = fold(
        [
            ev.ConnectionOpened(**at(1.0), conn="probe", own=True),
            ev.Traffic(**at(1.5), conn="probe", msgs_in=10, msgs_out=10, own=True),
            ev.ConnectionClosed(**at(2.0), conn="probe", code=1011, own=True),
            ev.ConnectFailed(**at(3.0), target="ws", kind="refused", own=True),
            ev.ConnectionOpened(**at(4.0), conn="user"),
        ]
    )
    assert state.connections["probe"].own
    assert state.connections["probe"].msgs_in == 10  # the row itself still shows its traffic
    assert (state.open_count, state.opened_total, state.peak_open) == (1, 1, 1)
    assert state.close_codes == {}
    assert state.closed_by == {}
    assert (state.connect_failed, state.connect_fail_kinds) == (0, {})
    assert state.msgs_in + state.msgs_out == 0


def test_delivery_success_counts_delivery_samples_against_failures() -> None:
    events: list[ev.Event] = [ev.LatencySample(**at(i * 0.01), kind="delivery", ms=3.0) for i in range(997)]
    events += [ev.LatencySample(**at(10.0), kind="connect", ms=3.0)]  # not a delivery
    events += [
        ev.DeliveryFailed(**at(11.0), message_id="msg_1", conn="c1", reason="Connection not open"),
        ev.DeliveryFailed(**at(11.1), message_id="msg_2", conn="c1", reason="Connection not open"),
        ev.DeliveryFailed(**at(11.2), message_id="msg_3", conn="c2"),
    ]
    state = fold(events)
    assert (state.delivered, state.delivery_failed) == (997, 3)
    assert state.delivery_success() == 0.997
    assert state.failure_reasons == {"Connection not open": 2, "unknown": 1}
    assert [f.message_id for f in state.failures] == ["msg_1", "msg_2", "msg_3"]
    assert math.isnan(State().delivery_success())


def test_session_percentiles_are_within_half_a_percent_of_exact() -> None:
    rng = random.Random(37)
    samples = [rng.lognormvariate(2.5, 0.8) for _ in range(10_000)]
    state = fold(ev.LatencySample(**at(i * 0.01), kind="delivery", ms=ms) for i, ms in enumerate(samples))
    dist = state.latency["delivery"]
    ordered = sorted(samples)
    for q in (1, 50, 90, 95, 99, 99.9):
        exact = exact_percentile(ordered, q)
        assert abs(dist.session_percentile(q) - exact) <= 0.005 * exact + 1e-9, q
    assert dist.session_percentile(100) == max(samples)
    assert dist.count == 10_000
    assert math.isclose(dist.mean, sum(samples) / len(samples))


def test_window_percentiles_are_exact_over_the_last_minute() -> None:
    rng = random.Random(7)
    timed = [(i * 0.05, rng.uniform(1.0, 200.0)) for i in range(2_400)]  # 120 s of samples
    state = fold(ev.LatencySample(**at(t), kind="connect", ms=ms) for t, ms in timed)
    now = state.last_mono
    recent = sorted(ms for t, ms in timed if t >= now - 60.0)
    got = state.latency["connect"].window_percentiles(now, (50, 95, 99))
    assert got == tuple(exact_percentile(recent, q) for q in (50, 95, 99))
    assert state.latency["connect"].window_count(now) == len(recent)


def test_messages_per_second_and_peak_count_complete_seconds_in_both_directions() -> None:
    events: list[ev.Event] = [ev.ConnectionOpened(**at(0.0), conn="a")]
    events += [ev.Traffic(**at(s + 0.5), conn="a", msgs_in=60, msgs_out=40) for s in range(10)]
    events += [ev.Traffic(**at(6.7), conn="a", msgs_in=200)]  # arrives late: second 6 becomes a burst of 300
    events += [ev.Traffic(**at(10.2), conn="a", msgs_in=1, own=False)]
    state = fold(events)
    assert state.msgs_in == 60 * 10 + 200 + 1
    assert state.msgs_out == 40 * 10
    assert state.messages_per_s(5) == (100 * 4 + 300) / 5  # seconds 5..9; second 10 is still filling
    assert state.peak_msgs_per_s == 300
    assert state.connections["a"].msgs_in == 801


def test_a_keyframe_written_before_the_per_second_series_still_gives_messages_per_second() -> None:
    """Such a keyframe holds the counts in msgs_by_second and no timeline; one of this session's first
    builds holds both, counting the same messages: neither is lost, nor counted twice."""
    traffic = [ev.Traffic(**at(s + 0.5), conn="a", msgs_in=100) for s in range(4)]
    opened: list[ev.Event] = [ev.ConnectionOpened(**at(0.0), conn="a")]
    old = fold(opened + traffic[:3])
    before = msgspec.structs.replace(old, msgs_by_second={s: 100 for s in range(3)}, timeline=Timeline())
    both = msgspec.structs.replace(old, msgs_by_second={s: 100 for s in range(3)})
    for keyframe in (before, both):
        state = fold(
            [*traffic[3:], ev.Traffic(**at(4.5), conn="a", msgs_in=250)], decode_state(encode_state(keyframe))
        )
        assert state.messages_per_s(4) == 100.0  # seconds 0..3
        assert state.peak_msgs_per_s == 100
        assert fold([ev.Traffic(**at(5.5), conn="a", msgs_in=1)], state).peak_msgs_per_s == 250


def test_target_down_and_up_accumulate_down_time() -> None:
    state = fold(
        [
            ev.TargetAdded(**at(0.0), target="redis", kind="redis", address="redis://127.0.0.1:6379"),
            ev.TargetUp(**at(1.0), target="redis"),
            ev.TargetDown(**at(10.0), target="redis", error="ECONNREFUSED", kind="refused"),
            ev.TargetDown(
                **at(12.0), target="redis", error="timeout", kind="timeout"
            ),  # still the same outage
            ev.TargetUp(**at(15.0), target="redis"),
            ev.TargetDown(**at(20.0), target="redis", error="ECONNREFUSED", kind="refused"),
        ]
    )
    redis = state.targets["redis"]
    assert (redis.up, redis.down_count, redis.down_total_s) == (False, 2, 5.0)
    assert (redis.error, redis.error_kind, redis.since_mono) == ("ECONNREFUSED", "refused", 20.0)
    state = fold([ev.TargetUp(**at(22.0), target="redis", detail="PONG")], state)
    redis = state.targets["redis"]
    assert (redis.up, redis.down_total_s, redis.error) == (True, 7.0, "")


def test_server_exit_closes_that_servers_connections_with_1006() -> None:
    state = fold(
        [
            ev.ConnectionOpened(**at(1.0), conn="s1", source="server"),
            ev.ConnectionOpened(**at(1.1), conn="s2", source="server"),
            ev.ConnectionOpened(**at(1.2), conn="other", source="staging"),
            ev.ConnectionClosed(**at(2.0), conn="s2", code=1000, closed_by="client"),
            ev.ServerExit(**at(5.0), target="server", pid=42, code=1, last_lines=["MessageDeliveryError"]),
        ]
    )
    assert state.connections["s1"].state == ConnState.CLOSED
    assert (state.connections["s1"].close_code, state.connections["s1"].closed_by) == (1006, "neither")
    assert state.connections["s2"].close_code == 1000  # already closed: left as it was
    assert state.connections["other"].state == ConnState.OPEN
    assert state.open_count == 1
    assert state.close_codes == {1000: 1, 1006: 1}
    assert [(x.target, x.code, x.last_lines) for x in state.exits] == [
        ("server", 1, ["MessageDeliveryError"])
    ]


def test_memory_stays_bounded_over_ten_thousand_closed_connections() -> None:
    reducer = Reducer()
    reducer.apply(ev.ConnectionOpened(**at(0.0), conn="long-lived"))
    for i in range(10_000):
        reducer.apply(ev.ConnectionOpened(**at(1 + i * 0.001), conn=f"c{i}"))
        reducer.apply(ev.ConnectionClosed(**at(1 + i * 0.001), conn=f"c{i}", code=1000))
    state = reducer.state
    assert len(state.closed_order) <= 2 * MAX_CLOSED_KEPT
    assert len(state.connections) <= 2 * MAX_CLOSED_KEPT + 1
    assert state.connections["long-lived"].state == ConnState.OPEN  # open connections are never forgotten
    assert "c9999" in state.connections
    assert state.close_codes == {1000: 10_000}  # the totals still cover every connection
    assert (state.open_count, state.opened_total) == (1, 10_001)


def test_a_breached_ratio_records_its_lowest_value() -> None:
    state = fold(
        [
            ev.AlertRaised(**at(1.0), figure="rss_mib", level="breach", value=520.0, limit=512.0),
            ev.AlertRaised(**at(2.0), figure="rss_mib", level="breach", value=600.0, limit=512.0),
            ev.AlertRaised(**at(3.0), figure="connect_success", level="breach", value=97.0, limit=99.0),
            ev.AlertRaised(**at(4.0), figure="connect_success", level="breach", value=95.0, limit=99.0),
            ev.AlertRaised(**at(5.0), figure="connect_success", level="breach", value=98.0, limit=99.0),
        ]
    )
    assert state.breached == {"rss_mib": 600.0, "connect_success": 95.0}


def mixed_session(n: int, seed: int = 1) -> list[ev.Event]:
    """Every event type, interleaved the way a busy session interleaves them."""
    rng = random.Random(seed)
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="server", kind="server", address="ws://127.0.0.1:8080"),
        ev.TargetAdded(**at(0.0), target="redis", kind="redis", address="redis://127.0.0.1:6379"),
    ]
    open_ids: list[str] = []
    for i in range(n):
        t = 0.01 * i
        roll = rng.random()
        if roll < 0.2 or not open_ids:
            conn = f"c{i}"
            out.append(ev.ConnectionConnecting(**at(t), conn=conn, peer="10.0.0.2:1", source="server"))
            out.append(
                ev.ConnectionOpened(**at(t), conn=conn, handshake_ms=rng.uniform(1, 50), source="server")
            )
            open_ids.append(conn)
        elif roll < 0.35:
            conn = open_ids.pop(rng.randrange(len(open_ids)))
            out.append(ev.ConnectionClosing(**at(t), conn=conn, by="server"))
            code = rng.choice([1000, 1001, 1005, 1006, 1011, 4001])
            out.append(ev.ConnectionClosed(**at(t), conn=conn, code=code, closed_by="server", duration_s=1.0))
        elif roll < 0.55:
            out.append(ev.Traffic(**at(t), conn=rng.choice(open_ids), msgs_in=3, msgs_out=2, bytes_in=90))
        elif roll < 0.7:
            kind = rng.choice(["connect", "delivery", "db", "e2e", "ping"])
            out.append(ev.LatencySample(**at(t), kind=kind, ms=rng.lognormvariate(2, 1)))  # type: ignore[arg-type]
        elif roll < 0.75:
            out.append(
                ev.DeliveryFailed(**at(t), message_id=f"msg_{i}", conn=rng.choice(open_ids), reason="x")
            )
        elif roll < 0.8:
            out.append(ev.ConnectFailed(**at(t), target="server", kind="refused", error="ECONNREFUSED"))
        elif roll < 0.85:
            out.append(
                ev.ProcessSample(
                    **at(t),
                    target="server",
                    pid=7,
                    cpu_percent=rng.uniform(0, 90),
                    rss_bytes=rng.randrange(1 << 30),
                )
            )
        elif roll < 0.88:
            out.append(ev.RedisSample(**at(t), target="redis", ping_ms=0.3, connected_clients=4))
            out.append(ev.PostgresSample(**at(t), target="pg", select1_ms=0.8, sessions={"active": 2}))
        elif roll < 0.9:
            down = rng.random() < 0.5
            out.append(
                ev.TargetDown(**at(t), target="redis", error="ECONNREFUSED")
                if down
                else ev.TargetUp(**at(t), target="redis")
            )
        elif roll < 0.93:
            level = rng.choice(["warn", "breach"])
            out.append(ev.AlertRaised(**at(t), figure="rss_mib", level=level, value=600.0, limit=512.0))  # type: ignore[arg-type]
        elif roll < 0.95:
            out.append(ev.AlertCleared(**at(t), figure="rss_mib", value=100.0))
        elif roll < 0.97:
            out.append(ev.LogLine(**at(t), level=rng.choice(["info", "warn", "error"]), text=f"line {i}"))
            out.append(ev.HttpSample(**at(t), target="health", status=200, ms=1.5, health="ok"))
            out.append(
                ev.TestEvent(**at(t), name=f"suite::test_{i}", phase="end", outcome="failed", duration_s=0.5)
            )
        elif roll < 0.98:
            out.append(ev.Marker(**at(t), text=f"step {i}"))
            out.append(ev.TestRunEnded(**at(t), command="pytest -q", exit_code=1, ran=i, note=""))
        elif roll < 0.99:
            out.append(ev.Hint(**at(t), target="server", text="run as the same user"))
            saturated = rng.random() < 0.5
            out.append(ev.TapSaturation(**at(t), target="tap", saturated=saturated, lag_ms=25.0 * saturated))
        else:
            out.append(ev.ServerExit(**at(t), target="server", pid=7, code=1, last_lines=["boom"]))
            open_ids.clear()
    return out


def test_keyframe_round_trip_and_resume_equal_a_full_fold() -> None:
    events = mixed_session(20_000)
    middle = len(events) // 2
    first_half = fold(events[:middle])

    keyframe = encode_state(first_half)
    restored = decode_state(keyframe)
    assert restored == first_half

    resumed = fold(events[middle:], restored)
    whole = fold(events)
    assert resumed == whole
    assert decode_state(encode_state(whole)) == whole
    assert whole.seq == len(events)


def test_the_named_form_round_trips_every_event_and_folds_to_the_same_state() -> None:
    events = mixed_session(3_000, seed=3)
    named = [ev.to_dict(event) for event in events]
    assert {d["type"] for d in named} == set(ev.TAGS.values())
    decoded = [ev.from_dict(msgspec.json.decode(msgspec.json.encode(d))) for d in named]
    assert decoded == events
    assert fold(decoded) == fold(events)


def test_the_named_form_fills_defaults_ignores_unknown_keys_and_names_bad_fields() -> None:
    minimal = {"type": "conn.close", "mono": 2.0, "wall": T0, "conn": "c1", "code": 1006, "added_later": 1}
    assert ev.from_dict(minimal) == ev.ConnectionClosed(wall=T0, mono=2.0, conn="c1", code=1006)
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$\.code`"):
        ev.from_dict({**minimal, "code": "abnormal"})
    with pytest.raises(msgspec.ValidationError, match="missing required field `text`"):
        ev.from_dict({"type": "marker", "wall": T0, "mono": 1.0})
    with pytest.raises(msgspec.ValidationError, match="known `type`, got 'nope'"):
        ev.from_dict({"type": "nope"})


def test_apply_one_by_one_equals_apply_many() -> None:
    events = mixed_session(3_000, seed=2)
    one_by_one = Reducer()
    for event in events:
        one_by_one.apply(event)
    assert one_by_one.state == fold(events)


@pytest.mark.parametrize("tap_first", [True, False])
def test_a_tapped_connection_seen_in_the_server_log_too_is_counted_once(tap_first: bool) -> None:
    """The tap reports the client's connection; the server's log reports its upstream leg, whose peer
    is the tap's local address. Whichever arrives first, it is one connection."""
    tap_open = ev.ConnectionOpened(
        **at(1.0), conn="tap1:1", peer="10.0.0.9:5000", source="tap", local="127.0.0.1:40001"
    )
    log_open = ev.ConnectionOpened(**at(1.01), conn="c7", peer="127.0.0.1:40001", source="server")
    opens = [tap_open, log_open] if tap_first else [log_open, tap_open]
    state = fold(
        [
            *opens,
            ev.Traffic(**at(2.0), conn="tap1:1", msgs_in=3, msgs_out=3),
            ev.Traffic(**at(2.0), conn="c7", msgs_in=3, msgs_out=3),
            ev.ConnectionClosed(**at(3.0), conn="tap1:1", code=1006, closed_by="neither", source="tap"),
            ev.ConnectionClosed(**at(3.01), conn="c7", code=1006, closed_by="neither", source="server"),
        ]
    )
    assert state.opened_total == 1 and state.peak_open == 1 and state.open_count == 0
    assert state.close_codes == {1006: 1}
    assert state.msgs_in == 3 and state.msgs_out == 3
    assert state.connections["c7"].mirror_of == "tap1:1"
    assert state.connections["tap1:1"].counted


def test_one_delivery_reported_by_the_tap_and_the_server_log_counts_once() -> None:
    state = fold(
        [
            ev.LatencySample(**at(1.0), kind="delivery", ms=12.0, target="tap", ref="msg_1"),
            ev.LatencySample(**at(1.01), kind="delivery", ms=11.0, target="server", ref="msg_1"),
            ev.DeliveryFailed(**at(2.0), message_id="msg_2", reason="Connection not open", source="server"),
            ev.DeliveryFailed(**at(2.01), message_id="msg_2", reason="Connection not open", source="tap"),
            # Without an id there is nothing to match: each sample counts.
            ev.LatencySample(**at(3.0), kind="delivery", ms=5.0),
            ev.LatencySample(**at(3.0), kind="delivery", ms=5.0),
        ]
    )
    assert (state.delivered, state.delivery_failed) == (3, 1)
    assert state.latency["delivery"].count == 3
    assert state.failure_reasons == {"Connection not open": 1}
