"""Recordings: round trip, file mode, reading while written, kill -9, damaged and foreign files."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgspec
import pytest
import zstandard
from helpers import write_recording

from wsmon.core import events as ev
from wsmon.core.events import from_dict
from wsmon.core.reducer import fold
from wsmon.store import (
    FORMAT_VERSION,
    RecordedTarget,
    RecordingError,
    RecordingReader,
    RecordingWriter,
    export_jsonl,
    new_header,
)
from wsmon.store.format import BatchDecoder

WALL0 = 1_760_000_000.0
MONO0 = 5_000.0


def sample_events(count: int, start: int = 0) -> list[ev.Event]:
    """A varied, deterministic stream: every event type the reducer handles, times 10 ms apart."""
    out: list[ev.Event] = []
    for i in range(start, start + count):
        t = {"wall": WALL0 + i * 0.01, "mono": MONO0 + i * 0.01}
        conn = f"c{i // 7 % 40}"
        match i % 13:
            case 0:
                out.append(
                    ev.ConnectionOpened(**t, conn=conn, peer="10.0.0.1:5000", path="/ws", handshake_ms=3.5)
                )
            case 1 | 2 | 3:
                out.append(
                    ev.Traffic(**t, conn=conn, msgs_in=i % 5, msgs_out=i % 3, bytes_in=i % 700, bytes_out=9)
                )
            case 4 | 5:
                out.append(ev.LatencySample(**t, kind="delivery", ms=1.0 + (i % 17) * 0.37, target="ws"))
            case 6:
                out.append(ev.LatencySample(**t, kind="ping", ms=0.2 + (i % 5) * 0.1, target="ws"))
            case 7:
                out.append(
                    ev.LogLine(**t, level="info" if i % 2 else "warn", text=f"line {i}", source="server")
                )
            case 8:
                out.append(ev.ConnectionClosed(**t, conn=conn, code=1000 + i % 12, closed_by="client"))
            case 9:
                out.append(
                    ev.ProcessSample(
                        **t, target="server", pid=42, cpu_percent=float(i % 90), rss_bytes=10_000_000 + i
                    )
                )
            case 10:
                out.append(
                    ev.DeliveryFailed(**t, message_id=f"msg_{i}", conn=conn, reason="Connection not open")
                )
            case 11:
                out.append(
                    ev.TargetDown(**t, target="redis", error="refused")
                    if i % 2
                    else ev.TargetUp(**t, target="redis")
                )
            case _:
                out.append(ev.AlertRaised(**t, figure="cpu_percent", level="warn", value=45.0, limit=50.0))
    return out


def test_round_trip_keeps_every_event_the_header_and_the_state(tmp_path: Path) -> None:
    path = tmp_path / "run.wsmon"
    events = sample_events(1_234)
    live = write_recording(path, events)

    with RecordingReader(path) as reader:
        assert reader.warnings == []
        assert reader.event_count == len(events)
        assert list(reader.iter_events()) == events
        assert list(reader.iter_events(1_000, 1_010)) == events[1_000:1_010]
        assert reader.header.format_version == FORMAT_VERSION
        assert reader.header.command == "test"
        assert reader.header.targets == [RecordedTarget(name="ws", kind="websocket", address="ws://h/")]
        assert len(reader.header.limits) > 0
        assert reader.first_mono == events[0].mono
        assert reader.last_mono == events[-1].mono
        assert reader.first_wall == events[0].wall
        assert reader.state_at_seq(len(events)) == live.state == fold(events)


def test_recording_and_its_wal_are_private_to_the_user(tmp_path: Path) -> None:
    path = tmp_path / "private.wsmon"
    writer = RecordingWriter(path, new_header())
    writer.extend(sample_events(50))
    writer.flush()
    try:
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert name.stat().st_mode & 0o777 == 0o600, name
    finally:
        writer.close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_existing_recording_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "once.wsmon"
    write_recording(path, sample_events(10))
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(path, new_header())
    write_recording_over = RecordingWriter(path, new_header("second"), overwrite=True)
    write_recording_over.close()
    with RecordingReader(path) as reader:
        assert reader.header.command == "second"
        assert reader.event_count == 0


def test_unflushed_events_are_not_visible_and_flushed_ones_are(tmp_path: Path) -> None:
    path = tmp_path / "live.wsmon"
    writer = RecordingWriter(path, new_header())
    events = sample_events(300)
    writer.extend(events[:200])
    writer.flush()
    writer.extend(events[200:])
    reader = RecordingReader(path)
    assert reader.event_count == 200
    writer.flush()
    assert reader.refresh() == 300
    assert list(reader.iter_events()) == events
    reader.close()
    writer.close()


_CHILD_PRELUDE = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{root!r}, {tests!r}]
    from test_recording import sample_events
    from wsmon.store import RecordingWriter, new_header
    writer = RecordingWriter({path!r}, new_header("child"), flush_interval_s=0.2)
    """
)


def _child(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    root = str(Path(__file__).resolve().parents[1])
    tests = str(Path(__file__).resolve().parent)
    script = _CHILD_PRELUDE.format(
        root=root, tests=tests, path=str(tmp_path / "child.wsmon")
    ) + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )


@pytest.mark.slow
def test_a_reader_follows_a_writer_in_another_process(tmp_path: Path) -> None:
    child = _child(
        tmp_path,
        """
        written = 0
        for round_ in range(5):
            writer.extend(sample_events(1000, written))
            writer.flush()
            written += 1000
            print(written, flush=True)
            sys.stdin.readline()  # the test has looked: next round
        """,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        committed = int(child.stdout.readline())
        reader = RecordingReader(tmp_path / "child.wsmon")
        seen = [reader.event_count]
        for _ in range(4):
            child.stdin.write("next\n")
            committed = int(child.stdout.readline())
            assert reader.refresh() == committed
            seen.append(reader.event_count)
        assert seen == [1000, 2000, 3000, 4000, 5000]
        assert list(reader.iter_events()) == sample_events(5000)
        reader.close()
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_kill_9_of_the_writer_loses_at_most_the_last_second(tmp_path: Path) -> None:
    # The child stamps events with the real monotonic clock (system-wide, so comparable with ours)
    # and flushes when due(), as the live session does; it reports each commit.
    child = _child(
        tmp_path,
        """
        import msgspec
        written = 0
        while True:
            now = time.monotonic()
            fresh = sample_events(50, written)
            batch = [msgspec.structs.replace(e, mono=now, wall=time.time()) for e in fresh]
            writer.extend(batch)
            written += len(batch)
            if writer.due(now):
                writer.flush()
                print(writer.events_written, flush=True)
            time.sleep(0.002)
        """,
    )
    assert child.stdout is not None
    try:
        commits = [int(child.stdout.readline()) for _ in range(6)]
    finally:
        child.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        child.wait()
    path = tmp_path / "child.wsmon"
    assert Path(f"{path}-wal").exists(), "kill -9 should leave the WAL behind: that is what is tested"

    with RecordingReader(path) as reader:
        assert reader.warnings == []
        assert reader.event_count >= commits[-1]
        recorded = list(reader.iter_events())
    assert len(recorded) == reader.event_count
    expected = sample_events(len(recorded))
    assert [(type(e), getattr(e, "conn", None)) for e in recorded] == [
        (type(e), getattr(e, "conn", None)) for e in expected
    ]
    assert killed_at - recorded[-1].mono <= 1.0


def _damaged_copy(target: Path, data: bytes) -> Path:
    target.write_bytes(data)
    return target


@pytest.fixture
def closed_recording(tmp_path: Path) -> tuple[Path, list[ev.Event]]:
    path = tmp_path / "good.wsmon"
    events = sample_events(3_000)
    write_recording(path, events, batch=200, keyframe_every=1_000)
    return path, events


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.wsmon"
    path.write_bytes(b"")
    with pytest.raises(RecordingError) as caught:
        RecordingReader(path)
    assert str(caught.value) == f"{path}: not a wsmon recording (empty file)"


def test_missing_file_and_random_bytes_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such file"):
        RecordingReader(tmp_path / "nothing.wsmon")
    noise = tmp_path / "noise.wsmon"
    noise.write_bytes(os.urandom(8192))
    with pytest.raises(RecordingError, match=r"not a wsmon recording \(not an SQLite database\)"):
        RecordingReader(noise)


def test_another_programs_sqlite_database_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(RecordingError, match="not a wsmon recording"):
        RecordingReader(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("format_version", "9", f"recording format 9 is newer than this wsmon reads ({FORMAT_VERSION})"),
        ("format_version", "0", "recording format 0 is no longer supported"),
    ],
)
def test_wrong_format_version_is_a_clear_error(
    closed_recording: tuple[Path, list[ev.Event]], key: str, value: str, message: str
) -> None:
    path, _ = closed_recording
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    db.close()
    with pytest.raises(RecordingError) as caught:
        RecordingReader(path)
    assert str(caught.value) == f"{path}: {message}"


def test_newer_event_schema_is_a_clear_error(closed_recording: tuple[Path, list[ev.Event]]) -> None:
    path, _ = closed_recording
    with sqlite3.connect(path) as db:
        (text,) = db.execute("SELECT value FROM meta WHERE key = 'header'").fetchone()
        header = json.loads(text)
        header["schema_version"] = 99
        db.execute("UPDATE meta SET value = ? WHERE key = 'header'", (json.dumps(header),))
    db.close()
    with pytest.raises(RecordingError, match="event schema 99 is newer than this wsmon reads"):
        RecordingReader(path)


def test_truncated_files_give_a_clear_error_or_keep_what_is_readable(
    closed_recording: tuple[Path, list[ev.Event]], tmp_path: Path
) -> None:
    path, events = closed_recording
    data = path.read_bytes()
    outcomes = []
    for cut in (10, 99, 100, 4096, len(data) // 3, len(data) // 2, len(data) - 4096, len(data) - 1):
        copy = _damaged_copy(tmp_path / f"cut{cut}.wsmon", data[:cut])
        try:
            reader = RecordingReader(copy)
        except RecordingError as exc:
            message = str(exc)
            assert message.startswith(f"{copy}: ") and "\n" not in message
            outcomes.append("error")
            continue
        kept = list(reader.iter_events())
        # Whatever survives is the original events at their original positions, batch by batch.
        for first_seq, batch in reader.iter_batches():
            assert batch in ([], events[first_seq : first_seq + len(batch)])
        if len(kept) < len(events):
            assert reader.warnings, f"cut at {cut}: events lost without a warning"
        reader.state_at_seq(reader.event_count)  # must not raise: a broken keyframe is skipped
        reader.close()
        outcomes.append("opened, kept all" if len(kept) == len(events) else "opened, kept some")
    print(outcomes)
    assert "error" in outcomes and "opened, kept some" in outcomes


def test_corrupted_batch_is_skipped_with_a_warning_and_the_rest_kept(
    closed_recording: tuple[Path, list[ev.Event]], tmp_path: Path
) -> None:
    path, events = closed_recording
    with sqlite3.connect(path) as db:
        first_seq, count, blob = db.execute(
            "SELECT first_seq, count, data FROM batches ORDER BY id LIMIT 1 OFFSET 4"
        ).fetchone()
    db.close()
    data = bytearray(path.read_bytes())
    # Flip bytes in the middle of the blob, where it sits in the file: a real disk corruption.
    snippet = blob[len(blob) // 2 : len(blob) // 2 + 32]
    at = data.find(snippet)
    assert at > 0 and data.find(snippet, at + 1) == -1
    data[at : at + 32] = bytes(b ^ 0xFF for b in snippet)
    copy = _damaged_copy(tmp_path / "flipped.wsmon", bytes(data))

    with RecordingReader(copy) as reader:
        kept = list(reader.iter_events())
        assert kept == events[:first_seq] + events[first_seq + count :]
        assert len(reader.warnings) == 1
        assert f"events {first_seq}-{first_seq + count - 1}" in reader.warnings[0]
        assert "skipped" in reader.warnings[0]


def test_state_at_seq_equals_a_fold_of_the_first_n_events(tmp_path: Path) -> None:
    path = tmp_path / "keys.wsmon"
    events = sample_events(5_000)
    # Small keyframe spacing: many keyframes, and chains of delta keyframes longer than one.
    write_recording(path, events, batch=97, keyframe_every=300)
    with RecordingReader(path) as reader:
        keyframe_seqs = [row[0] for row in reader._db.execute("SELECT seq FROM keyframes")]
        assert len(keyframe_seqs) > 10
        for n in (0, 1, 2, 96, 97, 98, 299, 300, 301, *keyframe_seqs[::3], 4_321, 4_999, 5_000):
            keyframe = reader.keyframe_at_or_before(n)
            if keyframe is not None:
                assert keyframe.seq <= n
                assert keyframe.state == fold(events[: keyframe.seq])
            assert reader.state_at_seq(n) == fold(events[:n]), n
        assert reader.warnings == []


def test_a_damaged_keyframe_falls_back_to_an_earlier_one(
    closed_recording: tuple[Path, list[ev.Event]],
) -> None:
    path, events = closed_recording
    with sqlite3.connect(path) as db:
        seqs = [row[0] for row in db.execute("SELECT seq FROM keyframes ORDER BY seq")]
        db.execute("UPDATE keyframes SET data = x'00112233' WHERE seq = ?", (seqs[1],))
    db.close()
    with RecordingReader(path) as reader:
        assert reader.state_at_seq(seqs[1] + 5) == fold(events[: seqs[1] + 5])
        assert any(f"keyframe at event {seqs[1]}" in line for line in reader.warnings)


def test_seq_at_time_counts_the_events_up_to_that_time(closed_recording: tuple[Path, list[ev.Event]]) -> None:
    path, events = closed_recording
    with RecordingReader(path) as reader:
        assert reader.seq_at_time(MONO0 - 1) == 0
        assert reader.seq_at_time(MONO0) == 1
        assert reader.seq_at_time(events[1234].mono) == 1235
        assert reader.seq_at_time(events[1234].mono + 0.005) == 1235
        assert reader.seq_at_time(events[-1].mono + 10) == len(events)


def test_export_writes_the_header_then_one_named_event_a_line(
    closed_recording: tuple[Path, list[ev.Event]],
) -> None:
    path, events = closed_recording
    out = io.StringIO()
    with RecordingReader(path) as reader:
        assert export_jsonl(reader, out) == len(events)
    lines = out.getvalue().splitlines()
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["format_version"] == FORMAT_VERSION
    assert header["targets"] == [{"name": "ws", "kind": "websocket", "address": "ws://h/"}]
    assert [from_dict(json.loads(line)) for line in lines[1:]] == events
    assert json.loads(lines[1])["type"] == "conn.open"


def test_a_delivery_sample_recorded_before_it_named_its_connections_still_reads() -> None:
    """Recordings made before LatencySample carried ``conn`` and ``ack_conn`` hold 8-element arrays."""
    old = ["latency", 1.0, 2.0, "delivery", 12.5, "tap", "m-1", False]
    blob = zstandard.ZstdCompressor().compress(msgspec.msgpack.encode([old]))
    (sample,) = BatchDecoder().decode(blob, expected_count=1)
    assert sample == ev.LatencySample(wall=1.0, mono=2.0, kind="delivery", ms=12.5, target="tap", ref="m-1")
    assert isinstance(sample, ev.LatencySample) and (sample.conn, sample.ack_conn) == ("", "")
    state = fold([ev.ConnectionOpened(wall=0.5, mono=1.5, conn="c1"), sample])
    assert state.delivered == 1 and [entry.kind for entry in state.timelines["c1"]] == ["open"]
