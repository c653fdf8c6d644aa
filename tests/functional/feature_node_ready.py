"""feature_node_ready: a node that cannot do its job says so (issue 11, items 3 and 6).

One validator started the way the README says (`ccoin node start`), its p2p port held by
this test: `node start` refuses to start it, in one line; outbound-only, it runs, and is
ready (`GET /api/v1/ready`, `ccoin node status`); with its state service frozen (SIGSTOP)
it is not ready, naming state, within the check's timeout, and ready again once thawed;
told to listen after all, its p2p cannot bind, goes FATAL, and `node start` exits 1 with
one line naming p2p and the address in use."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from tests.framework.node import TestNode
from tests.framework.util import ccoin, log_step, wait_until

STATE_TIMEOUT_S = 3  # the ready route asks state once, with the health check's timeout


def ready(node: TestNode) -> tuple[int, dict[str, Any]]:
    r = node.http.get("/api/v1/ready")
    return r.status_code, r.json()


def ready_body(node: TestNode) -> dict[str, Any] | None:
    code, body = ready(node)
    return body if code == 200 else None


def status_lines(node: TestNode) -> list[str]:
    return ccoin("node", "status", "--data", str(node.base_path)).stdout.splitlines()


def ready_lines(node: TestNode) -> list[str] | None:
    """`ccoin node status` once every service is RUNNING (up supervisord's startsecs, which
    may be after the API answered) and the node ready."""
    lines = status_lines(node)
    running = all(line.split()[1] == "RUNNING" for line in lines[:-1])
    return lines if running and lines[-1] == "readiness: ready" else None


def test_a_node_that_cannot_do_its_job_says_so(short_tmp: Path) -> None:
    node = TestNode.create(short_tmp / "n", interval_ms=500)
    port = node.enable_p2p()
    with socket.socket() as taken, node:
        taken.bind(("127.0.0.1", port))
        taken.listen()

        log_step(f"node start with p2p port {port} taken: refused at once, in one line")
        t0 = time.monotonic()
        refused = ccoin("node", "start", "--config", str(node.config_path), "--type",
                        "validator", check=False, timeout=60)
        assert refused.returncode == 1 and time.monotonic() - t0 < 15
        assert refused.stderr.strip() == (
            f"error: p2p cannot listen on 127.0.0.1:{port}: Address already in use (free the "
            f"port, pick another with --p2p-port or p2p.port, or set p2p.outbound_only to "
            f"only dial out)"), refused.stderr

        log_step("outbound only: it runs, and is ready once its head advances")
        node.edit_config(p2p={"outbound_only": True})
        node.start_supervised("validator")
        assert node.supervised_status()["p2p"]["state"] in ("STARTING", "RUNNING")
        body = wait_until(lambda: ready_body(node), timeout=30, what="the node to be ready")
        assert body["checks"]["p2p"]["detail"].startswith("outbound only")
        assert body["checks"]["miner"]["status"] == "ok"
        lines = wait_until(lambda: ready_lines(node), timeout=15,
                           what="`ccoin node status` to say ready")
        assert [line.split()[:2] for line in lines[:-1]] == [
            ["state", "RUNNING"], ["api", "RUNNING"], ["p2p", "RUNNING"], ["miner", "RUNNING"]]

        log_step("state frozen (SIGSTOP): not ready, naming state, within its timeout")
        state = node.supervised_status()["state"]["pid"]
        os.kill(state, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            code, body = ready(node)
            assert code == 503 and time.monotonic() - t0 < STATE_TIMEOUT_S + 3
            assert body["ready"] is False
            assert body["reasons"][0].startswith("state: state did not answer"), body
            last = status_lines(node)[-1]
            assert last.startswith("readiness: not ready: state: state did not answer"), last
        finally:
            os.kill(state, signal.SIGCONT)
        wait_until(lambda: ready(node)[0] == 200, timeout=30, what="ready again once thawed")

        log_step("told to listen after all, its port still taken: p2p goes FATAL, and "
                 "`node start` exits 1 naming it")
        node.edit_config(p2p={"outbound_only": False})
        t0 = time.monotonic()
        restart = ccoin("node", "restart", "p2p", "--data", str(node.base_path), check=False)
        assert restart.returncode == 1 and "p2p failed to start" in restart.stderr
        assert node.supervisor is not None
        assert node.supervisor.wait(30) == 1
        assert time.monotonic() - t0 < 20
        last = node.start_log.read_text().strip().splitlines()[-1]
        assert last == (
            f"error: p2p failed, so the node stopped: cannot listen on tcp://127.0.0.1:{port}: "
            f"Address already in use (free the port, change p2p.port, or set "
            f"p2p.outbound_only to only dial out) (log: {node.log_path('p2p')})"), last
