"""A failed test's window (``wsmon.core.testwindows.TestWindow``) in words: how long the test ran and
what the server did meanwhile. The report's Tests section shows these lines in every text format."""

from __future__ import annotations

from wsmon.core.closecodes import close_code_label
from wsmon.core.testwindows import TestWindow


def span_line(window: TestWindow) -> str:
    """How long the test ran, saying when its window is only approximate."""
    ran = f"ran {window.duration_s or 0.0:.2f} s"
    if window.approximate:
        ran += " (approximate window: derived from the runner's durations)"
    return f"{ran}; while it ran:"


def describe(window: TestWindow) -> list[str]:
    """Plain lines for one failed test: what the server did while it ran."""
    lines = []
    if window.close_codes:
        closes = ", ".join(
            f"{count}× {close_code_label(code)}" for code, count in sorted(window.close_codes.items())
        )
        lines.append(f"closes: {closes}")
    if window.delivery_failures:
        reasons = ", ".join(f"{r} ({n})" for r, n in window.failure_reasons.items())
        lines.append(f"delivery failures: {window.delivery_failures} — {reasons}")
    lines.extend(f"outage: {outage}" for outage in window.outages)
    lines.extend(f"alert: {alert}" for alert in window.alerts)
    if window.log_errors:
        lines.append(f"log errors: {window.log_errors}")
        lines.extend(f"  {line}" for line in window.log_error_lines[:3])
    return lines or ["nothing unusual observed in this test's window"]
