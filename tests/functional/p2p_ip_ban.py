"""IP bans: a banned peer's host cannot come back under a fresh node key; loopback is exempt.

`scoring.bannable_ip` decides what an inbound peer's ban adds besides its node id, routing
id and curve key: its source IP address, never a loopback one (every node of one machine
shares loopback); tests/unit/services/p2p/ tests that rule and the ZAP decision in-process.
The end-to-end test needs hosts with addresses of their own, so it uses network namespaces
(tests/framework/netns.py: root only, skipped with the reason otherwise):

    namespace 1: the node's p2p service, listening on every interface of its namespace
                 (its state service runs outside: the bus is ipc://, which namespaces do
                 not scope)
    namespace 2: a hostile scripted peer
                 (`python -m tests.framework.scripted_peer peer --misbehave`)
    namespace 3: an honest scripted peer
    namespace 1 over 127.0.0.1: the same hostile script, which loopback keeps unbanned
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common import messages as m
from common.errors import Refused
from tests.framework import netns
from tests.framework.node import TestNode
from tests.framework.util import ROOT, wait_until

log = logging.getLogger("test_p2p_ip_ban")


def _peer(lab: netns.Lab, ns: int, endpoint: str, status: Any, *flags: str) -> dict[str, Any]:
    """Run `python -m tests.framework.scripted_peer peer` inside namespace `ns`; its JSON
    report."""
    argv = [sys.executable, "-m", "tests.framework.scripted_peer", "peer", endpoint,
            "--network-id", str(status.network_id), "--genesis", status.genesis.hex(), *flags]
    proc = subprocess.run(lab.argv(ns, argv), capture_output=True, text=True, timeout=90,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    log.info("peer in namespace %d -> %s: %s", ns, endpoint, report)
    return report


def test_a_banned_host_cannot_return_under_a_new_node_key(tmp_path: Path) -> None:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"the IP ban test needs network namespaces: {reason}")
    netns.sweep_stale()
    node = TestNode.create(tmp_path / "n1", name="n1", interval_ms=200)
    port = node.enable_p2p(host="0.0.0.0")
    lab = netns.Lab(3)
    try:
        lab.setup()
        with node:
            _banned_host_stays_out(node, lab, port)
    finally:
        lab.teardown()


def _banned_host_stays_out(node: TestNode, lab: netns.Lab, port: int) -> None:
    """The test's steps, on a node whose p2p service listens in namespace 1."""
    try:
        node.start("state")
        node.start("p2p", prefix=lab.argv(1, []))
        status = node.status()

        def p2p_log() -> str:
            return node.log("p2p")

        wait_until(lambda: "p2p ready" in p2p_log(), timeout=30,
                   what="the node's p2p listening")

        log.info("a hostile peer on loopback: banned, but its host is not")
        local = _peer(lab, 1, f"tcp://127.0.0.1:{port}", status, "--misbehave")
        assert local["first_acked"] and local["banned"], local
        assert local["acked"] == 1 and local["ready"] == 1, local

        hostile_ip = lab.addr(2)
        log.info("a hostile peer from %s: banned with its IP address", hostile_ip)
        hostile = _peer(lab, 2, f"tcp://{lab.addr(1)}:{port}", status, "--misbehave",
                        "--attempts", "3", "--wait", "3")
        assert hostile["first_acked"] and hostile["banned"], hostile
        assert hostile["acked"] == 0, f"a fresh node key from a banned IP got in: {hostile}"
        wait_until(lambda: f"refused a new connection from {hostile_ip}" in p2p_log(),
                   timeout=15, what="the node logging the banned IP's new connections")
        text = p2p_log()
        assert f"its IP address {hostile_ip} too" in text
        assert text.count("refused a new connection from") == 1, "the refusals flood the log"
        assert "its IP address 127." not in text and "its IP address ::" not in text
        assert node.peers().banned >= 2  # both hostile node ids
        with pytest.raises(Refused, match="is banned"):  # nor is the banned host dialed
            node.request("p2p", m.AddPeer(f"tcp://{hostile_ip}:{port + 1}", 1000),
                         m.AddPeerReply)

        log.info("an honest peer from %s still gets in", lab.addr(3))
        honest = _peer(lab, 3, f"tcp://{lab.addr(1)}:{port}", status)
        assert honest["acked"] == 1 and honest["ready"] == 1, honest
    except BaseException:
        print(node.procs["p2p"].tail(60) if "p2p" in node.procs else "p2p not started")
        raise
