"""The contract between a session (live or replay) and the dashboard.

The session owns the Reducer and mutates its State in place on the app's event loop; the dashboard
only reads that State on its own timer. Nothing here imports the sources or the store, so the UI
can be driven by anything that folds events: a live session, a replay, or a test.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from wsmon.core.limits import Limit
from wsmon.core.state import State

Mode = Literal["live", "replay"]


@runtime_checkable
class Feed(Protocol):
    """What the dashboard needs from a session.

    Optional replay controls, looked up with ``getattr`` only when ``mode == "replay"``:
    ``step(n: int)``, ``faster()``, ``slower()``, ``next_anomaly(direction)``, ``seek_text(text)``,
    and for the header ``speed: float`` (1.0 is real time) and ``position: float`` (0.0 … 1.0).
    Optional for any mode: ``notice: str``, a line the header shows in the error colour while it is
    not empty (a live session's "recording stopped: disk full").
    """

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

    def toggle_pause(self) -> None: ...

    async def run(self) -> None:
        """The session's main coroutine; the app runs it as a worker and exits when it returns."""
        ...

    def stop(self) -> None:
        """Ask run() to finish (close recordings); the app waits for it before exiting."""
        ...
