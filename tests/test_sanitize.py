"""Outside text is made visible, never obeyed: control characters become placeholders."""

from __future__ import annotations

from helpers import Clock
from hypothesis import given
from hypothesis import strategies as st

from wsmon.core.sanitize import is_visible, visible

OSC52 = "\x1b]52;c;ZXZpbA==\x07"


def test_osc52_clipboard_write_is_shown_not_sent() -> None:
    out = visible(f"bye {OSC52} now")
    assert "\x1b" not in out and "\x07" not in out
    assert out == "bye ␛]52;c;ZXZpbA==␇ now"


def test_tab_is_kept_and_plain_text_is_returned_as_is() -> None:
    text = "a\tb ünïcødé ✓"
    assert visible(text) is text


def test_c1_csi_and_del_and_bidi_overrides_are_visible() -> None:
    out = visible("x\x9b31my\x7fz\u202eevil")
    assert is_visible(out)
    assert out == "x\ufffd31my␡z\ufffdevil"


@given(st.text())
def test_nothing_a_terminal_acts_on_survives(text: str) -> None:
    out = visible(text)
    assert is_visible(out)
    assert not any(ord(ch) < 0x20 and ch != "\t" for ch in out)
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in out)
    assert visible(out) == out  # idempotent: sanitising again at a renderer changes nothing
    assert len(out) == len(text)  # one placeholder a character: styled spans keep their offsets


def test_a_renderer_may_keep_its_own_line_breaks() -> None:
    assert visible("a\n\x1bb", keep_newlines=True) == "a\n␛b"


def _at() -> dict[str, float]:
    return {"wall": 1_700_000_000.0, "mono": 1.0}


def test_events_are_cleaned_where_they_enter_and_untouched_ones_are_the_same_object() -> None:
    from wsmon.core import events as ev
    from wsmon.core.sanitize import clean_event

    closed = ev.ConnectionClosed(**_at(), conn="c1", code=4000, reason=OSC52)
    assert clean_event(closed).reason == "␛]52;c;ZXZpbA==␇"
    log = ev.LogLine(**_at(), level="error", text=f"boom\n  at x {OSC52}")
    assert clean_event(log).text == "boom\n  at x ␛]52;c;ZXZpbA==␇"  # a folded trace keeps its lines
    exit_ = ev.ServerExit(**_at(), target="server", last_lines=["ok", "\x1b[2J"])
    assert clean_event(exit_).last_lines == ["ok", "␛[2J"]
    plain = ev.DeliveryFailed(**_at(), message_id="m1", reason="Connection not open")
    assert clean_event(plain) is plain
    sample = ev.ProcessSample(**_at(), target="process", pid=1, cpu_percent=1.0, rss_bytes=1)
    assert clean_event(sample) is sample


@given(st.text(), st.text())
def test_no_text_field_of_a_cleaned_event_can_drive_a_terminal(reason: str, text: str) -> None:
    from wsmon.core import events as ev
    from wsmon.core.sanitize import clean_event

    for event in (
        ev.ConnectionClosed(**_at(), conn=text, code=1000, reason=reason),
        ev.TargetDown(**_at(), target="t", error=reason),
        ev.DeliveryFailed(**_at(), message_id=text, reason=reason),
    ):
        cleaned = clean_event(event)
        for name in ("conn", "reason", "error", "message_id"):
            value = getattr(cleaned, name, "")
            assert is_visible(value)


def test_every_report_format_of_an_uncleaned_recording_is_safe_to_print() -> None:
    """A recording written before events were cleaned where they entered still holds raw escapes."""
    import xml.etree.ElementTree as ET

    from wsmon.core import events as ev
    from wsmon.core.limits import DEFAULT_LIMITS
    from wsmon.core.reducer import fold
    from wsmon.core.report import build_report
    from wsmon.render.report import FORMATS, render

    at = Clock(wall0=1_700_000_000.0)

    state = fold(
        [
            ev.TargetAdded(**at(), target="server", kind="server", address=f"node s.js {OSC52}"),
            ev.TargetDown(**at(), target="server", error=f"exited {OSC52}", kind="exited"),
            ev.ConnectionOpened(**at(), conn="c1", peer="127.0.0.1:1"),
            ev.ConnectionClosed(**at(), conn="c1", code=4000, reason=OSC52, closed_by="client"),
            ev.DeliveryFailed(**at(), message_id=f"m{OSC52}", conn="c1", reason="gone \x1b[2J\x9b"),
            ev.Marker(**at(), text=f"mark {OSC52}"),
            ev.ServerExit(**at(), target="server", code=1, last_lines=[f"boom {OSC52}"]),
            ev.TestEvent(**at(), name=f"t {OSC52}", phase="end", outcome="failed", message=OSC52),
        ]
    )
    report = build_report(state, DEFAULT_LIMITS, header={"command": f"wsmon run -- x {OSC52}"})
    for fmt in FORMATS:
        out = render(report, fmt)
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, fmt
        if fmt == "junit":
            ET.fromstring(out)
