"""`wsmon serve`: the dashboard in a browser (textual-serve), for sharing a screen during an incident.

textual-serve runs one command per browser connection, so every viewer gets a dashboard process of their
own: for a FILE, `wsmon replay FILE`; with --demo, `wsmon demo` with the same options, so each viewer has
a demo server and load generator of their own on free ports; for live targets, `wsmon attach` with the
same options. The live
viewers therefore watch the same targets, each with its own probes and its own State, and nothing
starts, listens or records once per viewer: options that would (a server command, a tap, Prometheus,
a recording, alerts, stdin as a log) are refused, whether they come from a flag, a variable or
wsmon.toml (a demo viewer's recording, alerts and Prometheus port likewise). The options after `serve` are
parsed by `attach`, `replay` or `demo` themselves before the web server starts, so a bad option or FILE
gets the very error that command gives.
"""

from __future__ import annotations

import shlex
import socket
import sys
from collections.abc import Sequence
from typing import Any

import click

from wsmon.cli.common import fail, main, settings_or_fail
from wsmon.cli.live import attach, attach_options, demo
from wsmon.cli.recordings import replay

LOOPBACK = ("127.0.0.1", "localhost", "::1")

# What a viewer's attach would do once per viewer: start a second server, bind a taken port, write one
# file from several processes, send every alert once per viewer, or wait on a stdin it does not have.
NOT_PER_VIEWER = {
    "server": "--server (each viewer would start the server again)",
    "taps": "--tap (only one viewer could listen on its port)",
    "prometheus": "--prometheus (only one viewer could listen on its port)",
    "record": "--record (every viewer would write the same file)",
    "alert_cmd": "--alert-cmd (every viewer would run it for each alert)",
    "alert_webhook": "--alert-webhook (every viewer would post each alert)",
    "headless": "--headless (a browser shows the dashboard)",
    "publish": "--publish (every viewer would publish the node's events again)",
}


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
    help="Serve `wsmon demo` (its options may follow): each viewer gets its own demo server and clients.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ATTACH OPTIONS | FILE | DEMO OPTIONS]")
@click.pass_context
def serve(
    ctx: click.Context, web_host: str, web_port: int, public: bool, serve_demo: bool, args: tuple[str, ...]
) -> None:
    """Serve the dashboard to a browser on 127.0.0.1: of live targets (same options as attach), of FILE,
    or of the demo (--demo).

    Every browser connection runs its own dashboard: `wsmon replay FILE`; `wsmon demo` with these
    options, its own demo server and load generator on free ports; or `wsmon attach` with these options,
    watching the same targets and recording nothing. Anyone who can reach the address sees what the
    dashboard shows; to share it, use an SSH tunnel rather than --public.
    """
    if web_host not in LOOPBACK and not public:
        fail(f"--web-host {web_host}: not a loopback address; add --public to expose the dashboard there")
    each = "each browser tab runs its own"
    if serve_demo:
        verb, title = "demo", "wsmon demo"
        each += " demo server and load generator, on free ports"
        _check_demo(ctx, args)
    elif _is_file(args):
        verb, title = "replay", f"wsmon replay {args[0]}"
        _check_replay(ctx, args)
    else:
        verb, title = "attach", "wsmon attach"  # not its options: a URL may carry a password
        _check_attach(ctx, args)
    port = web_port or _free_port(web_host)
    command = shlex.join([sys.executable, "-m", "wsmon", verb, *args])
    address = f"http://{_url_host(web_host)}:{port}"
    click.echo(f"wsmon serve: {title} on {address} ({each}; Ctrl+C stops)")
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
    _serve_dashboard(command, host=web_host, port=port, title=title, public_url=address)


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
        fail(NOT_PER_VIEWER["headless"] + ": not with serve")
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
    if params["follow"]:
        fail(f"{paths[0]}: --follow follows a log, and this is a recording")
    try:
        RecordingReader(paths[0]).close()
    except RecordingError as exc:
        fail(str(exc))


def _check_attach(ctx: click.Context, args: tuple[str, ...]) -> None:
    """What `wsmon attach` checks before it starts, and what cannot run once per viewer."""
    with attach.make_context("attach", list(args), parent=ctx.parent) as sub:
        params: dict[str, Any] = dict(sub.params)
    settings = settings_or_fail(params.pop("limit_flags"))
    options = attach_options(settings, params)
    chosen = {**params, "server": options.server, "taps": options.taps}
    for key, why in NOT_PER_VIEWER.items():
        if chosen.get(key):
            fail(f"{why}: not with serve; run `wsmon attach` for that, and serve the rest")
    if "-" in options.logs:
        fail("--log -: a browser's dashboard has no stdin to read; give the log's file")


def _check_demo(ctx: click.Context, args: tuple[str, ...]) -> None:
    """What `wsmon demo` checks before it starts, and what its viewers would each do once too many."""
    with demo.make_context("demo", list(args), parent=ctx.parent) as sub:
        params: dict[str, Any] = dict(sub.params)
    settings_or_fail(params["limit_flags"])
    for key in ("record", "alert_cmd", "alert_webhook", "prometheus", "headless"):
        if params.get(key):
            fail(f"{NOT_PER_VIEWER[key]}: not with serve --demo; run `wsmon demo` for that")


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


def _serve_dashboard(command: str, *, host: str, port: int, title: str, public_url: str) -> None:
    # Imported here: aiohttp would slow every other command's start.
    import asyncio

    from textual_serve.server import Server

    viewers: set[asyncio.Task[Any]] = set()

    class DashboardServer(Server):
        """textual-serve's server without its banner, which prints the command (and so any password in a
        target's URL) on the console, and without an INFO line for every request; stopped, it ends the
        viewers' dashboards at once rather than after aiohttp's 60 s wait for open connections."""

        def initialize_logging(self) -> None:
            import logging

            logging.basicConfig(level=logging.WARNING, format="wsmon serve: %(message)s")

        async def on_startup(self, app: Any) -> None:
            return None

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

    DashboardServer(command, host=host, port=port, title=title, public_url=public_url).serve()
