"""The contract between a session (live or replay) and the dashboard.

The session owns the Reducer and mutates its State in place on the app's event loop; the dashboard
only reads that State on its own timer. Nothing here imports the sources or the store, so the UI
can be driven by anything that folds events: a live session, a replay, or a test.
"""

from __future__ import annotations

import abc
from typing import Literal, Protocol, runtime_checkable

from wsmon.core.limits import Limit
from wsmon.core.state import State

Mode = Literal["live", "replay"]
# The spans ← / → step a replay by, shortest first; [ and ] move along them.
SPANS_S: tuple[float, ...] = (1.0, 10.0, 60.0)


@runtime_checkable
class Feed(Protocol):
    """What the dashboard needs from a session. A replay also implements ``ReplayControls``."""

    @property
    def state(self) -> State:
        """The live reducer's State. Read it; never mutate it."""
        ...

    @property
    def limits(self) -> tuple[Limit, ...]: ...

    @property
    def title(self) -> str:
        """E.g. 'demo · ws://127.0.0.1:8765/' (already redacted)."""
        ...

    @property
    def mode(self) -> str:
        """'live' or 'replay'."""
        ...

    @property
    def paused(self) -> bool: ...

    @property
    def notice(self) -> str:
        """A line the header shows in the error colour while it is not empty (a live session's
        "recording stopped: disk full"); "" when there is nothing to say."""
        ...

    def toggle_pause(self) -> None: ...

    async def run(self) -> None:
        """The session's main coroutine; the app runs it as a worker and exits when it returns."""
        ...

    def stop(self) -> None:
        """Ask run() to finish (close recordings); the app waits for it before exiting."""
        ...


class LiveMarkers(abc.ABC):
    """What a live session adds to its Feed: a marker put into it from the dashboard (m, ctrl+p), applied
    and recorded like the markers a test suite sends (WSMON_MARKERS), so the report and a replay show it.
    The dashboard offers the key only to a feed that is one."""

    @abc.abstractmethod
    def marker(self, text: str) -> None:
        """A Marker event with ``text``, now, into the session (its State and its recording)."""


class ReplayControls(abc.ABC):
    """What a replay adds to its Feed: the keys that move through the recording, and what the header
    shows of where it is. The dashboard offers these keys only to a feed that is one."""

    @property
    @abc.abstractmethod
    def speed(self) -> float:
        """How fast the replay runs: 1.0 is real time."""

    @property
    @abc.abstractmethod
    def progress(self) -> float:
        """How far into the recording, 0.0 … 1.0."""

    @abc.abstractmethod
    def step(self, n: int) -> None:
        """Pause, then apply the next ``n`` events (back ``-n``)."""

    @abc.abstractmethod
    def faster(self) -> None: ...

    @abc.abstractmethod
    def slower(self) -> None: ...

    @abc.abstractmethod
    def next_anomaly(self, direction: int) -> str | None:
        """Seek to the next (1) or previous (-1) anomaly and pause there; its label, or None."""

    @abc.abstractmethod
    def seek_text(self, text: str) -> None:
        """Seek to "50%", "1:30" or "90s" from the start; ValueError with a one-line message."""

    # --- time: the replay bar, stepping by a span, bookmarks ------------------------------------

    @property
    @abc.abstractmethod
    def span_s(self) -> float:
        """How far ← / → step, in seconds of the recording (one of SPANS_S)."""

    @abc.abstractmethod
    def change_span(self, direction: int) -> float:
        """The next longer (1) or shorter (-1) span, kept at the ends; the span now."""

    @abc.abstractmethod
    def step_time(self, direction: int) -> None:
        """Pause, then go ``span_s`` forward (1) or back (-1) in the recording's time."""

    @property
    @abc.abstractmethod
    def wall_times(self) -> tuple[float, float, float] | None:
        """The recording's start, the replay's current time and its end, as UTC epoch seconds;
        None for an empty recording."""

    @abc.abstractmethod
    def bookmarks(self) -> list[float]:
        """Every bookmark's wall time (UTC epoch seconds), earliest first."""

    @abc.abstractmethod
    def add_bookmark(self) -> tuple[float, str | None]:
        """Bookmark where the replay is; its wall time, and a one-line warning when it could not be
        saved (it is kept for this session all the same)."""

    @abc.abstractmethod
    def goto_bookmark(self, index: int) -> None:
        """Pause at the ``index``-th bookmark (of ``bookmarks()``)."""

    @abc.abstractmethod
    def next_bookmark(self, direction: int) -> float | None:
        """Pause at the next (1) or previous (-1) bookmark; its wall time, or None when there is none."""

    @abc.abstractmethod
    def markers(self) -> list[tuple[float, str]]:
        """Every marker in the recording (a test suite's, m on a live dashboard): wall time (UTC epoch
        seconds) and text, earliest first."""

    @abc.abstractmethod
    def goto_marker(self, index: int) -> None:
        """Pause just after the ``index``-th marker (of ``markers()``)."""

    @abc.abstractmethod
    def take_notes(self) -> list[str]:
        """One-line warnings from opening the replay (a malformed bookmarks sidecar), once."""
