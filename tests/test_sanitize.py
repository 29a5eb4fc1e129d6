"""Outside text is made visible, never obeyed: control characters become placeholders."""

from __future__ import annotations

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
