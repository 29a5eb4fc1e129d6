"""The attach targets' panels (Redis, PostgreSQL, HTTP) and the log panel, driven by a real Reducer
fed with hand-written events and read back from the screen."""

from __future__ import annotations

from typing import Any

import msgspec
from textual.widget import Widget
from ui_support import ReducerFeed, screen_clock, screen_lines, settle, widget_text

from wsmon.core import events as ev
from wsmon.core.limits import BREACH, WARN
from wsmon.ui.app import WsmonApp
from wsmon.ui.format import LEVEL_STYLES
from wsmon.ui.widgets import (
    CloseCodesPanel,
    ConnectionsTable,
    HttpPanel,
    LogPanel,
    PostgresPanel,
    RedisPanel,
    ResourcesPanel,
    TextPanel,
)

SIZE = (160, 50)
MIB = 1 << 20


at = screen_clock()


def styles_of(panel: TextPanel, text: str, after: str = "") -> set[str]:
    """The styles of the spans that cover ``text`` (its first occurrence after ``after``)."""
    content = panel.render()  # what the panel paints
    start = content.plain.index(text, content.plain.index(after) + len(after) if after else 0)
    end = start + len(text)
    return {str(span.style) for span in content.spans if span.start <= start and span.end >= end}


def spy_on(widget: Widget, method: str) -> list[object]:
    """Wrap one of the widget's methods; returns the list each call appends its arguments to."""
    calls: list[object] = []
    original = getattr(widget, method)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    setattr(widget, method, spy)
    return calls


# --- events --------------------------------------------------------------------------------------


def redis_up(t: float = 1.0) -> list[ev.Event]:
    return [
        ev.TargetAdded(**at(0), target="redis", kind="redis", address="redis://127.0.0.1:6379/0"),
        ev.TargetUp(**at(t), target="redis", detail="Redis 7.2.4"),
    ]


def redis_sample(t: float, **overrides: Any) -> ev.RedisSample:
    fields: dict[str, Any] = {
        "ping_ms": 0.4,
        "connected_clients": 12,
        "blocked_clients": 2,
        "used_memory": 512 * MIB,
        "maxmemory": 1024 * MIB,
        "ops_per_sec": 1234.0,
        "rejected_connections": 0,
        "evicted_keys": 3,
        "hit_ratio": 0.985,
        "extra": {
            "redis_version": "7.2.4",
            "evicted_keys_total": 42,
            "rejected_connections_total": 7,
            "pubsub_channels": 2,
            "pubsub_clients": 9,
            "pubsub_top": [
                {"channel": "room:lobby", "subscribers": 7},
                {"channel": "room:ops", "subscribers": 2},
            ],
            "slowlog": [{"id": 5, "duration_us": 15_200, "command": "KEYS", "args": 1}],
        },
    }
    fields.update(overrides)
    fields["extra"] = msgspec.convert(fields["extra"], ev.RedisExtra)  # written here as a source's map
    return ev.RedisSample(**at(t), target="redis", **fields)


def postgres_up(t: float = 1.0) -> list[ev.Event]:
    return [
        ev.TargetAdded(**at(0), target="pg", kind="postgres", address="postgresql://app:***@127.0.0.1/test"),
        ev.TargetUp(**at(t), target="pg"),
    ]


def postgres_sample(t: float, **overrides: Any) -> ev.PostgresSample:
    long_query = "SELECT * FROM messages WHERE recipient = $1 ORDER BY created_at DESC " + "x" * 100
    fields: dict[str, Any] = {
        "select1_ms": 0.8,
        "sessions": {"active": 3, "idle": 8, "idle_in_transaction": 1, "waiting": 1},
        "connections": 85,
        "max_connections": 100,
        "longest_query_s": 2.5,
        "longest_xact_s": 12.0,
        "commits_per_s": 120.0,
        "rollbacks_per_s": 0.5,
        "deadlocks": 1,
        "notify_queue_usage": 0.001,
        "extra": {
            "database": "test",
            "role": "app",
            "longest_query": {"pid": 123, "seconds": 2.5, "query": long_query},
            "longest_xact": {
                "pid": 456,
                "seconds": 12.0,
                "state": "idle in transaction",
                "query": "UPDATE devices SET seen = now()",
            },
            "blocked": [
                {
                    "blocked_pid": 789,
                    "blocking_pid": 456,
                    "wait_s": 3.1,
                    "blocked_query": "UPDATE devices SET name = $1",
                    "blocking_query": "UPDATE devices SET seen = now()",
                    "blocking_state": "idle in transaction",
                }
            ],
        },
    }
    fields.update(overrides)
    return ev.PostgresSample(**at(t), target="pg", **fields)


# --- Redis ---------------------------------------------------------------------------------------


async def test_redis_panel_shows_its_figures() -> None:
    feed = ReducerFeed()
    feed.apply(
        *redis_up(),
        *(ev.LatencySample(**at(2 + i), kind="redis", ms=float(i + 1)) for i in range(20)),
        redis_sample(22),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(RedisPanel)
        text = widget_text(panel)
        assert "Redis" in text.splitlines()[0]  # the border title
        assert "redis UP 21s · Redis 7.2.4" in text
        assert "PING p50 10.0 ms · p95 19.0 ms" in text  # from the window, not the last sample
        assert "clients 12 · blocked 2" in text
        assert "memory 512.0 MiB / 1.0 GiB (50 %)" in text
        assert "ops/s 1,234 · hits 98.5 %" in text
        assert "evicted 42 (+3) · rejected 7" in text
        assert "pub/sub 2 channels · 9 subscribers" in text
        assert "room:lobby 7 · room:ops 2" in text
        assert "KEYS (1 arg) 15.2 ms" in text


async def test_redis_memory_is_coloured_at_80_and_100_percent_and_says_when_unlimited() -> None:
    feed = ReducerFeed()
    feed.apply(*redis_up(), redis_sample(2, used_memory=850 * MIB))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(RedisPanel)
        assert LEVEL_STYLES[WARN] in styles_of(panel, "850.0 MiB / 1.0 GiB (83 %)")
        feed.apply(redis_sample(3, used_memory=1100 * MIB))
        await settle(app, pilot)
        assert LEVEL_STYLES[BREACH] in styles_of(panel, "(107 %)")
        feed.apply(redis_sample(4, maxmemory=0))
        await settle(app, pilot)
        assert "memory 512.0 MiB · no maxmemory" in widget_text(panel)


async def test_redis_down_shows_the_error_since_when_and_the_hint() -> None:
    feed = ReducerFeed()
    feed.apply(
        *redis_up(),
        redis_sample(2),
        ev.TargetDown(**at(5), target="redis", error="connection refused (ECONNREFUSED)", kind="refused"),
        ev.Hint(**at(5), target="redis", text="is redis-server running, and on this host and port?"),
        ev.Marker(**at(17), text="later"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = widget_text(app.query_one(RedisPanel))
        assert "redis DOWN 12s · connection refused (ECONNREFUSED)" in text
        assert "hint: is redis-server running" in text
        assert "PING" not in text  # the last sample's figures are stale once it is down


async def test_redis_subscribers_near_the_buffer_limit_are_highlighted() -> None:
    near = [
        {"client": "notifier", "addr": "10.0.0.5:4431", "omem": 6 * MIB, "limit": 8 * MIB, "ratio": 0.75},
    ]
    feed = ReducerFeed()
    feed.apply(*redis_up(), redis_sample(2, extra={"pubsub_near_limit": near}))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(RedisPanel)
        text = widget_text(panel)
        assert "Redis cuts these off" in text
        assert "notifier 75 % 6.0 MiB / 8.0 MiB 10.0.0.5:4431" in text
        assert "bold $error" in styles_of(panel, "notifier 75 %")
        # Urgent: right under the status line, above the routine figures.
        lines = panel.text.splitlines()
        assert lines.index("⚠ Redis cuts these off at 100 %:") == 1


async def test_redis_slow_commands_stay_after_the_next_sample() -> None:
    feed = ReducerFeed()
    feed.apply(*redis_up(), redis_sample(2))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        feed.apply(redis_sample(3, extra={}))  # the next sample has no new slowlog entries
        await settle(app, pilot)
        assert "KEYS (1 arg) 15.2 ms" in widget_text(app.query_one(RedisPanel))


async def test_an_unchanged_redis_sample_causes_no_rerender() -> None:
    feed = ReducerFeed()
    feed.apply(*redis_up(), redis_sample(2))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(RedisPanel)
        builds, refreshes = spy_on(panel, "_build"), spy_on(panel, "refresh")
        feed.apply(ev.Marker(**at(2.5), text="unrelated"))  # the State moved, Redis did not
        await settle(app, pilot)
        assert builds == [] and refreshes == []
        feed.apply(redis_sample(2.6, connected_clients=13))
        await settle(app, pilot)
        assert len(builds) == 1 and len(refreshes) == 1
        assert "clients 13" in widget_text(panel)


# --- PostgreSQL ----------------------------------------------------------------------------------


async def test_postgres_panel_shows_its_figures() -> None:
    feed = ReducerFeed()
    feed.apply(
        *postgres_up(),
        *(ev.LatencySample(**at(2 + i), kind="db", ms=float(i + 1)) for i in range(20)),
        postgres_sample(22),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(PostgresPanel)
        text = widget_text(panel)
        assert "PostgreSQL" in text.splitlines()[0]
        assert "pg UP 21s · test as app" in text
        assert "SELECT 1 p50 10.0 ms · p95 19.0 ms" in text
        assert "connections 85 / 100 (85 %)" in text
        assert LEVEL_STYLES[WARN] in styles_of(panel, "85 / 100 (85 %)")
        assert "sessions active 3 · idle 8" in text
        assert "idle in txn 1 · waiting on lock 1" in text
        assert "pid 789 waits 3.1 s on pid 456 (idle in transaction)" in text
        assert "UPDATE devices SET name = $1  blocked by  UPDATE devices SET seen = now()" in text
        # The query text is cut, on one line, with an ellipsis.
        assert "longest query 2.5 s  pid 123 SELECT * FROM messages WHERE recipient" in text
        query_line = next(line for line in panel.text.splitlines() if line.startswith("longest query"))
        assert query_line.endswith("…") and "xxxxxxxxxx" not in query_line
        assert "longest txn 12.0 s  pid 456 idle in transaction: UPDATE devices SET seen = now()" in text
        await pilot.press("6")  # the last lines need more room than the row gives
        await pilot.pause()
        text = widget_text(panel)
        assert "commits 120/s · rollbacks 0.5/s" in text
        assert "deadlocks 1 (+1) · NOTIFY queue 0.1 %" in text


async def test_postgres_connections_at_max_are_a_breach_and_a_slow_select1_is_coloured() -> None:
    feed = ReducerFeed()
    feed.apply(
        *postgres_up(),
        ev.LatencySample(**at(2), kind="db", ms=250.0),
        postgres_sample(2, connections=100, extra={}),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(PostgresPanel)
        assert LEVEL_STYLES[BREACH] in styles_of(panel, "100 / 100 (100 %)")
        assert LEVEL_STYLES[BREACH] in styles_of(panel, "250.0 ms", after="p95 ")  # over the 200 ms db limit


async def test_postgres_down_shows_the_error_and_since_when() -> None:
    feed = ReducerFeed()
    feed.apply(
        *postgres_up(),
        ev.TargetDown(**at(3), target="pg", error="connection refused (ECONNREFUSED)", kind="refused"),
        ev.Marker(**at(10), text="later"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = widget_text(app.query_one(PostgresPanel))
        assert "pg DOWN 7s · connection refused (ECONNREFUSED)" in text


# --- HTTP ----------------------------------------------------------------------------------------


async def test_http_panel_shows_one_line_a_target_with_its_series() -> None:
    answered_503 = "HTTP 503 · status down"
    feed = ReducerFeed()
    feed.apply(
        ev.TargetAdded(**at(0), target="health", kind="http", address="http://127.0.0.1:9/health"),
        ev.TargetAdded(**at(0), target="metrics", kind="http", address="http://127.0.0.1:9/metrics"),
        ev.TargetAdded(**at(0), target="status", kind="http", address="http://127.0.0.1:9/status"),
        ev.TargetUp(**at(1), target="health"),
        ev.TargetUp(**at(1), target="metrics"),
        ev.HttpSample(**at(2), target="health", status=200, ms=4.2, health="ok"),
        ev.HttpSample(
            **at(2),
            target="metrics",
            status=200,
            ms=12.5,
            series={"ws_connections": 52.0, "process_heap_ratio": 0.25},
        ),
        ev.HttpSample(**at(3), target="status", status=503, ms=1.5, health="down", error=answered_503),
        ev.TargetDown(**at(3), target="status", error=answered_503, kind="http"),
        ev.Marker(**at(5), text="later"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(HttpPanel)
        lines = panel.text.splitlines()
        assert lines[0] == "health  UP 4s  HTTP 200  4.20 ms  status ok"
        assert lines[1] == "metrics UP 4s  HTTP 200  12.5 ms"
        assert "  process_heap_ratio 0.25" in lines and "  ws_connections 52" in lines
        # A down target's error already says what it answered; the latency follows it.
        assert "status  DOWN 2s · HTTP 503 · status down  1.50 ms" in lines
        assert "$error" in styles_of(panel, "HTTP 503 · status down")
        assert "ws_connections 52" in widget_text(panel)


# --- visibility, layout, keys --------------------------------------------------------------------


async def test_target_panels_are_hidden_until_a_target_of_their_kind_exists() -> None:
    feed = ReducerFeed()
    feed.apply(ev.TargetAdded(**at(0), target="server", kind="websocket", address="ws://127.0.0.1:9/"))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for panel_type in (RedisPanel, PostgresPanel, HttpPanel, LogPanel):
            assert not app.query_one(panel_type).display
        assert not app.query_one("#targets").display
        screen = "\n".join(screen_lines(app))
        assert "─ Redis ─" not in screen and "─ PostgreSQL ─" not in screen
        await pilot.press("5")  # nothing to maximise
        assert app.screen.maximized is None

        feed.apply(*postgres_up(2))
        await settle(app, pilot)
        assert app.query_one(PostgresPanel).display and app.query_one("#targets").display
        assert not app.query_one(RedisPanel).display and not app.query_one(HttpPanel).display
        assert "─ PostgreSQL ─" in "\n".join(screen_lines(app))


async def test_digits_five_to_eight_maximise_the_new_panels() -> None:
    feed = ReducerFeed()
    feed.apply(
        *redis_up(),
        *postgres_up(),
        ev.TargetAdded(**at(0), target="health", kind="http"),
        ev.LogLine(**at(2), level="info", text="listening"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for digit, panel_type in (("5", RedisPanel), ("6", PostgresPanel), ("7", LogPanel), ("8", HttpPanel)):
            await pilot.press(digit)
            assert app.screen.maximized is app.query_one(panel_type)
            await pilot.press("0")
            assert app.screen.maximized is None


async def test_everything_fits_at_120x40_and_160x50() -> None:
    for size in ((120, 40), (160, 50)):
        feed = ReducerFeed()
        feed.apply(
            *(ev.ConnectionOpened(**at(0.1 * i), conn=f"c-{i}") for i in range(30)),
            *redis_up(),
            *postgres_up(),
            ev.TargetAdded(**at(0), target="health", kind="http"),
            redis_sample(2),
            postgres_sample(2),
            ev.HttpSample(**at(2), target="health", status=200, ms=3.0, health="ok"),
            *(ev.LogLine(**at(3 + i), level="info", text=f"line {i}") for i in range(20)),
        )
        app = WsmonApp(feed)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            width, height = size
            panels = (ConnectionsTable, CloseCodesPanel, ResourcesPanel, RedisPanel, PostgresPanel, HttpPanel)
            for panel_type in (*panels, LogPanel):
                region = app.query_one(panel_type).region
                assert region.height >= 5 and region.bottom <= height - 1, (size, panel_type, region)
                assert region.right <= width
            # The connections table keeps a handful of rows below its count line and titles.
            assert app.query_one(ConnectionsTable).size.height - 2 >= 4
            # The newest log line is at the bottom of the log panel.
            assert widget_text(app.query_one(LogPanel)).splitlines()[-2].rstrip(" │").endswith("line 19")


# --- logs ----------------------------------------------------------------------------------------


async def test_log_panel_shows_new_lines_at_the_bottom_with_counts_by_level() -> None:
    feed = ReducerFeed()
    feed.apply(
        ev.LogLine(**at(1), level="info", text="listening on :8765", source="server"),
        ev.LogLine(**at(2), level="warn", text="Invalid message format", source="server"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(LogPanel)
        assert panel.display
        text = widget_text(panel)
        assert "Logs · warn 1 · info 1" in text
        assert "WARN  server Invalid message format" in text
        assert "$warning" in styles_of(panel, "WARN ")

        builds, refreshes = spy_on(panel, "_build"), spy_on(panel, "refresh")
        feed.apply(ev.Marker(**at(2.5), text="unrelated"))
        await settle(app, pilot)
        assert builds == [] and refreshes == []  # no new line: no rebuild, no repaint

        crash = "MessageDeliveryError: Message delivery failed: msg_7 - Connection not open"
        feed.apply(ev.LogLine(**at(3), level="error", text=crash, source="server"))
        await settle(app, pilot)
        assert len(builds) == 1 and refreshes
        shown = panel.shown_lines
        assert shown[-1].endswith(f"ERROR server {crash}")
        assert shown[-2].endswith("Invalid message format")
        assert "Logs · error 1 · warn 1 · info 1" in widget_text(panel)
        assert "bold $error" in styles_of(panel, "ERROR")


async def test_log_panel_shows_only_the_newest_lines_that_fit() -> None:
    feed = ReducerFeed()
    feed.apply(*(ev.LogLine(**at(1 + i * 0.01), level="info", text=f"line {i:03d}") for i in range(300)))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(LogPanel)
        shown = panel.shown_lines
        assert len(shown) == panel.size.height
        assert shown[-1].endswith("line 299")
        assert "info 300" in widget_text(panel)
        await pilot.press("7")  # maximised: more of the same tail, with no new events
        await pilot.pause()
        assert len(panel.shown_lines) == panel.size.height > len(shown)
        assert panel.shown_lines[-1].endswith("line 299")
        assert "line 299" in widget_text(panel)


async def test_shrinking_the_terminal_shrinks_the_lower_rows_without_a_new_event() -> None:
    feed = ReducerFeed()
    feed.apply(
        *(ev.ConnectionOpened(**at(0.1 * i), conn=f"c-{i}") for i in range(30)),
        *redis_up(),
        redis_sample(2),
        ev.LogLine(**at(3), level="info", text="listening"),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        assert not app.has_class("-crowded")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert app.has_class("-crowded")
        assert app.query_one(ConnectionsTable).size.height - 2 >= 4
        await pilot.press("7")  # a maximised log panel takes the screen, crowded or not
        await pilot.pause()
        assert app.query_one(LogPanel).size.height > 20
        await pilot.press("0")
        await pilot.resize_terminal(160, 50)
        await pilot.pause()
        assert not app.has_class("-crowded")


async def test_resources_show_the_rss_time_to_limit_live_and_process_hints() -> None:
    feed = ReducerFeed()
    # RSS grows 3 MiB a minute from 410 MiB over three minutes, one sample a second.
    feed.apply(
        ev.TargetAdded(**at(0.5), target="process", kind="process", address="port 3001"),
        ev.Hint(**at(0.6), target="process", text="run wsmon as the server's user"),
        *(
            ev.ProcessSample(
                **at(1 + i),
                target="process",
                pid=7,
                cpu_percent=5.0,
                rss_bytes=int((410 + 3 * (i / 60)) * 1024 * 1024),
            )
            for i in range(180)
        ),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = " ".join(widget_text(app.query_one(ResourcesPanel)).split())
        assert "RSS +3.0 MiB/min, 512 MiB in ~31 min" in text, text
        assert "hint process: run wsmon as the server's user" in text
