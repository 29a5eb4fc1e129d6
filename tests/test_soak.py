"""The 60 s fault soak (bench/soak.py --ci): wsmon attached through its tap to a WebSocket echo server,
a private Redis and a private PostgreSQL while each is killed -9 and restarted, and clients vanish
without close frames. About 70 s; it runs in CI (`.ci/run`) like every other test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from services import _pg_bindir, unavailable

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "bench" / "soak.py"


def _require_programs() -> None:
    """Skipped locally without them; a failure in CI (CI=true), never a silent skip there."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed: the soak kills and restarts a private one")
    bindir = _pg_bindir()
    if bindir is None or not all((bindir / name).exists() for name in ("initdb", "postgres", "pg_isready")):
        unavailable("initdb, postgres or pg_isready not found (PATH, /usr/lib/postgresql/*/bin)")


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> dict:
    _require_programs()
    out = tmp_path_factory.mktemp("soak") / "soak.json"
    run = subprocess.run(
        [sys.executable, str(SOAK), "--ci", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
    )
    print(run.stdout, run.stderr, sep="\n")  # the figures, shown when a check fails
    assert out.exists(), f"the soak wrote no result (exit {run.returncode}):\n{run.stderr[-3000:]}"
    result = json.loads(out.read_text())
    result["soak_exit"] = run.returncode
    return result


@pytest.mark.slow
@pytest.mark.private_instance
@pytest.mark.timeout(180)
def test_soak_wsmon_survives_and_sees_every_fault(soak: dict) -> None:
    # wsmon never exits early, stops by itself at --duration with its own exit code, no traceback,
    # and none of its sources raised (the session would have restarted it and gone on).
    assert not soak["exited_early"]
    assert soak["exit_code"] in (0, 1), soak["stderr_tail"]
    assert not soak["traceback"], soak["stderr_tail"]
    assert soak["source_failures"] == []

    # Several kills of each; every one DOWN and UP within two intervals, from each of its watchers
    # (the server: wsmon's probe, its tap and the process watcher).
    assert all(soak["injected_by_target"].get(t, 0) >= 2 for t in ("server", "redis", "postgres"))
    late = [row for row in soak["outage_rows"] if not row["ok"]]
    assert late == []
    injected = soak["injected_by_target"]
    assert len(soak["outage_rows"]) == 3 * injected["server"] + injected["redis"] + injected["postgres"]

    # Every client dropped without a close frame is in the recording as the client's 1006.
    assert len(soak["drops"]) >= 5
    assert soak["drops_seen"] == len(soak["drops"]), soak["drops_missing"]


@pytest.mark.slow
@pytest.mark.private_instance
@pytest.mark.timeout(180)
def test_soak_tap_alters_no_byte(soak: dict) -> None:
    clients = soak["clients"]
    # Real load went through: 1,000 msg/s asked; on a shared 2-core machine the soak's own clients
    # reached 530-960 msg/s while the server was up (docs/performance.md). A floor, not the goal.
    assert soak["msgs_per_s_server_up"] >= 400
    assert clients["compared_connections"] >= 100
    assert clients["compared_bytes"] > 1_000_000
    assert clients["altered_bytes"] == clients["altered_messages"] == 0
    assert clients["digest_mismatches"] == clients["lost_echoes"] == 0
    # Connections cut were cut by a fault the soak made, never by the tap on its own; the recording
    # shows the kills' cuts as the server's 1006s.
    assert clients["cut_by_server_kill"] > 0 and soak["server_cuts_recorded"] > 0
    assert clients["cut_unexplained"] == 0, clients["unexplained"]


@pytest.mark.slow
@pytest.mark.private_instance
@pytest.mark.timeout(180)
def test_soak_rss_bounded_after_warmup(soak: dict) -> None:
    # 60 s ends before wsmon's State has filled (about 80 s), so this bounds the growth from the
    # warm-up to the end; flatness after the fill is the 300 s bench's verdict (docs/performance.md).
    rss = soak["rss"]
    assert rss["judged_from"] == "start"
    assert rss["end"] <= rss["start"] + rss["allowed_growth"], rss["series"]
    assert soak["passed"] and soak["soak_exit"] == 0
