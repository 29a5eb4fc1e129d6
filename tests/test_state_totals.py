"""The running totals the panels show (PostgreSQL deadlocks, the Redis slowlog) live in State: they are
the events' sums whatever the screen drew — at 16x with frames skipped, and after a seek back.

And RedisSample.extra is typed without a format change: a recording written when it was a plain map
still reads, into the same typed fields, and its keyframes too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import write_recording
from ui_support import ReducerFeed, settle

from wsmon.core import events as ev
from wsmon.core.reducer import fold
from wsmon.core.state import MAX_SLOWLOG_KEPT, State
from wsmon.replay_feed import ReplayFeed
from wsmon.store import RecordingReader, RecordingWriter, new_header
from wsmon.store.replay import ReplayEngine
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import PostgresPanel, RedisPanel

T0 = 1_750_000_000.0
SECONDS = 240
SIZE = (160, 60)


def at(mono: float) -> dict[str, float]:
    return {"wall": T0 + mono, "mono": mono}


def deadlocks_at(second: int) -> int:
    return 1 + second % 3 if second % 7 == 0 else 0


def slowlog_at(second: int) -> list[dict[str, Any]]:
    """Two new slow commands every fifth second, numbered as Redis numbers them."""
    if second % 5:
        return []
    return [
        {"id": second * 2 + i, "duration_us": 1000 * second + i, "command": f"CMD{second}x{i}", "args": i}
        for i in range(2)
    ]


def missed_at(second: int) -> int:
    return 3 if second % 50 == 25 else 0


def session_events() -> list[ev.Event]:
    out: list[ev.Event] = [
        ev.TargetAdded(**at(0.0), target="pg", kind="postgres"),
        ev.TargetUp(**at(0.1), target="pg"),
        ev.TargetAdded(**at(0.0), target="redis", kind="redis"),
        ev.TargetUp(**at(0.1), target="redis"),
    ]
    for second in range(1, SECONDS + 1):
        out.append(
            ev.PostgresSample(**at(second), target="pg", connections=5, deadlocks=deadlocks_at(second))
        )
        extra = {"redis_version": "7.2.4", "slowlog": slowlog_at(second), "slowlog_missed": missed_at(second)}
        out.append(
            ev.RedisSample(**at(second + 0.5), target="redis", extra=msgspec.convert(extra, ev.RedisExtra))
        )
    return out


def expected_up_to(mono: float) -> tuple[int, list[str], int]:
    """Deadlocks, the last slow commands' names and the missed count, from the events up to ``mono``."""
    pg_seconds = range(1, int(mono) + 1)
    redis_seconds = range(1, int(mono - 0.5) + 1)  # a second's Redis sample comes half a second later
    slow = [entry["command"] for s in redis_seconds for entry in slowlog_at(s)]
    return sum(map(deadlocks_at, pg_seconds)), slow[-MAX_SLOWLOG_KEPT:], sum(map(missed_at, redis_seconds))


def totals(state: State) -> tuple[int, list[str], int]:
    return state.pg_deadlocks, [entry.command for entry in state.redis_slowlog], state.redis_slowlog_missed


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Written as a session writes it, half a second's events at a time, with keyframes every 100."""
    path = tmp_path / "totals.wsmon"
    write_recording(path, session_events(), batch=7, keyframe_every=100)
    return path


def test_the_reducer_adds_up_every_sample() -> None:
    state = fold(session_events())
    assert totals(state) == expected_up_to(SECONDS + 0.5)
    assert state.pg_deadlocks > 0 and len(state.redis_slowlog) == MAX_SLOWLOG_KEPT


async def test_samples_that_arrive_while_a_live_screen_is_paused_still_count() -> None:
    events = session_events()
    feed = ReducerFeed()
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        feed.apply(*events[:40])
        await settle(app, pilot)
        await pilot.press("space")  # the screen freezes; the session goes on
        feed.apply(*events[40:])
        await settle(app, pilot)
        await pilot.press("space")
        await pilot.press("6")  # the panels' last lines need more room than the row gives
        await settle(app, pilot)
        deadlocks, slow, _missed = expected_up_to(SECONDS + 0.5)
        assert f"deadlocks {deadlocks:,}" in app.query_one(PostgresPanel).text
        assert all(name in app.query_one(RedisPanel).text for name in slow)


def play(engine: ReplayEngine, real_seconds: float) -> None:
    """One frame's worth of replay; between frames the engine stays paused so the app's own loop
    (which advances with wall time) cannot move it."""
    engine.paused = False
    engine.advance(real_seconds)
    engine.paused = True


async def test_a_16x_replay_drawing_few_frames_shows_the_events_totals(recording: Path) -> None:
    feed = ReplayFeed(recording, speed=16.0)
    feed.engine.paused = True
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        frames = 0
        while not feed.engine.at_end:
            play(feed.engine, 1.5)  # 24 s of recording a frame: two dozen samples never drawn
            app.refresh_from_state()
            await pilot.pause()
            frames += 1
        assert frames < SECONDS / 10
        deadlocks, slow, missed = expected_up_to(SECONDS + 0.5)
        assert totals(feed.state) == (deadlocks, slow, missed)
        await pilot.press("6")  # the panels' last lines need more room than the row gives
        await pilot.pause()
        assert f"deadlocks {deadlocks:,}" in app.query_one(PostgresPanel).text
        redis_text = app.query_one(RedisPanel).text
        assert f"slow commands ({missed} more missed)" in redis_text
        assert all(name in redis_text for name in slow)


async def test_seeking_back_shows_the_totals_at_that_point(recording: Path) -> None:
    feed = ReplayFeed(recording)
    feed.engine.paused = True
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        feed.seek_text("100%")
        app.refresh_from_state()
        await pilot.pause()
        assert totals(feed.state) == expected_up_to(SECONDS + 0.5)
        for point in ("50%", "1:10", "12s"):
            feed.seek_text(point)  # back, from a keyframe
            app.refresh_from_state()
            await pilot.pause()
            expected = expected_up_to(feed.engine.clock)  # the recording starts at mono 0
            assert totals(feed.state) == expected, point
            await pilot.press("6")
            await pilot.pause()
            assert f"deadlocks {expected[0]:,}" in app.query_one(PostgresPanel).text


def test_a_seek_equals_a_fold_of_the_events_before_it(recording: Path) -> None:
    events = session_events()
    engine = ReplayEngine(RecordingReader(recording))
    for seq in (len(events), 333, 101, 7, 0):
        engine.seek_seq(seq)
        assert totals(engine.state) == totals(fold(events[:seq])), seq


# --- RedisSample.extra, typed: recordings of the untyped map still read ----------------------------


class UntypedRedisSample(ev.Event, tag="redis"):
    """RedisSample as recordings before RedisExtra wrote it: the same fields, ``extra`` a plain map."""

    target: str
    ping_ms: float | None = None
    connected_clients: int | None = None
    blocked_clients: int | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    ops_per_sec: float | None = None
    rejected_connections: int | None = None
    evicted_keys: int | None = None
    hit_ratio: float | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


# What the Redis source put in the map, in the order it put it there.
UNTYPED_EXTRA: dict[str, Any] = {
    "rejected_connections_total": 7,
    "evicted_keys_total": 42,
    "maxmemory_policy": "allkeys-lru",
    "redis_version": "7.2.4",
    "uptime_in_seconds": 3600,
    "used_memory_peak": 9_000_000,
    "pubsub_channels": 2,
    "pubsub_top": [{"channel": "room:lobby", "subscribers": 7}, {"channel": "room:ops", "subscribers": 2}],
    "pubsub_patterns": 1,
    "slowlog": [{"id": 5, "duration_us": 15_200, "command": "KEYS", "args": 1, "client": "10.0.0.9:5000"}],
    "slowlog_missed": 2,
    "pubsub_clients": 9,
    "pubsub_limit": {"hard": 64 << 20, "soft": 8 << 20, "soft_seconds": 60},
    "pubsub_near_limit": [
        {"client": "notifier", "addr": "10.0.0.5:4431", "omem": 6 << 20, "limit": 8 << 20, "ratio": 0.75}
    ],
}


def untyped_sample(mono: float, extra: dict[str, Any]) -> UntypedRedisSample:
    return UntypedRedisSample(**at(mono), target="redis", ping_ms=0.4, used_memory=1 << 20, extra=extra)


def test_the_typed_extra_encodes_to_the_bytes_the_map_did() -> None:
    old = untyped_sample(3.0, UNTYPED_EXTRA)
    new = ev.RedisSample(
        **at(3.0),
        target="redis",
        ping_ms=0.4,
        used_memory=1 << 20,
        extra=msgspec.convert(UNTYPED_EXTRA, ev.RedisExtra),
    )
    assert msgspec.msgpack.encode(new) == msgspec.msgpack.encode(old)
    assert msgspec.msgpack.encode(ev.RedisSample(**at(1.0), target="redis")) == msgspec.msgpack.encode(
        UntypedRedisSample(**at(1.0), target="redis")
    )
    assert ev.to_dict(new) == {"type": "redis", **msgspec.structs.asdict(old)}  # JSON Lines: the same map


def test_a_recording_with_the_untyped_map_reads_into_the_typed_fields(tmp_path: Path) -> None:
    path = tmp_path / "untyped.wsmon"
    partial = {"redis_version": "6.2.14", "pubsub_channels": 0, "surprise": [1, 2]}  # a key nobody knows
    old_events: list[Any] = [
        ev.TargetAdded(**at(0.0), target="redis", kind="redis"),
        ev.TargetUp(**at(0.5), target="redis"),
        untyped_sample(1.0, {}),
        untyped_sample(2.0, partial),
        untyped_sample(3.0, UNTYPED_EXTRA),
    ]
    # The State of the time held the untyped sample too, so the final keyframe is written the old way.
    state = fold(old_events[:2])
    state.redis = old_events[-1]
    state.seq = len(old_events)
    with RecordingWriter(path, new_header("before RedisExtra")) as writer:
        writer.extend(old_events)
        writer.close(state)

    reader = RecordingReader(path)
    events = list(reader.iter_events())
    assert not reader.warnings
    empty, some, full = (e for e in events if isinstance(e, ev.RedisSample))
    assert empty.extra == ev.RedisExtra()
    assert some.extra == ev.RedisExtra(redis_version="6.2.14", pubsub_channels=0)
    extra = full.extra
    assert extra.redis_version == "7.2.4" and extra.evicted_keys_total == 42
    assert extra.slowlog == [
        ev.SlowlogEntry(id=5, duration_us=15_200, command="KEYS", args=1, client="10.0.0.9:5000")
    ]
    assert extra.pubsub_limit == ev.PubsubLimit(hard=64 << 20, soft=8 << 20, soft_seconds=60)
    assert extra.pubsub_near_limit[0].ratio == 0.75 and extra.pubsub_top[0].channel == "room:lobby"

    keyframe_state = reader.state_at_seq(len(events))  # the final keyframe, as it was written
    assert keyframe_state.redis == full
    assert fold(events).redis_slowlog == extra.slowlog


def test_a_feed_message_with_the_map_reads_into_the_typed_fields() -> None:
    message = {"type": "redis", "wall": T0, "mono": 1.0, "target": "redis", "extra": UNTYPED_EXTRA}
    event = ev.from_dict(message)
    assert isinstance(event, ev.RedisSample)
    assert event.extra == msgspec.convert(UNTYPED_EXTRA, ev.RedisExtra)
    with pytest.raises(msgspec.ValidationError, match="extra"):
        ev.from_dict({**message, "extra": {"slowlog": "not a list"}})
