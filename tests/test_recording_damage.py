"""Reading damaged and odd recordings through the real CLI: one clear line or a partial read that says
what was lost; never a traceback, a hang or a runaway allocation."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from helpers import run_wsmon, write_recording
from test_recording import sample_events

from wsmon.core.reducer import Reducer
from wsmon.store import RecordingWriter, new_header

pytestmark = pytest.mark.timeout(120)


def assert_clean_outcome(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1, 2), proc.stderr
    if proc.returncode == 2:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("wsmon: error: ")]
        assert len(errors) == 1, proc.stderr


@pytest.fixture(scope="module")
def big_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("big") / "big.wsmon"
    write_recording(path, sample_events(30_000), batch=500, keyframe_every=5_000)
    return path, 30_000


@pytest.mark.parametrize("kib", [7, 8, 11, 15])
def test_a_recording_cut_at_7_to_15_kib_is_a_clear_error_or_a_partial_read(
    big_recording: tuple[Path, int], tmp_path: Path, kib: int
) -> None:
    # Cut there, the batch index's first page is gone: the table walk that replaces it failed on
    # its very first row, outside its try, with an uncaught sqlite3.DatabaseError.
    path, _ = big_recording
    cut = tmp_path / f"cut{kib}.wsmon"
    cut.write_bytes(path.read_bytes()[: kib * 1024])
    for command in (["report"], ["replay", "--headless"], ["export", "--jsonl"]):
        proc = run_wsmon(*command, str(cut))
        assert_clean_outcome(proc)
        if proc.returncode != 2:
            assert "wsmon: warning: " in proc.stderr and "damaged or truncated" in proc.stderr


@pytest.mark.parametrize("command", [["report"], ["replay", "--headless"], ["export", "--jsonl"]])
def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "run.wsmon"
    os.mkfifo(fifo)
    proc = run_wsmon(*command, str(fifo), timeout=30)  # it hung for ever before
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"wsmon: error: {fifo}: not a regular file (a pipe, device or socket), not a recording"
    )


def test_a_batch_claiming_hundreds_of_megabytes_is_skipped_without_allocating_them(
    big_recording: tuple[Path, int], tmp_path: Path
) -> None:
    path, total = big_recording
    crafted = tmp_path / "crafted.wsmon"
    shutil.copy(path, crafted)
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\x00" * (552 << 20))
    assert len(bomb) < 200_000
    with sqlite3.connect(crafted) as db:
        first_seq, count = db.execute("SELECT first_seq, count FROM batches WHERE id = 3").fetchone()
        db.execute("UPDATE batches SET data = ? WHERE id = 3", (bomb,))
    db.close()
    out = tmp_path / "out.jsonl"
    # The export runs with its address space capped below what the bomb expands to, so allocating it
    # fails (MemoryError) rather than being measured after the fact.
    cap = 400 << 20
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}));"
            "from wsmon.cli import main; main()",
            "export",
            "--jsonl",
            str(crafted),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    stderr = proc.stderr
    assert proc.returncode == 0, stderr
    assert f"events {first_seq}-{first_seq + count - 1} (batch 3) are unreadable" in stderr
    assert "more than the 67,108,864 allowed" in stderr
    assert len(out.read_text().splitlines()) == 1 + total - count


def test_a_crashed_recording_copied_without_its_wal_names_the_missing_file(tmp_path: Path) -> None:
    # A writer in another process flushes (commits) and is then killed: its events are in the -wal.
    path = tmp_path / "crashed.wsmon"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; sys.path.insert(0, 'tests');"
            "from test_recording import sample_events;"
            "from wsmon.core.reducer import Reducer;"
            "from wsmon.store import RecordingWriter, new_header;"
            f"w = RecordingWriter({str(path)!r}, new_header('t')); r = Reducer()\n"
            "for e in sample_events(500): r.apply(e); w.append(e)\n"
            "w.flush(r.state); os.kill(os.getpid(), 9)",
        ],
        cwd=Path(__file__).parent.parent,
    )
    child.wait(timeout=60)
    assert (tmp_path / "crashed.wsmon-wal").stat().st_size > 0
    copy_dir = tmp_path / "copied"
    copy_dir.mkdir()
    shutil.copy(path, copy_dir / "crashed.wsmon")  # the -wal left behind, as people do
    proc = run_wsmon("report", str(copy_dir / "crashed.wsmon"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"wsmon: error: {copy_dir / 'crashed.wsmon'}: crashed.wsmon-wal is missing: this recording was not"
        " closed and its events are in that file (copy FILE-wal and FILE-shm along with FILE)"
    )
    # With its -wal beside it, the same file reads in full.
    proc = run_wsmon("report", str(path), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["session"]["events"] == 500


def _flip_blob_of_batch(path: Path, batch_id: int) -> None:
    with sqlite3.connect(path) as db:
        (blob,) = db.execute("SELECT data FROM batches WHERE id = ?", (batch_id,)).fetchone()
    db.close()
    data = bytearray(path.read_bytes())
    snippet = blob[len(blob) // 2 : len(blob) // 2 + 16]
    at = data.find(snippet)
    assert at > 0 and data.find(snippet, at + 1) == -1
    data[at : at + 16] = bytes(b ^ 0x55 for b in snippet)
    path.write_bytes(bytes(data))


def test_report_says_how_many_batches_could_not_be_read(tmp_path: Path) -> None:
    path = tmp_path / "damaged.wsmon"
    write_recording(path, sample_events(3_000), batch=200, keyframe_every=1_000)
    for batch_id in (3, 9):
        _flip_blob_of_batch(path, batch_id)
    # The final keyframe is intact, so the report's figures are whole; it used to say nothing at all.
    proc = run_wsmon("report", str(path))
    assert_clean_outcome(proc)
    line = f"unreadable batches: 2 of 15 batches in {path} could not be read"
    assert f"wsmon: warning: {line}" in proc.stderr
    assert f"WARNING: {line}" in proc.stdout
    proc = run_wsmon("replay", "--headless", str(path))
    assert f"wsmon: warning: {line}" in proc.stderr and f"WARNING: {line}" in proc.stdout
    proc = run_wsmon("report", str(path), "--format", "json")
    warnings = json.loads(proc.stdout)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith(line)
    intact = tmp_path / "intact.wsmon"
    write_recording(intact, sample_events(3_000), batch=200, keyframe_every=1_000)
    proc = run_wsmon("report", str(intact), "--format", "json")
    assert json.loads(proc.stdout)["warnings"] == [] and "warning" not in proc.stderr


def test_batches_are_written_with_a_checksum(tmp_path: Path) -> None:
    # Without one, a flip in zstd's literals decodes to different events, silently: no warning at all.
    path = tmp_path / "one.wsmon"
    events = sample_events(200)
    header = new_header("t")
    reducer = Reducer()
    with RecordingWriter(path, header) as writer:
        for event in events:
            reducer.apply(event)
            writer.append(event)
        writer.close(reducer.state)
    with sqlite3.connect(path) as db:
        (blob,) = db.execute("SELECT data FROM batches").fetchone()
    db.close()
    assert zstandard.get_frame_parameters(blob).has_checksum
