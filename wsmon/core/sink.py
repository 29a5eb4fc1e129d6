"""What an output beside the dashboard is to a session: alert delivery, an exporter, a publisher.

Here, in the core, because the session (composition) runs sinks and wsmon.outputs implements them,
and neither may import the other. Nothing here does I/O.
"""

from __future__ import annotations

from wsmon.core.events import Event


class Sink:
    """An output fed every event of a session. Each part has a default that does nothing, so a sink
    implements only what it needs; the session calls all three."""

    def on_event(self, event: Event) -> None:
        """Called from the session's emit for every event: must be O(1) and never block."""

    async def run(self) -> None:
        """Runs as a task for the whole session (delivering what on_event queued, serving scrapes)."""

    async def stop(self) -> None:
        """Awaited at shutdown, after the last judge tick: flush what is queued."""
