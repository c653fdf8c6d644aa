"""feature_restarts: a restart of any one service never strands the chain (issue 11), with 2
authorities and with 3.

Two authorities, each needed for every other block (Clique's recency rule with n = 2): if
any service of either validator comes back without learning the head, or without telling
its peer, the chain stops for good. So every service of each validator is killed with
SIGKILL in turn (supervisord restarts it), and after every kill both nodes must advance;
then p2p is frozen with SIGSTOP and thawed with SIGCONT."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from tests.framework.network import TestNetwork, free_base_port
from tests.framework.node import TestNode
from tests.framework.rest import RestApi
from tests.framework.util import log_step, wait_until

INTERVAL_MS = 300
ADVANCE = 3  # blocks both nodes must gain after each fault
TIMEOUT = 45  # supervisord's restart (startsecs 1) plus a few intervals, on a loaded machine
NET_ERRORS = (httpx.HTTPError, OSError, KeyError, ValueError)


@pytest.fixture(scope="module")
def pair() -> Iterator[TestNetwork]:
    with TestNetwork.up("ccrst-", "--nodes", "2", "--validators", "2", "--base-port",
                        str(free_base_port(2)), "--interval-ms", str(INTERVAL_MS)) as net:
        yield net


def _restarted(node: TestNode, service: str, old_pid: int) -> bool:
    return node.supervised_status()[service]["pid"] not in (0, old_pid)


def _heights(apis: list[RestApi]) -> list[int]:
    return [a.height() for a in apis]


def _both_advance(apis: list[RestApi], what: str) -> None:
    """Every node (each of `apis`) gains `ADVANCE` blocks."""
    start = wait_until(lambda: _heights(apis), timeout=TIMEOUT, what=f"both APIs ({what})",
                       ignore=NET_ERRORS)
    target = max(start) + ADVANCE
    wait_until(lambda: min(_heights(apis)) >= target, timeout=TIMEOUT,
               what=f"both nodes past height {target} after {what}", interval=0.2,
               ignore=NET_ERRORS)


@pytest.mark.parametrize("service", ["state", "p2p", "miner", "api"])
def test_a_killed_service_of_either_validator_never_strands_the_chain(
        pair: TestNetwork, service: str) -> None:
    apis = pair.apis
    for index in (1, 2, 1, 2):
        node = pair.node(index)
        pid = node.supervised_status()[service]["pid"]
        log_step(f"kill -9 {service} of node{index} (pid {pid})")
        os.kill(pid, signal.SIGKILL)
        restarted = partial(_restarted, node, service, pid)
        wait_until(restarted, timeout=TIMEOUT,
                   what=f"supervisord to restart node{index}'s {service}")
        _both_advance(apis, f"node{index}'s {service} was killed")


def test_a_frozen_p2p_thaws_into_a_moving_chain(pair: TestNetwork) -> None:
    apis = pair.apis
    for index in (1, 2):
        node = pair.node(index)
        pid = node.supervised_status()["p2p"]["pid"]
        log_step(f"SIGSTOP p2p of node{index} until its own node sees it silent")
        os.kill(pid, signal.SIGSTOP)

        def p2p_silent() -> bool:  # its gateway's readiness: "p2p did not answer"
            r = node.http.get("/api/v1/ready")  # noqa: B023 - used at once
            return bool(r.json()["checks"]["p2p"]["status"] == "fail")

        try:
            wait_until(p2p_silent, timeout=TIMEOUT, what=f"node{index} to see its p2p frozen",
                       ignore=NET_ERRORS)
        finally:
            os.kill(pid, signal.SIGCONT)
        _both_advance(apis, f"node{index}'s p2p was frozen and thawed")


def test_with_three_authorities_a_killed_service_never_strands_the_chain() -> None:
    """With 3 authorities one may be missing (⌊3/2⌋+1 = 2 consecutive blocks apart), yet a
    restart must not leave the restarted node behind: after each kill both the restarted
    node and the others advance."""
    with TestNetwork.up("ccrs3-", "--nodes", "3", "--validators", "3", "--base-port",
                        str(free_base_port(3)), "--interval-ms", str(INTERVAL_MS)) as net:
        apis = net.apis
        node = net.node(1)
        for service in ("state", "p2p", "miner", "api"):
            pid = node.supervised_status()[service]["pid"]
            log_step(f"kill -9 {service} of node1 (pid {pid})")
            os.kill(pid, signal.SIGKILL)
            wait_until(partial(_restarted, node, service, pid), timeout=TIMEOUT,
                       what=f"supervisord to restart node1's {service}")
            _both_advance(apis, f"node1's {service} was killed")
