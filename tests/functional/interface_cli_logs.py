"""interface_cli_logs: `ccoin node logs` as a process: `-f` follows every file (one that
appears later, one truncated) and exits 0 on Ctrl-C; and against a real node (state, miner,
api processes): an operator's request traced by its X-Request-ID across the api's and the
miner's logs. (The parts, and the command in process: tests/unit/tools/cli/test_logs.py.)"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.framework.logfiles import Lines, append, make_node_dir, messages, rec, write
from tests.framework.node import TestNode
from tests.framework.util import ROOT, ccoin, ccoin_argv, wait_until


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    return make_node_dir(tmp_path)


def test_command_follow(node_dir: Path) -> None:
    """-f prints the tail, then the new lines of every file (one that appears later, one
    truncated); Ctrl-C exits 0 without a word."""
    logs = node_dir / "logs"
    proc = subprocess.Popen(ccoin_argv("node", "logs", "--data", str(node_dir), "-f", "-n", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out = Lines(proc)
    try:
        seen = [out.next()]  # the tail: following has begun
        write(logs / "p2p.log", [rec(200.0, "p2p", "p200")])
        append(logs / "miner.log", [rec(201.0, "miner", "m201")])
        seen += [out.next(), out.next()]
        write(logs / "state.log", [rec(202.0, "state", "s202 after truncation")])
        seen.append(out.next())
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    assert code == 0 and proc.stderr is not None and proc.stderr.read() == ""
    assert messages("\n".join(seen)) == ["exited: api (exit status 1; not expected)", "p200",
                                         "m201", "s202 after truncation"]


# --- end to end: a real node ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("logs"), interval_ms=400) as n:
        yield n.start("state", "miner", "api")


def test_request_id_traced_across_api_and_miner(node: TestNode) -> None:
    """An operator's action is one line in the gateway's log (even when it succeeds) and
    one in the miner's, both with the request's id."""
    try:
        r = node.http.post("/api/v1/mining/stop", headers={"X-Request-ID": "trace-logs-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "trace-logs-1", r.text
    finally:
        node.http.post("/api/v1/mining/start")
    config = str(node.chain.config_path)

    def traced() -> list[str] | None:
        out = ccoin("node", "logs", "--config", config, "--request-id", "trace-logs-1",
                    timeout=20).stdout
        lines = out.splitlines()
        api = [x for x in lines if re.search(r" api +INFO +POST /api/v1/mining/stop 200 ", x)]
        miner = [x for x in lines if re.search(r" miner +INFO +mining stopped ", x)]
        return lines if api and miner else None

    lines = wait_until(traced, timeout=10, interval=0.3,
                       what="the api's and the miner's lines of trace-logs-1")
    assert all("request_id=trace-logs-1" in line for line in lines), lines
    print("\n".join(lines))


def test_follow_prints_new_lines_and_ctrl_c_exits_zero(node: TestNode) -> None:
    proc = subprocess.Popen(
        ccoin_argv("node", "logs", "--config", str(node.chain.config_path), "-f",
                   "-n", "3", "--grep", "head ", "state"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out = Lines(proc)
    try:
        seen = [out.next()]  # the tail is out: following has begun
        started_at = node.client.status().height
        while True:
            seen.append(out.next())
            m = re.search(r" state +INFO +head (\d+) ", seen[-1])
            if m and int(m[1]) > started_at:  # written after the command started
                break
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    assert code == 0 and proc.stderr is not None and proc.stderr.read() == ""
    print("\n".join(seen))
