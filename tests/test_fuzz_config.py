"""Fuzzing the configuration: wsmon.toml with any TOML value under every key wsmon reads, and `.env`.

Property: loading and resolving gives usable settings, or one ConfigError line that names the file
(and the key, when a key's value is what is wrong). Never another exception (a traceback to the user).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fuzzing import one_line
from hypothesis import example, given
from hypothesis import strategies as st

from wsmon.config import ConfigError, baseline_tolerances, load_settings, resolve_options
from wsmon.config.options import SECTIONS as _SECTIONS
from wsmon.config.sections import BaselineSection, DeliverySection
from wsmon.core.baseline import ToleranceError
from wsmon.core.limits import DEFAULT_LIMITS, RATIO_MIN_EVENTS_KEY

pytestmark = pytest.mark.timeout(300)

TARGET_ENV = ("WSMON_URL", "REDIS_URL", "DATABASE_URL")
KEYS: dict[str, list[str]] = {}
for _key, _section in _SECTIONS.items():
    KEYS.setdefault(_section, []).append(_key)
KEYS["limits"] = [limit.figure for limit in DEFAULT_LIMITS] + [RATIO_MIN_EVENTS_KEY]
KEYS["delivery"] = list(DeliverySection.__struct_fields__)
KEYS["baseline"] = list(BaselineSection.__struct_fields__)


# --- writing TOML ---------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML wants DEL escaped too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 65535, 65536, 2**63 - 1, 0.0, -0.0, 1e308, 5e-324]),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "ws://127.0.0.1:1", "wss://h/x", "redis://:secret@h:6379/0", "rediss://h", "unix:///tmp/r.sock",
            "postgresql://u:pw@h/db", "http://h/health", "https://h/metrics", "redis://h#ch",
            "redis://h#stream:", "postgresql://h/db#ch", "127.0.0.1:1=127.0.0.1:2", ":0", "0", "1e400",
            "nan", "inf", "-1", "core", "machine", "in", "out", "conn.close", "delivery.fail", "(",
            "a{99999999999}",
            "(" * 600 + ")" * 600, "~(", "~a{4294967296}", "{", "{}", "{x", "\x00", "\x1b[31m",
        ]
    ),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    st.dates(),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


rule_match = st.dictionaries(st.sampled_from(["msg", "a.b", "\n"]), scalars, max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*KEYS, "log", "other"]), unique=True, max_size=4)):
        if section == "log":
            rules = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "event": st.sampled_from(["conn.close", "delivery.fail", "nope", ""]) | values,
                            "regex": scalars | values,
                            "match": rule_match | values,
                            "fields": st.dictionaries(
                                st.sampled_from(["conn", "code", "reason", "wall", "id", "msg_id", "x"]),
                                scalars,
                                max_size=3,
                            )
                            | values,
                        },
                    )
                    | values,
                    max_size=3,
                )
            )
            doc["log"] = {"rules": rules} if draw(st.booleans()) else draw(values)
        elif section == "other" or draw(st.integers(0, 9)) == 0:
            doc[section] = draw(values)  # a section that is not a table, or another command's
        else:
            keys = KEYS[section] + ["typo"]
            doc[section] = draw(st.dictionaries(st.sampled_from(keys), values, max_size=4))
    return doc


def toml_document(doc: dict[str, Any]) -> str:
    lines = []
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{toml_string(section)}]")
            lines += [f"{toml_string(key)} = {toml_value(value)}" for key, value in table.items()]
        else:
            lines.insert(0, f"{toml_string(section)} = {toml_value(table)}")
    return "\n".join(lines) + "\n"


# --- the property -------------------------------------------------------------------------------


@contextmanager
def workdir(files: dict[str, str | bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name, content in files.items():
            data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
            (cwd / name).write_bytes(data)
        env = {key: value for key, value in os.environ.items() if key not in TARGET_ENV}
        env["XDG_CONFIG_HOME"] = str(cwd / "no-user-config")
        with mock.patch.dict(os.environ, env, clear=True):
            yield cwd


def load(cwd: Path, named: tuple[str, ...] = ()) -> None:
    """Settings, options and the baseline tolerances from ``cwd``, or one ConfigError (ToleranceError)
    line naming the file and a key."""
    try:
        settings = load_settings(cwd=cwd)
        options = resolve_options({}, settings)
        tolerance, tolerances = baseline_tolerances(settings)
    except (ConfigError, ToleranceError) as exc:
        message = str(exc)
        assert one_line(message), repr(message)
        assert str(cwd) in message, message
        if named:
            assert any(name in message for name in named), message
        return
    # What was accepted is usable: finite positive intervals, ports in range.
    for seconds in (options.interval, options.reconnect_every, options.delivery_timeout):
        assert seconds is None or (math.isfinite(seconds) and seconds >= 0), options
    assert options.port is None or 1 <= options.port <= 65535, options
    assert all(math.isfinite(t) and t >= 0 for t in (tolerance, *tolerances.values())), tolerances


@given(documents())
@example({"limits": {"\n": False}})
@example({"delivery": {"\x1b[2J": 1}})
@example({"log": {"rules": [{"event": "conn.close", "match": {"\n": []}}]}})
@example({"attach": {"interval": math.nan}})
@example({"attach": {"interval": math.inf}})
@example({"attach": {"interval": "1e400"}})
@example({"probe": {"reconnect_every": math.inf}})
@example({"delivery": {"timeout_s": math.nan}})
@example({"log": {"rules": [{"event": "conn.close", "regex": "(" * 600 + ")" * 600}]}})
@example({"log": {"rules": [{"event": "conn.close", "regex": "a{99999999999}"}]}})
@example({"log": {"rules": [{"event": "conn.close", "match": {"msg": "~a{4294967296}"}}]}})
def test_any_value_under_any_key_of_wsmon_toml(doc: dict[str, Any]) -> None:
    text = toml_document(doc)
    keys = tuple(doc) + tuple(k for t in doc.values() if isinstance(t, dict) for k in t)
    with workdir({"wsmon.toml": text}) as cwd:
        load(cwd, keys)


@given(st.text())
@example("a = " + "[" * 5000 + "]" * 5000)
@example("a = " + "{b = " * 2000 + "1" + "}" * 2000)
@example("[limits]\nrss_mib = " + "[" * 2000 + "]" * 2000)
def test_any_text_as_wsmon_toml(text: str) -> None:
    with workdir({"wsmon.toml": text}) as cwd:
        load(cwd)


@given(st.binary())
def test_any_bytes_as_wsmon_toml(data: bytes) -> None:
    with workdir({"wsmon.toml": data}) as cwd:
        load(cwd)


dotenv_lines = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [
                "WSMON_URL=ws://127.0.0.1:1", "REDIS_URL=redis://h/0", "DATABASE_URL=postgresql://h/db",
                "WSMON_URL=http://wrong", "REDIS_URL=", "export DATABASE_URL='postgres://x'", "# comment",
                'WSMON_URL="ws://h # not a comment"', "KEY", "=value", "KEY='unclosed", 'K="\\x1b"', "\x00=1",
                "WSMON_URL=\x1b[31m", "  spaced = yes  ", "K=${OTHER}",
            ]
        ),
    ),
    max_size=8,
)  # fmt: skip


@given(dotenv_lines, st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_dotenv(lines: list[str], newline: str) -> None:
    with workdir({".env": newline.join(lines)}) as cwd:
        load(cwd)  # a bad line is named by file and line number


@given(st.binary())
def test_any_bytes_as_dotenv(data: bytes) -> None:
    with workdir({".env": data}) as cwd:
        load(cwd)


def test_deeply_nested_toml_is_one_config_error_line(tmp_path: Path) -> None:
    text = "a = " + "[" * 5000 + "]" * 5000
    with workdir({"wsmon.toml": text}) as cwd, pytest.raises(ConfigError) as caught:
        load_settings(cwd=cwd)
    assert re.fullmatch(rf"{re.escape(str(cwd / 'wsmon.toml'))}: .*nested.*", str(caught.value)), caught.value


@pytest.mark.parametrize(
    "content",
    [
        b"a = " + b"[" * 5000 + b"]" * 5000,
        b"[attach]\ninterval = 1\n\x80\xff",
        b'[limits]\n"rss\\n\\u001b[2J" = 1',
        b"[attach]\ninterval = nan",
        b'[[log.rules]]\nevent = "conn.close"\nregex = "a{99999999999}"',
    ],
    ids=["nested", "not-utf8", "key-with-escapes", "nan-interval", "regex-overflow"],
)
def test_wsmon_check_says_one_line_for_each_found_defect(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "wsmon.toml").write_bytes(content)
    env = {key: value for key, value in os.environ.items() if key not in TARGET_ENV}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    result = subprocess.run(
        [sys.executable, "-m", "wsmon", "check", "ws://127.0.0.1:1/"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"wsmon: error: {tmp_path / 'wsmon.toml'}"), result.stderr
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr, result.stderr
