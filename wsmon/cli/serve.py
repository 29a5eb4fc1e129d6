"""`wsmon serve`: the dashboard in a browser (textual-serve), for sharing a screen during an incident.

For live targets and --demo, serve runs ONE session, headless, in its own event loop beside the web
server, recording to the user's --record FILE or to a temporary file; every browser viewer runs
`wsmon replay --follow` on that recording (wsmon.follow_feed), so all of them see the same session, the
same connection ids and counts, and the options that start, listen or record something (--server,
--tap, --prometheus, --record, alerts) do so once. When serve stops (Ctrl+C), the viewers end, then the
session; its report is printed as `attach --headless` prints it, and a temporary recording is deleted.

For a FILE, textual-serve runs `wsmon replay FILE` per viewer: a replay is each viewer's to move through.

The options after `serve` are parsed by `attach`, `replay` or `demo` themselves before the web server
starts, so a bad option or FILE gets the very error that command gives.
"""

from __future__ import annotations

import shlex
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from wsmon.cli.common import fail, main, print_live_report, recording_exit
from wsmon.cli.live import LiveSession, attach, attach_session, demo, demo_session
from wsmon.cli.recordings import replay

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HEADLESS = "--headless (a browser shows the dashboard)"


class SessionFailed(Exception):
    """The shared session could not start recording, so no viewer could follow it."""


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
    epilog="Every option of `wsmon attach` (see wsmon attach --help), or a FILE and the options of "
    "`wsmon replay`, or --demo and the options of `wsmon demo`, may follow; --web-host, --web-port and "
    "--demo are serve's own (attach has a --port).",
)
@click.option(
    "--web-host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --public.",
)
@click.option(
    "--web-port", type=click.IntRange(0, 65535), default=0, help="Port to listen on (default: a free one)."
)
@click.option("--public", is_flag=True, help="Allow --web-host to be an address others can reach.")
@click.option(
    "--demo",
    "serve_demo",
    is_flag=True,
    help="Serve `wsmon demo` (its options may follow): one demo server and load generator, shared.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ATTACH OPTIONS | FILE | DEMO OPTIONS]")
@click.pass_context
def serve(
    ctx: click.Context, web_host: str, web_port: int, public: bool, serve_demo: bool, args: tuple[str, ...]
) -> None:
    """Serve the dashboard to a browser on 127.0.0.1: of live targets (same options as attach), of FILE,
    or of the demo (--demo).

    Live targets and the demo run as one session, recorded (to --record FILE, else a temporary file
    deleted at the end), and every browser tab follows that recording: all see the same session. When
    serve stops (Ctrl+C), the session's report is printed. A FILE is replayed by each tab on its own.
    Anyone who can reach the address sees what the dashboard shows; to share it, use an SSH tunnel
    rather than --public.
    """
    if web_host not in LOOPBACK and not public:
        fail(f"--web-host {web_host}: not a loopback address; add --public to expose the dashboard there")
    port = web_port or _free_port(web_host)
    address = f"http://{_url_host(web_host)}:{port}"
    if not serve_demo and _is_file(args):
        _check_replay(ctx, args)
        command = shlex.join([sys.executable, "-m", "wsmon", "replay", *args])
        title = f"wsmon replay {args[0]}"
        _announce(title, address, web_host, "each browser tab replays it on its own")
        _serve_dashboard(command, host=web_host, port=port, title=title, public_url=address)
        return
    with tempfile.TemporaryDirectory(prefix="wsmon-serve-") as folder:
        source = "demo" if serve_demo else "attach"
        live, record, kept = _live_session(ctx, args, serve_demo, Path(folder) / "shared.wsmon")
        viewer = [sys.executable, "-m", "wsmon", "replay", "--follow", str(record)]
        if live.theme is not None:
            viewer += ["--theme", live.theme]
        title = f"wsmon {live.session.title}"  # redacted: never a password from a target's URL
        _announce(title, address, web_host, "one session, shared by every browser tab")
        try:
            _serve_dashboard(
                shlex.join(viewer), host=web_host, port=port, title=title, public_url=address, session=live
            )
        except SessionFailed as exc:
            fail(str(exc))
        code = print_live_report(live.session, source)
        if live.after is not None:
            live.after()
        code = recording_exit(live.session, kept) or code
    sys.exit(code)


def _announce(title: str, address: str, web_host: str, how: str) -> None:
    """The address, then a one-line warning about what it exposes."""
    click.echo(f"wsmon serve: {title} on {address} ({how}; Ctrl+C stops)")
    exposed = web_host not in LOOPBACK
    where = (
        f"on {web_host}, open to the network"
        if exposed
        else "on this machine only; share it through an SSH tunnel"
    )
    click.echo(
        f"wsmon: warning: anyone who can open {address} sees this dashboard (targets, peers, log lines) "
        f"and can press its keys; it listens {where}",
        err=True,
    )


def _is_file(args: Sequence[str]) -> bool:
    """A first argument that is neither an option nor a URL names a recording or a log."""
    return bool(args) and not args[0].startswith("-") and "://" not in args[0]


def _check_replay(ctx: click.Context, args: tuple[str, ...]) -> None:
    """What `wsmon replay` checks before its screen opens: the same errors, before any server starts."""
    from wsmon.sources.logs.replay import check_readable, is_log_file
    from wsmon.store.format import RecordingError
    from wsmon.store.reader import RecordingReader

    with replay.make_context("replay", list(args), parent=ctx.parent) as sub:
        params = sub.params
    if params["headless"]:
        fail(HEADLESS + ": not with serve")
    paths = [params["file"], *params["more_logs"]]
    if is_log_file(paths[0]):
        for path in paths:
            problem = (
                check_readable(path) if is_log_file(path) else f"{path}: not a log; only logs can be merged"
            )
            if problem:
                fail(problem)
        return
    if len(paths) > 1:
        fail(f"{paths[0]}: only logs can be merged, and this is not one (a recording?)")
    try:
        RecordingReader(paths[0]).close()
    except RecordingError as exc:
        fail(str(exc))


def _live_session(
    ctx: click.Context, args: tuple[str, ...], serve_demo: bool, scratch: Path
) -> tuple[LiveSession, Path, Path | None]:
    """The one session, built as `attach` or `demo` builds it from these options (their errors, word for
    word), recording to --record FILE or else to ``scratch``; with the recording's path, and the user's
    own (kept) or None."""
    command = demo if serve_demo else attach
    with command.make_context(command.name or "", list(args), parent=ctx.parent) as sub:
        params: dict[str, Any] = dict(sub.params)
    if params.pop("headless"):
        fail(HEADLESS + ": not with serve")
    kept: Path | None = params["record"]
    params["record"] = kept or scratch
    # As headless: an attach that reads only saved logs ends at their end (the viewers say so).
    live = demo_session(**params) if serve_demo else attach_session(headless=True, **params)
    return live, params["record"], kept


def _free_port(host: str) -> int:
    """A port free now: textual-serve needs a concrete one to put in the page's WebSocket address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _url_host(host: str) -> str:
    """How a browser reaches HOST; the page's own WebSocket address is built on it, so a wildcard
    address (no browser can open 0.0.0.0) becomes this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _serve_dashboard(
    command: str, *, host: str, port: int, title: str, public_url: str, session: LiveSession | None = None
) -> None:
    """Serve ``command`` to every browser viewer until stopped; with ``session``, run that session in
    the same event loop from before the first viewer until after the last one has gone."""
    # Imported here: aiohttp would slow every other command's start.
    import asyncio

    from textual_serve.server import Server

    viewers: set[asyncio.Task[Any]] = set()
    running: list[asyncio.Task[None]] = []

    class DashboardServer(Server):
        """textual-serve's server without its banner, which prints the command (and so any password in a
        target's URL) on the console, and without an INFO line for every request; stopped, it ends the
        viewers' dashboards at once rather than after aiohttp's 60 s wait for open connections."""

        def initialize_logging(self) -> None:
            import logging

            logging.basicConfig(level=logging.WARNING, format="wsmon serve: %(message)s")

        async def on_startup(self, app: Any) -> None:
            if session is None:
                return
            shared = session.session
            running.append(asyncio.create_task(shared.run(), name="shared session"))
            await asyncio.sleep(0)  # run() opens its recording before it first waits
            if shared.writer is None:
                shared.stop()
                await asyncio.gather(running[0], return_exceptions=True)
                raise SessionFailed(shared.recording_error or "the session could not start recording")

        async def handle_websocket(self, request: Any) -> Any:
            viewer = asyncio.current_task()
            assert viewer is not None
            viewers.add(viewer)
            try:
                return await super().handle_websocket(request)
            finally:
                viewers.discard(viewer)

        async def on_shutdown(self, app: Any) -> None:
            # A cancelled viewer's handler tells its dashboard to quit and waits for it (textual-serve).
            for viewer in viewers:
                viewer.cancel()
            # Then the session: its sources stop in order and its recording is closed (kept or not, a
            # follower that is still open sees it end).
            if session is not None and running:
                session.session.stop()
                await asyncio.gather(running[0], return_exceptions=True)

    DashboardServer(command, host=host, port=port, title=title, public_url=public_url).serve()
