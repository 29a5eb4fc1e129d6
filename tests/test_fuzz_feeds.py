"""Fuzzing the feed decoder: whatever a server publishes, wsmon's feed keeps running.

Property: every message decodes to an event: the event it carries when it is a valid one (with a
finite ``wall``), else one warning line "feed message rejected: …" naming what was wrong, short
enough to read. Never an exception, which would cost the feed its connection (pub/sub drops what
arrives meanwhile). The last test sends the nastiest of them over real Redis pub/sub and a real
Redis Stream and checks the feed stays up and still delivers the good message after them.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from fuzzing import one_line
from hypothesis import example, given
from hypothesis import strategies as st
from services import REDIS_URL, Collector, running, unavailable

from wsmon.core import events as ev
from wsmon.sources.feeds import FeedSource, decode_feed_message

pytestmark = pytest.mark.timeout(300)

WALL, MONO = 1_700_000_000.0, 42.0
MAX_WARNING_CHARS = 1_000


def clock() -> tuple[float, float]:
    return WALL, MONO


def decode(raw: Any) -> ev.Event:
    event = decode_feed_message(raw, target="fleet", clock=clock)
    assert math.isfinite(event.wall) and event.mono == MONO, event
    if isinstance(event, ev.LogLine) and event.text.startswith("feed message rejected: "):
        assert event.level == "warn" and event.source == "fleet", event
        assert one_line(event.text) and len(event.text) <= MAX_WARNING_CHARS, event.text[:2000]
    return event


def rejected(event: ev.Event) -> bool:
    return isinstance(event, ev.LogLine) and event.text.startswith("feed message rejected: ")


# --- good messages decode to what was sent --------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _event_strategy(cls: type[ev.Event]) -> st.SearchStrategy[ev.Event]:
    overrides: dict[str, st.SearchStrategy[Any]] = {"wall": finite, "mono": finite}
    for field in msgspec.structs.fields(cls):
        if field.type is float:
            overrides.setdefault(field.name, finite)
        elif field.type is int:
            overrides[field.name] = int64
        elif field.type == float | None:
            overrides[field.name] = st.none() | finite
        elif field.type == int | None:
            overrides[field.name] = st.none() | int64
    return st.builds(cls, **overrides)


events = st.one_of([_event_strategy(cls) for cls in ev.EVENT_TYPES])


def expected(event: ev.Event) -> dict[str, Any]:
    sent = ev.to_dict(event)
    sent["mono"] = MONO
    if "source" in sent and not sent["source"]:
        sent["source"] = "fleet"
    return sent


@given(events, st.sampled_from(["bytes", "text", "stream-json"]))
def test_a_valid_event_decodes_to_itself(event: ev.Event, form: str) -> None:
    body = msgspec.json.encode(ev.to_dict(event))
    raw: Any = {"bytes": body, "text": body.decode(), "stream-json": {b"event": body}}[form]
    decoded = decode(raw)
    assert not rejected(decoded), decoded
    assert ev.to_dict(decoded) == expected(event)


# --- bad messages are one warning each -----------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        int64,
        st.sampled_from([10**400, -(10**400), 2**64, 1e308]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
TAGS = sorted(ev.TAGS.values())
FIELD_NAMES = sorted(
    {f.name for cls in ev.EVENT_TYPES for f in msgspec.structs.fields(cls)} | {"type", "instance", "wall"}
)


@st.composite
def near_events(draw: st.DrawFn) -> dict[str, Any]:
    """A real event's fields with some dropped, some given the wrong type, some added."""
    message = ev.to_dict(draw(events))
    message.pop("mono")
    for name in draw(st.lists(st.sampled_from(sorted(message)), max_size=3)):
        message.pop(name, None)
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3)):
        message[name] = draw(json_values)
    if draw(st.booleans()):
        message["type"] = draw(st.sampled_from(TAGS) | json_values)
    return message


def dumps(value: Any) -> str:
    return json.dumps(value)  # any size of integer, and Infinity/NaN for a sloppy publisher


HUGE = "x" * (1 << 20)
NASTY: list[Any] = [
    "",
    b"\xff\xfe\x00",
    "[" * 100_000 + "]" * 100_000,
    '{"type": "marker", "text": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"type": "marker", "text": "x", "wall": 1' + "0" * 400 + "}",
    '{"type": "marker", "text": "x", "wall": 1e400}',
    '{"type": "marker", "text": "x", "wall": NaN}',
    '{"type": "marker", "text": "x", "wall": Infinity}',
    dumps({"type": HUGE[:500_000]}),
    dumps({"type": "marker", "text": HUGE}),
    dumps({"type": "conn.close", "conn": "c1", "code": 10**30}),
    dumps({"type": "conn.close", "conn": {"a": [1, 2]}, "code": 1006}),
    dumps({"type": "marker", "text": "x", "instance": ["i"]}),
    {b"type": b"marker", b"text": b"x", b"wall": b"inf"},
    {b"type": b"marker", b"text": b"x", b"wall": b"nan"},
    {b"type": b"marker", b"text": b"x", b"wall": b"1e400"},
    {b"type": b"conn.close", b"conn": b"c1", b"code": b"9" * 400},
    {b"\xff": b"\xfe", b"type": b"\x80"},
    {b"event": b"[" * 100_000},
    {b"data": HUGE.encode() + b"x"},
]


@given(near_events(), st.sampled_from(["bytes", "text", "stream-json"]))
@example({"type": "marker", "text": "x", "wall": 10**400}, "text")
@example({"type": "marker", "text": "x", "wall": math.inf}, "text")
@example({"type": "x" * 5_000}, "text")
def test_a_near_event_decodes_or_is_one_warning(message: dict[str, Any], form: str) -> None:
    body = dumps(message)
    decode({"bytes": body.encode(), "text": body, "stream-json": {b"event": body.encode()}}[form])


@given(json_values)
def test_any_json_value_decodes_or_is_one_warning(value: Any) -> None:
    decode(dumps(value))


@given(st.binary())
def test_any_bytes_decode_or_are_one_warning(data: bytes) -> None:
    decode(data)


@given(
    st.dictionaries(
        st.sampled_from([b"type", b"conn", b"code", b"wall", b"instance", b"text", b"source"])
        | st.binary(max_size=8),
        st.sampled_from([b"marker", b"conn.close", b"inf", b"nan", b"-1", b"1e400", b"true"])
        | st.binary(max_size=20),
        max_size=6,
    )
)
@example({b"type": b"marker", b"text": b"x", b"wall": b"inf"})
def test_any_stream_entry_decodes_or_is_one_warning(fields: dict[bytes, bytes]) -> None:
    decode(fields)


@pytest.mark.parametrize("raw", NASTY, ids=range(len(NASTY)))
def test_the_nastiest_messages_are_one_warning_each(raw: Any) -> None:
    assert rejected(decode(raw))


# --- over real Redis: the feed survives them and goes on -----------------------------------------


async def test_a_real_redis_feed_survives_every_nasty_message() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        unavailable(f"Redis at {REDIS_URL} is not reachable: {error}")
    channel = key = f"wsmon-test-fuzz-{uuid.uuid4().hex[:10]}"
    pubsub = FeedSource(f"{REDIS_URL}#{channel}", target="fleet")
    stream = FeedSource(f"{REDIS_URL}#stream:{key}", target="fleet-stream")
    collector = Collector()
    try:
        async with running(pubsub, collector), running(stream, collector):
            await pubsub.subscribed.wait()
            await stream.subscribed.wait()
            for raw in NASTY:
                if isinstance(raw, dict):
                    await client.xadd(key, raw)
                else:
                    await client.publish(channel, raw)
            await client.publish(channel, dumps({"type": "marker", "text": "after pubsub"}))
            await client.xadd(key, {"type": "marker", "text": "after stream"})
            for text in ("after pubsub", "after stream"):
                await collector.wait_for(ev.Marker, lambda e, t=text: e.text == t)  # type: ignore[attr-defined]
    finally:
        await client.delete(key)
        await client.aclose()
    assert not collector.of(ev.TargetDown), collector.of(ev.TargetDown)
    assert len(collector.of(ev.TargetUp)) == 2
    warnings = [e for e in collector.of(ev.LogLine) if rejected(e)]
    published = sum(1 for raw in NASTY if not isinstance(raw, dict))
    by_target = {name: sum(1 for w in warnings if w.source == name) for name in ("fleet", "fleet-stream")}  # type: ignore[attr-defined]
    assert by_target == {"fleet": published, "fleet-stream": len(NASTY) - published}, [
        (w.source, w.text[:100])
        for w in warnings  # type: ignore[attr-defined]
    ]
