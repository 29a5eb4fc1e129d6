"""Fuzzing the recording reader: a file cut at every page, flipped bits, bad versions, huge rows.

Every damage must end in one of two ways: a ``RecordingError`` whose message is one line naming the
file, or a partial read whose lost events are named in ``reader.warnings``. Never another exception,
never a hang (the test's timeout), never a runaway allocation.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import write_recording
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_recording import sample_events

from wsmon.store import RecordingError, RecordingReader, ReplayEngine, export_jsonl

pytestmark = pytest.mark.timeout(600)

EVENTS = 2_400
PAGE = 1024  # the writer's page size


@functools.cache
def original() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.wsmon"
        write_recording(path, sample_events(EVENTS), batch=150, keyframe_every=600)
        return path.read_bytes()


@contextmanager
def damaged(data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.wsmon"
        path.write_bytes(data)
        yield path


def read_everything(path: Path) -> str:
    """Do what report, replay and export do; returns 'error', 'partial' or 'whole'."""
    try:
        reader = RecordingReader(path)
    except RecordingError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return "error"
    with reader:
        kept = sum(1 for _ in reader.iter_events())
        reader.check_batches()
        reader.state_at_seq(reader.event_count)
        reader.state_at_seq(reader.event_count // 2)
        export_jsonl(reader, io.StringIO())
        engine = ReplayEngine(reader)
        engine.seek_time((reader.first_mono or 0.0) + reader.duration_s / 3)
        engine.step(40)
        engine.step(-25)
        engine.advance(10_000.0)
        assert all("\n" not in warning for warning in reader.warnings)
        if kept < EVENTS:
            assert reader.warnings, f"{EVENTS - kept} events lost without a warning"
            return "partial"
        return "whole"


def test_a_recording_cut_at_every_page_is_an_error_or_a_warned_partial_read() -> None:
    data = original()
    outcomes: dict[str, int] = {}
    for cut in range(0, len(data) + 1, PAGE):
        for at in {cut, max(cut - 1, 0), cut + PAGE // 2}:
            with damaged(data[:at]) as path:
                outcome = read_everything(path)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"{len(data) // PAGE} pages: {outcomes}")
    assert outcomes.get("error") and outcomes.get("partial") and outcomes.get("whole")


FUZZ = settings(
    max_examples=int(os.environ.get("WSMON_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 7)), min_size=1, max_size=12))
def test_flipped_bits_anywhere_are_an_error_or_a_warned_partial_read(flips: list[tuple[int, int]]) -> None:
    data = bytearray(original())
    for offset, bit in flips:
        data[offset % len(data)] ^= 1 << bit
    with damaged(bytes(data)) as path:
        read_everything(path)


@FUZZ
@given(
    version=st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=20), st.binary(max_size=20)),
    schema=st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=5), st.none()),
    header_cut=st.integers(0, 400),
)
def test_bad_versions_and_headers_are_one_line_errors(
    version: int | str | bytes, schema: int | str | None, header_cut: int
) -> None:
    with damaged(original()) as path:
        with sqlite3.connect(path) as db:
            (text,) = db.execute("SELECT value FROM meta WHERE key = 'header'").fetchone()
            header = json.loads(text)
            header["schema_version"] = schema
            db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (version,))
            db.execute("UPDATE meta SET value = ? WHERE key = 'header'", (json.dumps(header)[:header_cut],))
        db.close()
        assert read_everything(path) == "error"


@FUZZ
@given(
    count=st.one_of(st.integers(-(2**62), 2**62), st.text(max_size=5), st.floats(allow_nan=False)),
    first_seq=st.one_of(st.just(None), st.integers(-(2**62), 2**62)),
    mono=st.one_of(st.floats(allow_nan=False), st.text(max_size=5)),  # SQLite stores NaN as NULL
    blob=st.one_of(st.binary(max_size=64), st.integers(0, 3).map(lambda n: os.urandom(n * 300_000))),
)
def test_odd_and_huge_rows_are_skipped_with_a_warning(
    count: object, first_seq: int | None, mono: object, blob: bytes
) -> None:
    with damaged(original()) as path:
        with sqlite3.connect(path) as db:
            db.execute(
                "INSERT INTO batches (first_seq, count, min_mono, max_mono, first_wall, last_wall, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (EVENTS if first_seq is None else first_seq, count, mono, mono, 1.0, 2.0, blob),
            )
            # A keyframe row as odd as the batch, placed past the last good one.
            db.execute(
                "INSERT INTO keyframes (seq, mono, wall, base_seq, data) VALUES (?, ?, ?, ?, ?)",
                (EVENTS + 1, 1.0, 1.0, None, blob),
            )
        db.close()
        assert read_everything(path) in ("whole", "partial")


CLI_FUZZ = settings(
    max_examples=int(os.environ.get("WSMON_CLI_FUZZ_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@CLI_FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 7)), min_size=1, max_size=40),
    cut=st.one_of(st.none(), st.integers(0, 10**9)),
)
def test_the_cli_on_damage_prints_one_error_line_or_warnings_never_a_traceback(
    flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(original())
    for offset, bit in flips:
        data[offset % len(data)] ^= 1 << bit
    if cut is not None:
        data = data[: cut % len(data)]
    with damaged(bytes(data)) as path:
        for command in (["report"], ["export", "--jsonl"]):
            proc = subprocess.run(
                [sys.executable, "-m", "wsmon", *command, str(path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "Traceback" not in proc.stderr, proc.stderr
            assert proc.returncode in (0, 1, 2), proc.stderr
            errors = [line for line in proc.stderr.splitlines() if line.startswith("wsmon: error: ")]
            if proc.returncode == 2:
                assert errors == proc.stderr.splitlines() and len(errors) == 1, proc.stderr
            else:
                assert not errors
                assert all(line.startswith("wsmon: warning: ") for line in proc.stderr.splitlines())


def test_a_flipped_bit_in_a_table_definition_is_an_error_not_an_empty_recording() -> None:
    data = bytearray(original())
    at = data.index(b"id INTEGER PRIMARY KEY")
    data[at + 3] ^= 1  # "INTEGER" becomes "HNTEGER": ids turn into nulls and every batch vanishes
    with damaged(bytes(data)) as path:
        assert read_everything(path) == "error"
        with pytest.raises(RecordingError, match="definition of its batches table"):
            RecordingReader(path)
