"""Secrets in the addresses the Redis and PostgreSQL sources show, and in the errors they pass on."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wsmon.core.redact import redact_url
from wsmon.sources.scrub import scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db.example:5432/test", "postgresql://app:***@db.example:5432/test"),
        ("postgres://app@db.example/test", "postgres://app@db.example/test"),
        ("postgresql://app:p%40ss@h1:5432,h2:5433/test", "postgresql://app:***@h1:5432,h2:5433/test"),
        ("postgresql://h/test?user=app&password=s3cret", "postgresql://h/test?user=app&password=***"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://monitor:s3cret@127.0.0.1:6379/0", "redis://monitor:***@127.0.0.1:6379/0"),
        ("rediss://127.0.0.1:6380/0", "rediss://127.0.0.1:6380/0"),
        ("ws://h:1/live?Token=abc&room=7", "ws://h:1/live?Token=***&room=7"),
        (
            "https://h/metrics?API_KEY=abc&sig=x&Signature=y",
            "https://h/metrics?API_KEY=***&sig=***&Signature=***",
        ),
        ("host=db user=app password=s3cret dbname=test", "host=db user=app password=*** dbname=test"),
        ("host=db password='s3 cret' dbname=test", "host=db password=*** dbname=test"),
    ],
)
def test_redact_url_masks_passwords_and_tokens(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "name",
    ["token", "access_token", "key", "apikey", "api_key", "password", "secret", "auth", "sig", "signature"],
)
def test_every_token_like_parameter_is_masked_whatever_its_case(name: str) -> None:
    for spelled in (name, name.upper(), name.title()):
        assert "v4lue" not in redact_url(f"wss://h/p?{spelled}=v4lue&x=1")


def test_a_redis_unix_socket_url_keeps_its_path_and_loses_its_password() -> None:
    shown = redact_url("unix:///run/redis.sock?db=0&password=s3cret")
    # The core's urlunsplit drops the empty authority ("unix:/run/..."): still the same path.
    assert shown.endswith("/run/redis.sock?db=0&password=***") and "s3cret" not in shown


def test_scrub_masks_the_password_in_free_text_raw_and_decoded() -> None:
    url = "postgresql://app:p%40ss-w0rd@db:5432/test"
    error = f"could not connect to {url}: password p@ss-w0rd rejected (sent p%40ss-w0rd)"
    scrubbed = scrub(error, url)
    assert "p@ss-w0rd" not in scrubbed and "p%40ss-w0rd" not in scrubbed
    assert "postgresql://app:***@db:5432/test" in scrubbed


def test_scrub_leaves_text_alone_when_the_url_has_no_password() -> None:
    assert scrub("connection refused", "redis://127.0.0.1:6379/0") == "connection refused"


def test_redact_argv_masks_secrets_in_a_command_line() -> None:
    from wsmon.core.redact import redact_argv

    argv = [
        "attach",
        "ws://h/ws?token=t0k",
        "--postgres",
        "postgresql://app:pw1@h/db",
        "--redis=redis://:pw2@h:6379/0",
        "--password",
        "pw3",
        "API_TOKEN=pw4",
        "host=h password=pw5",
        "--server",
        "node s.js --db postgresql://u:pw6@h/x",
        "plain",
        "two words",
    ]
    masked = redact_argv(argv)
    assert not any(f"pw{i}" in arg for arg in masked for i in range(1, 7)) and "t0k" not in " ".join(masked)
    assert masked[0] == "attach" and masked[-2:] == ["plain", "two words"]
    assert masked[3] == "postgresql://app:***@h/db" and masked[6] == "***" and masked[7] == "API_TOKEN=***"
    assert masked[10] == "node s.js --db 'postgresql://u:***@h/x'"


# --- issue 10 item 7: secrets that still leaked --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("connecting to postgres://app:CANARY@db/x", "connecting to postgres://app:***@db/x"),
        ("login password=CANARY ok", "login password=*** ok"),
        ("sent Authorization: Bearer CANARY upstream", "sent Authorization: *** upstream"),
        ('{"password": "CANARY", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("auth with Bearer CANARY", "auth with Bearer ***"),
        ("Cookie: session=CANARY; theme=dark", "Cookie: ***; theme=dark"),
        ("DB_PASSWORD='CAN ARY' next", "DB_PASSWORD='***' next"),
        ("PGPASSWORD=CANARY", "PGPASSWORD=***"),
        ("X-Auth-Token: CANARY", "X-Auth-Token: ***"),
        ("Authorization: Basic Q0FOQVJZ", "Authorization: ***"),
        ("API_KEY=CANARY retries=3", "API_KEY=*** retries=3"),
        ("İstanbul secret=CANARY", "İstanbul secret=***"),
    ],
)
def test_redact_text_masks_secrets_in_free_text(text: str, shown: str) -> None:
    from wsmon.core.redact import redact_text

    assert redact_text(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "author=Bob tokens_used=5 retries=3",
        "the basic idea is a bearer of news",
        "client c7 connected from 10.0.0.1:5555",
        "GET /api/v1/items 200 12ms",
    ],
)
def test_redact_text_leaves_ordinary_text_alone(text: str) -> None:
    from wsmon.core.redact import redact_text

    assert redact_text(text) == text


def test_a_command_in_one_argument_and_header_arguments_are_masked() -> None:
    from wsmon.core.redact import redact_argv, redact_command

    argv = ["attach", "--server", "python server.py --token CANARY", "-H", "Authorization: Bearer CANARY"]
    masked = redact_argv(argv)
    assert "CANARY" not in " ".join(masked)
    assert masked[2] == "python server.py --token '***'" and masked[4] == "Authorization: ***"
    assert (
        redact_command("python server.py --token CANARY --port 8080")
        == "python server.py --token '***' --port 8080"
    )
    assert (
        redact_command(["node", "s.js", "--db=postgres://u:CANARY@h/x"])
        == "node s.js '--db=postgres://u:***@h/x'"
    )
    assert redact_command("pytest -k session tests/") == "pytest -k session tests/"


def test_a_report_masks_a_command_recorded_unmasked() -> None:
    from wsmon.core.report import _header_command

    assert "CANARY" not in (_header_command(["npm", "test", "--", "--token", "CANARY"]) or "")
    assert "CANARY" not in (_header_command("wsmon run -- npm test --token CANARY") or "")


@pytest.mark.parametrize(
    "spec",
    [
        "9001=http://u:CANARY@h:1/",  # not ws://
        "9001",  # no '=': the whole spec is echoed
        "99999=ws://u:CANARY@h:1/?token=CANARY",  # bad port
        "x:y=ws://:CANARY@h:1/",
    ],
)
def test_tap_spec_errors_never_echo_a_secret(spec: str) -> None:
    from wsmon.config import parse_tap_spec

    with pytest.raises(ValueError) as raised:
        parse_tap_spec(spec.replace("9001", "9001 token=CANARY") if spec == "9001" else spec)
    assert "CANARY" not in str(raised.value) and "--tap" in str(raised.value)


@pytest.mark.parametrize(
    "line",
    [
        "PASSWORD CANARY",
        "DATABASE_URL postgres://app:CANARY@db/test",
        'TOKEN="CANARY',
        "export API_KEY CANARY",
    ],
)
def test_dotenv_syntax_errors_never_echo_a_secret(tmp_path, line: str) -> None:  # type: ignore[no-untyped-def]
    from wsmon.config import ConfigError, read_dotenv

    env = tmp_path / ".env"
    env.write_text(f"WSMON_URL=ws://127.0.0.1:1/\n{line}\n")
    with pytest.raises(ConfigError) as raised:
        read_dotenv(env)
    message = str(raised.value)
    assert "CANARY" not in message and f"{env}:2" in message


def test_env_style_assignments_whose_name_ends_in_a_secret_word_are_masked() -> None:
    from wsmon.core.redact import redact_argv

    masked = redact_argv(
        ["PGPASSWORD=x1", "GITHUBTOKEN=x2", "--dbpassword", "x3", "MYAPP_SECRET=x4", "KEYS=ok"]
    )
    assert masked == [
        "PGPASSWORD=***",
        "GITHUBTOKEN=***",
        "--dbpassword",
        "***",
        "MYAPP_SECRET=***",
        "KEYS=ok",
    ]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        (
            "ALTER ROLE app PASSWORD 's3c''ret' VALID UNTIL 'infinity'",
            "ALTER ROLE app PASSWORD '***' VALID UNTIL 'infinity'",
        ),
        (
            "SELECT * FROM sessions WHERE token = 'abc123' AND id = 7",
            "SELECT * FROM sessions WHERE token = '***' AND id = 7",
        ),
        ("UPDATE users SET password='x' WHERE id = 1", "UPDATE users SET password='***' WHERE id = 1"),
        ("SELECT pg_sleep(30)", "SELECT pg_sleep(30)"),
    ],
)
def test_other_sessions_queries_lose_their_secrets(query: str, shown: str) -> None:
    from wsmon.sources.postgres import shown_query

    assert shown_query(query) == shown


def test_header_arguments_lose_their_values_whatever_the_header() -> None:
    from wsmon.core.redact import redact_argv

    masked = redact_argv(
        ["attach", "--header", "X-Custom-Key: k3y", "-H", "Authorization: Bearer t0k", "--header=Cookie: a=b"]
    )
    assert masked == [
        "attach",
        "--header",
        "X-Custom-Key: ***",
        "-H",
        "Authorization: ***",
        "--header=Cookie: ***",
    ]


def test_logs_explain_prints_lines_with_their_secrets_masked() -> None:
    from wsmon.sources.logs.explain import explain_lines, report

    printed = "\n".join(report(explain_lines(["info: login ok password=hunter2 from postgres://u:pw9@db/x"])))
    assert "hunter2" not in printed and "pw9" not in printed and "password=***" in printed


_SECRET_FORMS = [
    "password={s}",
    "db_password: {s}",
    '{{"password": "{s}"}}',
    "token={s}&room=1",
    "PGPASSWORD='{s}'",
    "Authorization: Bearer {s}",
    "Cookie: session={s}; theme=dark",
    "X-Auth-Token: {s}",
    "sent with Bearer {s}",
    "postgresql://app:{s}@db:5432/x",
    "wss://h/live?access_token={s}",
    "api_key = {s}",
]


@settings(max_examples=300, deadline=None)
@given(
    form=st.sampled_from(_SECRET_FORMS),
    # "/" left out: a URL cannot hold it raw in its password (it must be %2F there)
    secret=st.text(alphabet=string.ascii_letters + string.digits + "-_.~+", min_size=6, max_size=40),
    before=st.text(alphabet=string.ascii_letters + " .,:-", max_size=30),
    after=st.text(alphabet=string.ascii_letters + " .,-", max_size=30),
)
def test_a_secret_in_a_known_form_never_survives_redact_text(
    form: str, secret: str, before: str, after: str
) -> None:
    from wsmon.core.redact import redact_text

    assume(secret not in before + form + after)  # only the secret's own place can hold it
    text = f"{before} {form.format(s=secret)} {after}"
    assert secret not in redact_text(text)
