"""The limits strip, driven by a real Reducer and read back from the screen: ratios on too few attempts
say so, and an alert's line leads with the figure's current value."""

from __future__ import annotations

from ui_support import ReducerFeed, screen_clock, settle, widget_text

from wsmon.core import events as ev
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import FailuresPanel, LimitsStrip

SIZE = (160, 50)


at = screen_clock()


def deliveries(start: float, ok: int, failed: int) -> list[ev.Event]:
    out: list[ev.Event] = [
        ev.LatencySample(**at(start + i * 0.01), kind="delivery", ms=3.0) for i in range(ok)
    ]
    out += [
        ev.DeliveryFailed(**at(start + (ok + i) * 0.01), message_id=f"m{start}-{i}", conn="c1", reason="x")
        for i in range(failed)
    ]
    return out


def strip_lines(app: WsmonApp) -> list[str]:
    return [line.strip("│ ") for line in widget_text(app.query_one(LimitsStrip)).splitlines()]


async def test_two_deliveries_show_too_few_to_judge_and_no_level() -> None:
    feed = ReducerFeed()
    feed.apply(*deliveries(0.0, ok=1, failed=1))
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        strip = app.query_one(LimitsStrip)
        assert "delivery ok n = 2, too few to judge" in strip.text
        assert "50.0 %" not in strip.text
        assert "no active alerts" in strip.text
        failures = widget_text(app.query_one(FailuresPanel))
        assert "success n = 2, too few to judge" in failures


async def test_an_alert_line_leads_with_the_current_value_then_worst_and_raised_at() -> None:
    # Raised at 50.0 % on the first failures; 41 minutes later the session's figure is 87.8 %.
    feed = ReducerFeed()
    feed.apply(
        *deliveries(0.0, ok=1, failed=1),
        ev.AlertRaised(**at(0.5), figure="delivery_success", level="breach", value=50.0, limit=99.9),
        *deliveries(2460.0, ok=877, failed=121),
    )
    app = WsmonApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        lines = strip_lines(app)
        alert = next(line for line in lines if line.startswith("✗ BREACH"))
        assert alert.startswith("✗ BREACH Message delivery success 87.8 % (limit > 99.90 %) for 41m")
        assert alert.endswith("· worst 50.0 % · raised at 50.0 %")
        assert "delivery ok ✗ 87.8 %" in app.query_one(LimitsStrip).text
