"""The fleet end to end, over real sockets and real processes: a private Redis, two demo servers each
watched by its own `wsmon attach --tap … --publish … --node …` (two nodes), a load generator on each
that keeps its own tally, and one `wsmon fleet --headless --record` reading both.

One run, then its recording is read: each node's connections and close codes equal its load
generator's tally (the report's per-node figures); a Redis restart in the middle of the load loses
nothing the agents buffered meanwhile; an agent killed with SIGKILL shows its node DOWN within two
heartbeats. Serial (tests/conftest.py): the heartbeat check measures time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import clean_env, free_port, run_wsmon, wait_until
from services import PrivateRedis, port_open, private_redis

from wsmon.core import events as ev
from wsmon.core.fleet import LOST_ENTRIES, LOST_EVENTS, REGISTRY
from wsmon.store.reader import RecordingReader

pytestmark = [pytest.mark.slow, pytest.mark.private_instance]

NODES = ("node-a", "node-b")
HEARTBEAT_S = 1.0  # the publisher's (outputs/publish.py HEARTBEAT_S)
# How late the reader may see a missed heartbeat: it judges after each read, which blocks 100 ms.
READER_SLACK_S = 0.5
TALLY_PREFIX = "wsmon loadgen tally: "


@dataclass
class Run:
    recording: Path
    tallies: dict[str, dict[str, Any]]
    killed_at: float  # wall time node-b's agent was killed
    fleet_out: str


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _fleet_reading(client: redis.Redis) -> bool:
    return any(c.get("name") == "wsmon-fleet" for c in client.client_list())


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("fleet")
    env = clean_env(work)
    wsmon = [sys.executable, "-m", "wsmon"]
    procs: list[subprocess.Popen[bytes]] = []
    # Persistent, so a restart keeps what the agents had sent; what they buffer meanwhile is theirs to keep.
    with private_redis("--appendonly", "yes", "--appendfsync", "always") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            recording = work / "fleet.wsmon"
            fleet = _spawn(
                [*wsmon, "fleet", server.url, "--headless", "--record", str(recording)],
                env,
                work / "fleet.out",
            )
            procs.append(fleet)
            wait_until(lambda: _fleet_reading(client), 30, "wsmon fleet to connect")
            agents: dict[str, subprocess.Popen[bytes]] = {}
            taps: dict[str, int] = {}
            for node in NODES:
                port, tap = free_port(), free_port()
                procs.append(
                    _spawn(
                        [sys.executable, "-m", "wsmon.demo.server", "--port", str(port)],
                        env,
                        work / f"{node}.server",
                    )
                )
                wait_until(lambda port=port: port_open("127.0.0.1", port), 30, f"{node}'s demo server")
                agents[node] = _spawn(
                    [
                        *wsmon,
                        "attach",
                        "--tap",
                        f"127.0.0.1:{tap}=ws://127.0.0.1:{port}",
                        "--publish",
                        server.url,
                        "--node",
                        node,
                        "--headless",
                    ],
                    env,
                    work / f"{node}.agent",
                )
                procs.append(agents[node])
                taps[node] = tap
            for node in NODES:
                wait_until(lambda node=node: port_open("127.0.0.1", taps[node]), 30, f"{node}'s tap")
            wait_until(lambda: set(client.smembers(REGISTRY)) >= set(NODES), 30, "both nodes to register")
            loads = {
                node: subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "wsmon.demo.loadgen",
                        "--url",
                        f"ws://127.0.0.1:{taps[node]}/",
                        "--clients",
                        "8",
                        "--duration",
                        "7",
                        "--seed",
                        str(number),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                for number, node in enumerate(NODES, 1)
            }
            # Redis goes away in the middle of the load and comes back: the agents buffer meanwhile.
            time.sleep(2.5)
            restart(server)
            tallies = {}
            for node, load in loads.items():
                out, _ = load.communicate(timeout=60)
                line = next(line for line in out.splitlines() if line.startswith(TALLY_PREFIX))
                tallies[node] = json.loads(line.removeprefix(TALLY_PREFIX))
            time.sleep(2.0)  # the last closes through the taps, into the streams, to the fleet
            killed_at = time.time()
            agents["node-b"].kill()
            time.sleep(2 * HEARTBEAT_S + 1.5)
            _stop(agents["node-a"])
            time.sleep(1.0)
            _stop(fleet)
            yield Run(recording, tallies, killed_at, (work / "fleet.out").read_text())
        finally:
            for proc in procs:
                _stop(proc, signal.SIGKILL)
            client.close()


def restart(server: PrivateRedis) -> None:
    server.kill()
    time.sleep(2.0)
    server.start()


def _report(recording: Path) -> dict[str, Any]:
    result = run_wsmon("report", str(recording), "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_each_nodes_connections_and_close_codes_equal_its_load_generators_tally(fleet_run: Run) -> None:
    report = _report(fleet_run.recording)
    nodes = {node["node"]: node["report"] for node in report["nodes"]}
    assert set(nodes) == set(NODES)
    for name in NODES:
        tally = fleet_run.tallies[name]
        node = nodes[name]
        assert tally["opened"] > 8, tally  # the load and its faults really ran
        assert node["connections"]["opened_total"] == tally["opened"], name
        assert node["connections"]["connect_failed"] == tally["refused"], name
        codes = {str(row["code"]): row["count"] for row in node["close_codes"]["codes"]}
        assert codes == tally["closes"], name
    combined = report["connections"]["opened_total"]
    assert combined == sum(t["opened"] for t in fleet_run.tallies.values())


def test_a_redis_restart_loses_nothing_the_agents_buffered(fleet_run: Run) -> None:
    events = list(RecordingReader(fleet_run.recording).iter_events())
    fleet_downs = [e for e in events if isinstance(e, ev.TargetDown) and e.target == "fleet"]
    assert fleet_downs, "the fleet never saw Redis go away: the restart did not happen during the run"
    for node in NODES:
        buffering = [
            e
            for e in events
            if isinstance(e, ev.LogLine) and e.source == f"{node}/wsmon" and "buffering" in e.text
        ]
        assert buffering, f"{node}'s agent never had to buffer"
    losses = [
        e
        for e in events
        if isinstance(e, ev.LogLine) and (LOST_EVENTS in e.fields or LOST_ENTRIES in e.fields)
    ]
    assert losses == []
    # And the counts (the test above) are exact: nothing buffered went missing or came twice.


def test_a_killed_agent_shows_its_node_down_within_two_heartbeats(fleet_run: Run) -> None:
    events = list(RecordingReader(fleet_run.recording).iter_events())
    downs = [e for e in events if isinstance(e, ev.TargetDown) and e.target == "node-b"]
    assert [d.kind for d in downs] == ["heartbeat"], downs
    late = downs[0].wall - fleet_run.killed_at
    assert 0 < late <= 2 * HEARTBEAT_S + READER_SLACK_S, f"node-b shown down {late:.2f} s after the kill"
    # node-a's agent stopped gracefully: its goodbye shows it down at once, as ended, not as silent.
    ended = [e for e in events if isinstance(e, ev.TargetDown) and e.target == "node-a"]
    assert [d.kind for d in ended] == ["ended"]


def test_the_fleet_recording_replays_with_its_nodes(fleet_run: Run) -> None:
    reader = RecordingReader(fleet_run.recording)
    state = reader.state_at_seq(reader.event_count)
    assert {name: t.kind for name, t in state.targets.items() if t.kind == "node"} == dict.fromkeys(
        NODES, "node"
    )
    nodes = {conn.node for conn in state.connections.values()}
    assert nodes == set(NODES)
    assert all(conn.id.startswith(conn.node + "/") for conn in state.connections.values())


def test_the_report_text_judges_each_node(fleet_run: Run) -> None:
    result = run_wsmon("report", str(fleet_run.recording))
    # `wsmon report` of the recording, and the headless fleet's own report when it stopped.
    for text in (result.stdout, fleet_run.fleet_out):
        assert "Nodes: 2 nodes" in text
        for node in NODES:
            assert any(line.split()[:1] == [node] for line in text.splitlines()), node
