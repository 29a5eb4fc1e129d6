"""Secrets in the addresses the Redis and PostgreSQL sources show, and in the errors they pass on."""

from __future__ import annotations

import pytest

from wsmon.core.redact import redact_url
from wsmon.sources.redact import scrub


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
