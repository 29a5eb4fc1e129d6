"""Probes that real servers accept: headers (Authorization from the environment), a subprotocol, an
Origin and a scripted first exchange, against a real server that checks all of them. Failures name
their step, and the token reaches no event, recording, report, export or screen text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from auth_server import SUBPROTOCOL, AuthServer, running
from helpers import clean_env, run_wsmon
from hypothesis import given
from hypothesis import strategies as st
from test_probe import Events, of, run_until, ws_server
from websockets.asyncio.server import ServerConnection

from wsmon.core import events as ev
from wsmon.core.redact import redact_argv, redact_header, redact_header_args
from wsmon.sources.probe import (
    ExchangeStep,
    ProbeConfig,
    ProbeSource,
    reply_matches,
    scrub_secrets,
    secret_words,
)
from wsmon.store.reader import RecordingReader

TOKEN = "tok-5f3a9c2e1d7b"
ORIGIN = "https://app.example.com"
REGISTER = ExchangeStep(
    send=json.dumps({"type": "register", "deviceId": "wsmon-probe-{probe}"}),
    expect={"type": "registered"},
    timeout=3.0,
)


def config(port: int, **overrides: object) -> ProbeConfig:
    values: dict[str, object] = {
        "url": f"ws://127.0.0.1:{port}/ws",
        "count": 1,
        "interval": 0.1,
        "headers": (("Authorization", f"Bearer {TOKEN}"),),
        "subprotocols": (SUBPROTOCOL,),
        "origin": ORIGIN,
        "first_exchange": (REGISTER,),
    }
    values.update(overrides)
    return ProbeConfig(**values)  # type: ignore[arg-type]


def went_down(events: Events) -> bool:
    return bool(of(events, ev.TargetDown))


def assert_no_secret(events: Events, *secrets: str) -> None:
    text = repr(events)
    for secret in secrets:
        assert secret not in text


async def test_without_the_header_the_handshake_is_rejected_with_401_naming_the_step() -> None:
    with running(AuthServer(TOKEN)) as server:
        source = ProbeSource(config(server.port, headers=()))
        events = await run_until(source, went_down)
        check = await source.check()
    failed = of(events, ev.ConnectFailed)[0]
    assert (failed.kind, failed.status, failed.own) == ("rejected", 401, True)
    down = of(events, ev.TargetDown)[0]
    assert down.error == "handshake rejected: HTTP 401 Unauthorized"
    assert not of(events, ev.TargetUp) and server.rejected[0] == 401
    assert not check.ok and "HTTP 401" in check.error and "--header" in check.hint


async def test_a_wrong_origin_is_rejected_with_403() -> None:
    with running(AuthServer(TOKEN)) as server:
        events = await run_until(ProbeSource(config(server.port, origin="https://evil.example")), went_down)
    assert of(events, ev.ConnectFailed)[0].status == 403
    assert of(events, ev.TargetDown)[0].error.startswith("handshake rejected: HTTP 403")


async def test_with_header_origin_subprotocol_and_registration_the_probe_is_up_and_measures() -> None:
    def measured(events: Events) -> bool:
        return len([s for s in of(events, ev.LatencySample) if s.kind == "ping"]) >= 3

    with running(AuthServer(TOKEN)) as server:
        source = ProbeSource(config(server.port, count=2))
        events = await run_until(source, measured)
        check = await source.check()
    up = of(events, ev.TargetUp)
    assert up and "first exchange" in up[0].detail and not of(events, ev.TargetDown)
    assert {s.kind for s in of(events, ev.LatencySample)} >= {"connect", "ping"}
    # Each probe registered as its own device, and the echo after registration still answers pings.
    assert {"wsmon-probe-1", "wsmon-probe-2"} <= set(server.registered)
    assert check.ok, check.error
    assert_no_secret(events, TOKEN, AuthServer(TOKEN).session_secret)


async def test_a_reply_that_does_not_match_fails_the_first_exchange_step() -> None:
    wrong = ExchangeStep(send=REGISTER.send, expect={"type": "registered-ok"}, timeout=0.5)
    with running(AuthServer(TOKEN)) as server:
        source = ProbeSource(config(server.port, first_exchange=(wrong,)))
        events = await run_until(source, went_down)
        check = await source.check()
    down = of(events, ev.TargetDown)[0]
    assert down.error.startswith('first exchange: no reply matching \'{"type": "registered-ok"}\'')
    # What came instead is described by its type only: the reply carries a session secret.
    assert "2 other messages came, the last of type 'registered'" in down.error
    assert down.kind == "timeout" and of(events, ev.ConnectFailed)[0].kind == "timeout"
    assert not of(events, ev.TargetUp) and not of(events, ev.ConnectionOpened)
    assert not check.ok and check.error == down.error and "first_exchange" in check.hint
    assert_no_secret(events, TOKEN, AuthServer(TOKEN).session_secret)


async def test_a_registration_the_server_refuses_names_the_step_and_its_close_code() -> None:
    hello = ExchangeStep(send='{"type": "hello"}', expect={"type": "registered"}, timeout=3.0)
    with running(AuthServer(TOKEN)) as server:
        events = await run_until(ProbeSource(config(server.port, first_exchange=(hello,))), went_down)
    error = of(events, ev.TargetDown)[0].error
    assert error == "first exchange: the server closed the connection: 1008 Policy Violation (register first)"


async def test_steps_are_numbered_when_there_are_several() -> None:
    steps = (REGISTER, ExchangeStep(send='{"type": "ping"}', expect='"pong"', timeout=0.3))
    with running(AuthServer(TOKEN)) as server:
        events = await run_until(ProbeSource(config(server.port, first_exchange=steps)), went_down)
    error = of(events, ev.TargetDown)[0].error
    assert error.startswith("first exchange (step 2 of 2): no reply matching '\"pong\"'"), error


async def test_a_subprotocol_the_server_does_not_select_fails_the_subprotocol_step() -> None:
    with running(AuthServer(TOKEN), subprotocols=[]) as server:
        events = await run_until(ProbeSource(config(server.port)), went_down)
    error = of(events, ev.TargetDown)[0].error
    assert error == "subprotocol: the server accepted none of the subprotocols offered (chat.v1)"


async def test_a_server_that_echoes_the_token_in_its_close_reason_is_masked() -> None:
    async def echo_credentials(ws: ServerConnection) -> None:
        assert ws.request is not None
        await ws.close(4001, f"bad credentials: {ws.request.headers['Authorization']}")

    async with ws_server(echo_credentials) as (_, port):
        plain = config(port, subprotocols=(), origin=None, first_exchange=())
        closes = await run_until(ProbeSource(plain), lambda es: len(of(es, ev.ConnectionClosed)) >= 2)
        registering = config(port, subprotocols=(), origin=None)
        failed = await run_until(ProbeSource(registering), went_down)
    assert {e.reason for e in of(closes, ev.ConnectionClosed)} == {"bad credentials: ***"}
    assert of(failed, ev.TargetDown)[0].error == (
        "first exchange: the server closed the connection: 4001 Application-defined (bad credentials: ***)"
    )
    assert_no_secret(closes + failed, TOKEN)


def test_reply_matching_is_a_substring_or_a_json_subset() -> None:
    assert reply_matches('"ok"', '{"status": "ok"}')
    assert reply_matches({"type": "registered"}, '{"type": "registered", "id": 3}')
    assert reply_matches({"a": {"b": 1}}, '{"a": {"b": 1, "c": 2}}')
    assert not reply_matches({"a": {"b": 1}}, '{"a": {"b": 2}}')
    assert not reply_matches({"type": "registered"}, "registered")  # not JSON


def test_secret_words_mask_the_value_and_its_credential_alone() -> None:
    words = secret_words((("Authorization", f"Bearer {TOKEN}"), ("X-Api-Key", "k-123456")))
    text = f"echo: Bearer {TOKEN} / {TOKEN} / k-123456"
    assert scrub_secrets(text, words) == "echo: *** / *** / ***"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (f"Authorization: Bearer {TOKEN}", "Authorization: ***"),
        ("Authorization: Bearer env:TOKEN", "Authorization: Bearer env:TOKEN"),
        ("Authorization: env:TOKEN", "Authorization: env:TOKEN"),
        ("Cookie: sid=abc; env:X", "Cookie: ***"),
        ("X-Device: phone", "X-Device: ***"),
        (f"no colon {TOKEN}", "***"),
    ],
)
def test_redact_header_shows_only_environment_references(line: str, shown: str) -> None:
    assert redact_header(line) == shown


def test_a_command_line_shows_header_values_masked() -> None:
    argv = [
        "attach",
        "ws://h/",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        f"--header=Cookie: sid={TOKEN}",
    ]
    argv += ["--header", "Authorization: env:TOKEN", "--origin", "https://app.example.com"]
    masked = [
        *("attach", "ws://h/", "--header", "Authorization: ***", "--header=Cookie: ***"),
        *("--header", "Authorization: env:TOKEN", "--origin", "https://app.example.com"),
    ]
    assert redact_header_args(argv) == masked
    assert redact_argv(argv) == masked  # what a recording's command line is made with


# --- end to end: the CLI, a recording, a report and an export -----------------------------------------


def token_free_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path, drop=("TOKEN",))


FIRST_EXCHANGE_TOML = """
[[probe.first_exchange]]
send = { type = "register", deviceId = "wsmon-{probe}" }
expect = { type = "registered" }
timeout = 3
"""


@pytest.mark.parametrize(
    ("header", "token_env"),
    [
        ("Authorization: env:TOKEN", f"Bearer {TOKEN}"),  # the whole value from the environment
        ("Authorization: Bearer env:TOKEN", TOKEN),  # the credential alone
        (f"Authorization: Bearer {TOKEN}", None),  # typed on the command line: still never shown
    ],
)
def test_attach_with_a_header_is_up_and_the_token_reaches_no_output(
    tmp_path: Path, header: str, token_env: str | None
) -> None:
    (tmp_path / "wsmon.toml").write_text(FIRST_EXCHANGE_TOML)
    env = token_free_env(tmp_path)
    if token_env is not None:
        env["TOKEN"] = token_env
    record = tmp_path / "run.wsmon"
    with running(AuthServer(TOKEN)) as server:
        url = f"ws://127.0.0.1:{server.port}/ws?token={TOKEN}"  # a token in the URL too
        attached = run_wsmon(
            "attach", url, "--header", header, "--subprotocol", SUBPROTOCOL, "--origin", ORIGIN,
            "--probes", "1", "--interval", "0.2", "--port", "1",
            "--headless", "--duration", "3", "--record", str(record),
            cwd=tmp_path, env=env,
        )  # fmt: skip
        registered = list(server.registered)
    assert attached.returncode in (0, 1), attached.stderr
    assert registered and registered[0] == "wsmon-1"
    reader = RecordingReader(record)
    events = list(reader.iter_events())
    websocket = [e for e in events if getattr(e, "target", None) == "websocket"]
    assert any(isinstance(e, ev.TargetUp) for e in websocket), websocket
    assert not any(isinstance(e, ev.TargetDown) for e in websocket), websocket
    assert [e for e in events if isinstance(e, ev.LatencySample) and e.kind == "ping" and e.own]
    reader.close()
    outputs = [attached.stdout, attached.stderr]
    for fmt in ("text", "json", "markdown", "junit"):
        outputs.append(run_wsmon("report", str(record), "--format", fmt, cwd=tmp_path, env=env).stdout)
    exported = run_wsmon("export", str(record), "--jsonl", cwd=tmp_path, env=env)
    assert exported.returncode == 0 and '"websocket"' in exported.stdout
    outputs.append(exported.stdout)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("run.wsmon*"))
    assert TOKEN.encode() not in stored
    for text in outputs:
        assert TOKEN not in text


@given(
    # Any credential of 3 or more characters without blanks; not one made of the mask's own "*".
    value=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="*"), min_size=3),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_a_header_value_never_survives_scrubbing(value: str, before: str, after: str) -> None:
    words = secret_words((("Authorization", f"Bearer {value}"),))
    for text in (f"{before}{value}{after}", f"{before}Bearer {value}{after}"):
        assert value not in scrub_secrets(text, words)
