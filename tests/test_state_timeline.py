"""A connection's timeline (core.story), folded by the reducer: bounded, log lines matched, closes."""

from __future__ import annotations

import json

from helpers import T0, at

from wsmon.core import events as ev
from wsmon.core import story
from wsmon.core.reducer import fold
from wsmon.core.state import MAX_CLOSED_KEPT, State, TimelineEntry, decode_state, encode_state


def _kinds(state: State, conn: str) -> list[str]:
    return [entry.kind for entry in state.timelines.get(conn, [])]


STORY: list[ev.Event] = [
    ev.ConnectionOpened(
        **at(1.0), conn="c1", peer="10.0.0.1:5000", path="/ws", handshake_ms=12.5, source="tap"
    ),
    ev.Traffic(**at(2.0), conn="c1", msgs_in=2, bytes_in=40, msgs_out=1, bytes_out=10),
    ev.Traffic(**at(3.0), conn="c1", msgs_in=1, bytes_in=20),
    ev.DeliveryFailed(**at(4.0), message_id="m-7", conn="c1", reason="recipient gone"),
    ev.LogLine(**at(5.0), level="error", text="write failed for c1", source="app", fields={"conn_id": "c1"}),
    ev.LogLine(**at(5.5), level="info", text="unrelated", source="app", fields={"user": "c1"}),
    ev.ConnectionClosed(**at(6.0), conn="c1", code=4000, reason="bye 4000", closed_by="server", source="tap"),
]


def test_a_connections_story_in_order_with_facts() -> None:
    state = fold(STORY)
    assert _kinds(state, "c1") == ["open", "traffic", "delivery_failed", "log", "close"]
    entries = state.timelines["c1"]
    assert entries[0].wall == T0 + 1.0 and entries[0].data["handshake_ms"] == 12.5
    # Traffic within a minute is one entry: the sums of its events.
    assert story.facts(entries[1])["msgs_in"] == 3 and story.facts(entries[1])["bytes_in"] == 60
    assert story.facts(entries[1])["until"] == T0 + 3.0
    assert entries[2].data == {"message_id": "m-7", "reason": "recipient gone"}
    assert entries[3].data["text"] == "write failed for c1"  # "user": "c1" is not a connection field
    assert entries[4].data == {"code": 4000, "reason": "bye 4000", "closed_by": "server"}
    lines = [story.describe(entry) for entry in entries]
    assert lines[0] == "opened from 10.0.0.1:5000 /ws, handshake 12.5 ms"
    assert lines[2] == "delivery of m-7 failed: recipient gone"
    assert lines[4] == 'closed 4000 "bye 4000" by server'


def test_traffic_after_a_minute_or_another_event_starts_a_new_entry() -> None:
    state = fold(
        [
            ev.ConnectionOpened(**at(0.0), conn="c1"),
            ev.Traffic(**at(1.0), conn="c1", msgs_in=1),
            ev.Traffic(**at(70.0), conn="c1", msgs_in=1),
            ev.DeliveryFailed(**at(71.0), message_id="m", conn="c1", reason="timeout"),
            ev.Traffic(**at(72.0), conn="c1", msgs_in=1),
        ]
    )
    assert _kinds(state, "c1") == ["open", "traffic", "traffic", "delivery_failed", "traffic"]


def _delivered(t: float, conn: str, ms: float, ack_conn: str = "") -> ev.LatencySample:
    return ev.LatencySample(**at(t), kind="delivery", ms=ms, ref=f"m{t}", conn=conn, ack_conn=ack_conn)


def test_successful_deliveries_are_summed_a_window_at_a_time_and_each_failure_told() -> None:
    state = fold(
        [
            ev.ConnectionOpened(**at(0.0), conn="c1"),
            ev.ConnectionOpened(**at(0.0), conn="c2"),
            _delivered(1.0, "c1", 8.4),
            ev.Traffic(**at(1.5), conn="c1", msgs_in=3),  # traffic and deliveries interleave: both sum on
            _delivered(2.0, "c1", 3.1, ack_conn="c2"),
            ev.Traffic(**at(2.5), conn="c1", msgs_in=2),
            _delivered(3.0, "c1", 5.0, ack_conn="c2"),
            ev.DeliveryFailed(**at(4.0), message_id="lost", conn="c1", reason="no acknowledgement"),
            _delivered(5.0, "c1", 7.0),  # after the failure: a new window, so the story stays in order
            _delivered(70.0, "c1", 1.0, ack_conn="c2"),  # a minute later: a new window
            _delivered(71.0, "c1", 2.0, ack_conn="c3"),
            _delivered(72.0, "nobody", 2.0),  # a connection State does not keep: no story
            ev.LatencySample(**at(73.0), kind="delivery", ms=4.0),  # no connection named: counted only
        ]
    )
    kinds = ["open", "deliveries", "traffic", "delivery_failed", "deliveries", "deliveries"]
    assert _kinds(state, "c1") == kinds
    first = state.timelines["c1"][1]
    assert story.facts(first) == {
        "count": 3, "min_ms": 3.1, "max_ms": 8.4, "until": T0 + 3.0, "acked_elsewhere": 2, "ack_conn": "c2"
    }  # fmt: skip
    assert story.facts(state.timelines["c1"][2])["msgs_in"] == 5
    lines = [story.describe(entry) for entry in state.timelines["c1"]]
    assert lines[1] == "delivered 3 msgs, 3.1–8.4 ms, 2 acked on c2"
    assert lines[4] == "delivered 1 msg, 7.0 ms"
    assert lines[5] == "delivered 2 msgs, 1.0–2.0 ms, acked on other connections"
    assert "nobody" not in state.timelines and state.delivered == 8
    only_elsewhere = fold([ev.ConnectionOpened(**at(0.0), conn="a"), _delivered(1.0, "a", 2.5, "b")])
    assert story.describe(only_elsewhere.timelines["a"][-1]) == "delivered 1 msg, 2.5 ms, acked on b"


def test_a_log_line_about_the_servers_view_joins_the_tapped_rows_timeline() -> None:
    state = fold(
        [
            ev.TargetAdded(**at(0.0), target="tap", kind="tap", covers=["app"]),
            ev.ConnectionOpened(
                **at(1.0), conn="t1", peer="10.0.0.9:1", source="tap", local="127.0.0.1:7001"
            ),
            ev.ConnectionOpened(**at(1.1), conn="s-1", peer="127.0.0.1:7001", source="app"),
            ev.LogLine(**at(2.0), level="warn", text="slow consumer", source="app", fields={"conn": "s-1"}),
        ]
    )
    assert state.connections["s-1"].mirror_of == "t1"
    assert _kinds(state, "t1")[-1] == "log" and _kinds(state, "s-1")[-1] == "log"


def test_bounded_per_connection_and_forgotten_with_the_connection() -> None:
    events: list[ev.Event] = [ev.ConnectionOpened(**at(0.0), conn="c0")]
    events += [
        ev.DeliveryFailed(**at(float(i)), message_id=f"m{i}", conn="c0", reason="x")
        for i in range(1, 3 * story.MAX_TIMELINE_ENTRIES)
    ]
    state = fold(events)
    assert len(state.timelines["c0"]) <= story.MAX_TIMELINE_ENTRIES * 5 // 4
    assert state.timelines["c0"][-1].data["message_id"] == f"m{3 * story.MAX_TIMELINE_ENTRIES - 1}"
    closes: list[ev.Event] = []
    for i in range(2 * MAX_CLOSED_KEPT + 1):
        closes += [
            ev.ConnectionOpened(**at(1000.0 + i), conn=f"x{i}"),
            ev.ConnectionClosed(**at(1000.5 + i), conn=f"x{i}", code=1000),
        ]
    fold(closes, state)
    assert set(state.timelines) <= set(state.connections)
    assert "x0" not in state.timelines and f"x{2 * MAX_CLOSED_KEPT}" in state.timelines


def test_the_timeline_survives_a_keyframe_and_old_keyframes_read() -> None:
    state = fold(STORY)
    assert decode_state(encode_state(state)).timelines == state.timelines
    assert decode_state(encode_state(State())).timelines == {}
    # Keyframes written before the summing entries held Structs keep a traffic entry's facts as a map.
    before = State(
        timelines={"c1": [TimelineEntry(T0, "traffic", {"msgs_in": 2, "bytes_in": 40, "until": T0 + 5.0})]}
    )
    (entry,) = decode_state(encode_state(before)).timelines["c1"]
    assert story.describe(entry) == "traffic in 2 msgs 40 B over 5 s"


def test_json_lines_and_summary() -> None:
    state = fold(STORY)
    lines = [json.loads(line) for line in story.json_lines(state, "c1").decode().splitlines()]
    assert [line["kind"] for line in lines] == _kinds(state, "c1")
    assert lines[0]["time"] == "2025-06-15T15:06:41.000Z" and lines[0]["conn"] == "c1"
    assert lines[-1]["reason"] == "bye 4000"
    summary = story.summary(state, "c1")
    assert "4000 Application-defined" in summary and "bye 4000" in summary and "server" in summary
    assert "handshake   12.5 ms" in summary and "in          3 msgs, 60 B" in summary


def test_many_connections_keep_fewer_entries_each_within_the_budget() -> None:
    assert story.entries_cap(1) == story.MAX_TIMELINE_ENTRIES
    assert story.entries_cap(10_000) == story.TIMELINE_BUDGET // 10_000
    assert story.entries_cap(10**7) == story.MIN_TIMELINE_ENTRIES
    conns = 4 * story.TIMELINE_BUDGET // story.MAX_TIMELINE_ENTRIES  # a cap of 50 each
    events: list[ev.Event] = [ev.ConnectionOpened(**at(0.0), conn=f"c{i}") for i in range(conns)]
    events += [
        ev.DeliveryFailed(**at(1.0 + i), message_id=f"m{i}", conn="c0", reason="x")
        for i in range(story.MAX_TIMELINE_ENTRIES)
    ]
    state = fold(events)
    assert len(state.timelines["c0"]) <= 50 * 5 // 4
    assert state.timelines["c0"][-1].data["message_id"] == f"m{story.MAX_TIMELINE_ENTRIES - 1}"
