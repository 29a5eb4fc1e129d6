"""Text a stranger wrote (log lines, close reasons, ack reasons, errors) never drives the terminal.

The screen is rendered to the bytes a terminal would get; the only escapes in them may be wsmon's
own styling (SGR, ``ESC [ … m``)."""

from __future__ import annotations

import re

from ui_support import ReducerFeed, screen_clock, settle, terminal_bytes, widget_text

from wsmon.core import events as ev
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import ConnectionsTable, FailuresPanel

OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # writes the operator's clipboard
DANGLING = "\x1b"  # a BEL-terminated sequence whose BEL was lost: swallows later output
CSI_CLEAR = "\x1b[2J\x9b2J"
# What the renderer itself writes: SGR styling and cursor positioning.
_OWN = re.compile(r"\x1b\[[0-9;]*[mH]")


at = screen_clock()


def hostile_events() -> list[ev.Event]:
    return [
        ev.TargetAdded(**at(), target="redis", kind="redis", address="redis://127.0.0.1:6379"),
        ev.TargetDown(**at(), target="redis", error=f"boom {CSI_CLEAR}", kind="refused"),
        ev.ConnectionOpened(**at(), conn=f"c{DANGLING}1", peer=f"127.0.0.1:1{CSI_CLEAR}"),
        ev.ConnectionClosed(**at(), conn=f"c{DANGLING}1", code=4000, reason=OSC52, closed_by="client"),
        ev.DeliveryFailed(**at(), message_id=f"msg{OSC52}", conn="c2", reason=f"not open {OSC52}"),
        ev.LogLine(**at(), level="error", text=f"crash {OSC52} after {DANGLING}", source="server"),
        ev.Hint(**at(), target="redis", text=f"hint {CSI_CLEAR}"),
    ]


async def test_no_escape_from_outside_text_reaches_the_terminal() -> None:
    feed = ReducerFeed()
    feed.apply(*hostile_events())
    app = WsmonApp(feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        raw = terminal_bytes(app)
        leftover = _OWN.sub("", raw)
        assert "\x1b" not in leftover, repr(leftover[leftover.index("\x1b") - 20 :][:60])
        assert "\x07" not in raw and "\x9b" not in raw
        # The text is still there, with its controls shown as placeholders.
        failures = widget_text(app.query_one(FailuresPanel))
        assert "not open ␛]52;c;" in failures
        assert "c␛1" in widget_text(app.query_one(ConnectionsTable))
