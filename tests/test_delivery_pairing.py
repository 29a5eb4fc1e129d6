"""Pairing messages with their acks: the pure matcher the tap feeds with every text message."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wsmon.sources.delivery import Delivered, DeliveryMatcher, DeliveryRules, Failed


def js(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def test_an_ack_naming_the_id_completes_it_with_its_latency() -> None:
    matcher = DeliveryMatcher()
    assert matcher.on_message("in", "c1", js({"id": "msg_1", "to": "b"}), 10.0) == []
    assert matcher.pending_count == 1
    (result,) = matcher.on_message("out", "c1", js({"type": "ack", "originalMessageId": "msg_1"}), 10.025)
    assert isinstance(result, Delivered)
    assert (result.message_id, result.conn) == ("msg_1", "c1")
    assert abs(result.ms - 25.0) < 1e-6
    assert matcher.pending_count == 0


def test_every_default_ack_field_pairs_and_numeric_ids_match_strings() -> None:
    for field in ("originalMessageId", "correlationId", "ackId", "replyTo", "inReplyTo"):
        matcher = DeliveryMatcher()
        matcher.on_message("in", "c", js({"id": 42}), 0.0)
        assert [type(r) for r in matcher.on_message("out", "c", js({field: "42"}), 0.1)] == [Delivered], field


def test_the_ack_may_come_on_another_connection_and_forwarded_copies_count_once() -> None:
    matcher = DeliveryMatcher()
    matcher.on_message("in", "sender", js({"id": "m"}), 1.0)
    matcher.on_message("out", "recipient", js({"id": "m"}), 1.01)  # the server forwards it: not new
    (done,) = matcher.on_message("in", "recipient", js({"originalMessageId": "m"}), 1.02)
    assert isinstance(done, Delivered) and done.conn == "sender" and abs(done.ms - 20.0) < 1e-6
    assert matcher.on_message("out", "sender", js({"originalMessageId": "m"}), 1.03) == []


def test_a_failing_status_is_a_failure_with_the_acks_reason() -> None:
    matcher = DeliveryMatcher()
    cases = [
        ({"status": "failed", "error": "Connection not open"}, "Connection not open"),
        ({"status": "NACK", "reason": "queue full"}, "queue full"),
        ({"type": "error", "message": "Invalid message format"}, "Invalid message format"),
        ({"success": False, "error": {"code": "E1", "message": "recipient offline"}}, "recipient offline"),
        ({"status": "rejected"}, "status rejected"),
    ]
    for index, (ack, reason) in enumerate(cases):
        matcher.on_message("in", "c", js({"id": f"m{index}"}), 0.0)
        (result,) = matcher.on_message("out", "c", js({"originalMessageId": f"m{index}", **ack}), 0.1)
        assert result == Failed(f"m{index}", "c", reason), ack
    matcher.on_message("in", "c", js({"id": "fine"}), 0.0)
    (ok,) = matcher.on_message("out", "c", js({"originalMessageId": "fine", "status": "delivered"}), 0.1)
    assert isinstance(ok, Delivered)


def warmed(matcher: DeliveryMatcher) -> DeliveryMatcher:
    """One message paired with its ack: the protocol is known to acknowledge."""
    matcher.on_message("in", "warm", js({"id": "w"}), 0.0)
    matcher.on_message("out", "warm", js({"originalMessageId": "w"}), 0.0)
    assert matcher.acks_seen == 1
    return matcher


def test_before_any_ack_is_seen_unanswered_messages_are_not_failures() -> None:
    """A protocol whose acks the rules do not recognise must not read as 100 % failed deliveries."""
    matcher = DeliveryMatcher(timeout_s=5.0)
    matcher.on_message("in", "c", js({"id": "a"}), 0.0)
    assert matcher.expire(10.0) == []
    assert matcher.unconfirmed == 1 and matcher.pending_count == 0


def test_no_ack_within_the_timeout_is_a_failure_oldest_first() -> None:
    matcher = warmed(DeliveryMatcher(timeout_s=5.0))
    matcher.on_message("in", "c", js({"id": "a"}), 0.0)
    matcher.on_message("in", "c", js({"id": "b"}), 2.0)
    assert matcher.expire(4.9) == []
    assert matcher.expire(5.0) == [Failed("a", "c", "no acknowledgement within 5 s")]
    assert matcher.expire(7.5) == [Failed("b", "c", "no acknowledgement within 5 s")]
    assert (
        matcher.on_message("out", "c", js({"originalMessageId": "a"}), 8.0) == []
    )  # too late: already failed


def test_acks_servers_own_messages_and_non_json_never_wait() -> None:
    matcher = DeliveryMatcher()
    matcher.on_message("in", "c", js({"id": "ack-9", "originalMessageId": "unknown"}), 0.0)  # an ack
    matcher.on_message("out", "c", js({"type": "welcome", "id": "srv-1"}), 0.0)  # the server's own
    for junk in (b"hello", b"[1, 2]", b"{not json", "   ", b"\xff\xfe", b'{"id": null}', b'{"id": ""}'):
        matcher.on_message("in", "c", junk, 0.0)
    assert matcher.pending_count == 0
    assert matcher.expire(100.0) == []


def test_rules_are_configurable_dotted_paths_directions_and_types() -> None:
    rules = DeliveryRules(
        id_paths=("meta.msgId",),
        ack_paths=("meta.ackOf",),
        status_paths=("result.state",),
        failure_values=frozenset({"bounced"}),
        reason_paths=("result.why",),
        pending_directions=("in", "out"),
        request_types=frozenset({"chat"}),
    )
    matcher = DeliveryMatcher(rules, timeout_s=1.0)
    matcher.on_message("in", "c", js({"type": "presence", "meta": {"msgId": "p"}}), 0.0)  # not a request type
    matcher.on_message("out", "c", js({"type": "chat", "meta": {"msgId": "x"}}), 0.0)
    (failed,) = matcher.on_message(
        "in", "c", js({"meta": {"ackOf": "x"}, "result": {"state": "bounced", "why": "no such user"}}), 0.5
    )
    assert failed == Failed("x", "c", "no such user")
    assert matcher.pending_count == 0


def test_pending_ids_are_bounded_per_connection_and_in_total() -> None:
    rules = DeliveryRules(max_pending_per_conn=3, max_pending_total=5)
    matcher = warmed(DeliveryMatcher(rules))
    for index in range(10):
        matcher.on_message("in", "busy", js({"id": f"b{index}"}), float(index))
    assert matcher.pending_count == 3 and matcher.skipped == 7
    for index in range(4):
        matcher.on_message("in", f"c{index}", js({"id": f"c{index}"}), 20.0 + index)
    assert matcher.pending_count == 5 and matcher.evicted == 2
    # The oldest were forgotten (not failed): only the survivors can still expire.
    assert [r.message_id for r in matcher.expire(1000.0)] == ["b2", "c0", "c1", "c2", "c3"]


def test_ack_directions_limit_where_acks_are_read() -> None:
    matcher = DeliveryMatcher(DeliveryRules(ack_directions=("out",)))
    matcher.on_message("in", "c", js({"id": "m"}), 0.0)
    assert matcher.on_message("in", "c", js({"originalMessageId": "m"}), 0.1) == []
    assert [type(r) for r in matcher.on_message("out", "c", js({"originalMessageId": "m"}), 0.2)] == [
        Delivered
    ]


# --- pairing by value: the id anywhere in the ack ---------------------------------------------------------


def test_a_nested_ack_pairs_by_value_and_its_nearby_status_decides() -> None:
    """The shapes a Node `ws` routing server sends: the reference and the verdict inside a payload."""
    matcher = DeliveryMatcher()
    for message_id in ("msg_1_2", "msg_3", "msg_4", "msg_5"):
        matcher.on_message("in", "c", js({"type": "message", "id": message_id, "to": "d2"}), 1.0)
    delivered = {"type": "ack", "payload": {"originalMessageId": "msg_1_2", "status": "delivered"}}
    (ok,) = matcher.on_message("out", "c", js(delivered), 1.004)
    assert isinstance(ok, Delivered) and ok.message_id == "msg_1_2" and abs(ok.ms - 4.0) < 1e-6
    error = {"type": "error", "payload": {"originalMessageId": "msg_3", "error": "Recipient not found"}}
    assert matcher.on_message("out", "c", js(error), 1.01) == [Failed("msg_3", "c", "Recipient not found")]
    # Under a key no rule names, and the status beside it, not at the top.
    odd = {"type": "receipt", "data": {"ref": "msg_4", "state": {"status": "failed", "reason": "offline"}}}
    (nested_status,) = matcher.on_message("out", "c", js(odd), 1.02)
    assert isinstance(nested_status, Delivered)  # `status` two levels below the reference: not "nearby"
    deep_status = {"type": "receipt", "data": {"ref": "msg_5", "status": "failed", "reason": "offline"}}
    assert matcher.on_message("out", "c", js(deep_status), 1.03) == [Failed("msg_5", "c", "offline")]
    assert matcher.pending_count == 0 and matcher.acks_seen == 4


def test_a_batch_ack_completes_every_id_it_lists_each_with_its_own_status() -> None:
    matcher = DeliveryMatcher()
    for message_id in ("msg-1", "msg-2", "msg-3"):
        matcher.on_message("in", "c", js({"id": message_id}), 0.0)
    batch = {
        "type": "acks",
        "results": [
            {"originalMessageId": "msg-1", "status": "delivered"},
            {"originalMessageId": "msg-2", "status": "failed", "error": "queue full"},
        ],
        "ids": ["msg-3", "msg-1"],  # strings straight in a list; msg-1 twice counts once
    }
    results = matcher.on_message("out", "c", js(batch), 0.1)
    outcomes = sorted((r.message_id, getattr(r, "reason", "delivered")) for r in results)
    assert outcomes == [("msg-1", "delivered"), ("msg-2", "queue full"), ("msg-3", "delivered")]
    assert matcher.pending_count == 0


def test_a_forwarded_copy_wrapped_in_a_payload_is_not_its_own_ack() -> None:
    """The server forwards the message to its recipient with the id under an id key: not a reference."""
    matcher = warmed(DeliveryMatcher(timeout_s=1.0))
    matcher.on_message("in", "sender", js({"type": "message", "id": "msg_9", "to": "d2"}), 0.0)
    forwarded = {"type": "message", "payload": {"messageId": "msg_9", "from": "d1", "text": "hi"}}
    assert matcher.on_message("out", "recipient", js(forwarded), 0.01) == []
    assert matcher.on_message("out", "recipient", js({"type": "message", "id": "msg_9"}), 0.01) == []
    assert matcher.pending_count == 1
    (late,) = matcher.expire(2.0)
    assert late.message_id == "msg_9"


def test_by_value_search_is_bounded_by_depth_strings_size_and_id_length() -> None:
    def paired(rules: DeliveryRules, ack: dict[str, Any], message_id: str = "msg_long") -> bool:
        matcher = DeliveryMatcher(rules)
        matcher.on_message("in", "c", js({"id": message_id}), 0.0)
        return bool(matcher.on_message("out", "c", js(ack), 0.1))

    def nest(depth: int) -> dict[str, Any]:
        ack: dict[str, Any] = {"ref": "msg_long"}
        for _ in range(depth - 1):
            ack = {"inner": ack}
        return ack

    rules = DeliveryRules(value_max_depth=3)
    assert paired(rules, nest(3)) and not paired(rules, nest(4))
    many = {f"k{index}": f"v{index}" for index in range(10)}
    assert paired(DeliveryRules(value_max_strings=11), {**many, "ref": "msg_long"})
    assert not paired(DeliveryRules(value_max_strings=10), {**many, "ref": "msg_long"})
    big = {"ref": "msg_long", "fill": "x" * 2000}
    assert paired(DeliveryRules(value_max_bytes=4096), big)
    assert not paired(DeliveryRules(value_max_bytes=1024), big)
    assert not paired(DeliveryRules(), {"ref": "m7"}, message_id="m7")  # too short to find by chance
    assert paired(DeliveryRules(), {"originalMessageId": "m7"}, message_id="m7")  # the ack path still pairs
    assert not paired(DeliveryRules(match_values=False), {"ref": "msg_long"})


def test_ack_types_still_gate_pairing_by_value() -> None:
    rules = DeliveryRules(id_paths=("id",), ack_paths=("id",), ack_types=frozenset({"ack"}))
    matcher = DeliveryMatcher(rules)
    matcher.on_message("in", "c", js({"type": "message", "id": "msg_1"}), 0.0)
    assert matcher.on_message("out", "c", js({"type": "message", "payload": {"id": "msg_1"}}), 0.1) == []
    # The ack paths share the id key here, so a nested id in an ack is a reference.
    (done,) = matcher.on_message("out", "c", js({"type": "ack", "payload": {"id": "msg_1"}}), 0.1)
    assert isinstance(done, Delivered)


_IDS = ["msg_a1", "msg_b2", "msg_c3", "msg_d4"]
_json_leaf = st.one_of(st.sampled_from(_IDS), st.text(max_size=8), st.integers(), st.booleans(), st.none())
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["id", "ref", "payload", "status", "error", "x"]), inner, max_size=4),
    ),
    max_leaves=20,
)


def _string_values(value: Any, key: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _string_values(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in _string_values(v, key)]
    return []


@settings(max_examples=300, deadline=None)
@given(acks=st.lists(st.dictionaries(st.sampled_from(["type", "payload", "ref", "id"]), _json, max_size=4)))
def test_by_value_pairing_completes_only_named_outstanding_ids_and_each_once(
    acks: list[dict[str, Any]],
) -> None:
    matcher = DeliveryMatcher()
    for message_id in _IDS:
        matcher.on_message("in", "c", js({"id": message_id}), 0.0)
    completed: list[str] = []
    for ack in acks:
        results = matcher.on_message("out", "c", js(ack), 0.1)
        # Only ids the ack names outside an id key, and only those still outstanding.
        named = {value for key, value in _string_values(ack) if key != "id"}
        assert {r.message_id for r in results} <= named
        completed.extend(r.message_id for r in results)
    assert len(completed) == len(set(completed))
    assert matcher.pending_count == len(_IDS) - len(completed)
