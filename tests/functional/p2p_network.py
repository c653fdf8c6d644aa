"""p2p between real nodes on loopback: state, p2p and miner processes over real sockets.

Whole-network behaviour only; one node's handshake, relay, discipline, sync machine and
control socket are tested in-process (tests/unit/services/p2p/).

One network for the module: node A (state + p2p + miner, a block every 200 ms) starts with
1,000 blocks already in its chain; node B (state + p2p) starts late with an empty one, so
it has to catch up by itself. The tests then watch blocks and transactions flow between
them and reorganise both nodes onto a heavier fork a scripted peer shows B
(tests/framework/p2p.py). Curve links, discovery and equal-weight forks run on pairs of
their own.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import zmq
from zmq.utils import z85

from common import messages as m
from common import wire
from common.crypto import PrivateKey, Signer
from common.genesis import Genesis
from common.types import Block, Transaction
from runtime.config import load_genesis
from services.p2p.identity import load_curve_keys
from tests.framework.p2p import (
    ChainBuilder,
    ScriptedPeer,
    TestNode,
    first_node,
    peer_dir,
    set_p2p,
    submit_blocks,
    wait_until,
)
from tests.framework.process import ROOT, free_port
from tools.devchain import DevChain

log = logging.getLogger("test_p2p")

HISTORY = 1000  # blocks A has before B first starts


@dataclass
class Net:
    base: Path
    dev: DevChain
    genesis: Genesis
    builder: ChainBuilder  # A's first HISTORY blocks
    a: TestNode
    b: TestNode

    def start_b(self) -> TestNode:
        if "p2p" not in self.b.procs:
            self.b.start("state", "p2p")
        return self.b

    def scripted(self, node: TestNode, **kwargs: object) -> ScriptedPeer:
        status = node.status()
        return ScriptedPeer(node.p2p_endpoint, network_id=status.network_id,
                            genesis=status.genesis, **kwargs)  # type: ignore[arg-type]

    def in_step(self, timeout: float = 10.0) -> None:
        """Wait until B's head is A's head (A keeps mining, so compare repeatedly)."""
        wait_until(lambda: self.a.status().head == self.b.status().head, timeout,
                   "A and B on the same head", interval=0.05)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    base = tmp_path_factory.mktemp("p2p")
    dev, port_a = first_node(base / "a", interval_ms=200)
    # A's discovery service is down for good: the node must not care
    set_p2p(dev.config_path, port=port_a, discovery_port=free_port())
    genesis = load_genesis(dev.genesis_path)
    builder = ChainBuilder(genesis, Signer(dev.validator))
    history = builder.extend(HISTORY)
    a = TestNode(dev.config_path, "a").start("state")
    b_config = peer_dir(dev, base / "b", p2p_port=free_port(),
                        bootnodes=(f"tcp://127.0.0.1:{port_a}",))
    b = TestNode(b_config, "b")
    try:
        submit_blocks(a, history)
        a.start("p2p", "miner")
        yield Net(base, dev, genesis, builder, a, b)
    finally:
        codes = {f"{n.name}.{s}": p.stop() for n in (a, b) for s, p in list(n.procs.items())}
        a.stop()
        b.stop()
    assert all(code == 0 for code in codes.values()), codes


def test_a_late_node_catches_up_by_itself(net: Net) -> None:
    """B starts 1,000+ blocks behind with only A as bootnode; nothing else is done."""
    assert net.a.status().height >= HISTORY
    started = time.monotonic()
    b = net.start_b()
    wait_until(lambda: b.status().height >= HISTORY, 30, "B past the history")
    log.info("B synced %d blocks in %.1f s", HISTORY, time.monotonic() - started)
    net.in_step()
    a_peers, b_peers = net.a.peers(), b.peers()
    assert [p.node_id for p in b_peers.peers] == [a_peers.node_id]
    assert [p.node_id for p in a_peers.peers] == [b_peers.node_id]
    assert (a_peers.peers[0].direction, b_peers.peers[0].direction) == ("inbound", "outbound")
    assert b_peers.peers[0].endpoint == net.a.p2p_endpoint
    assert not b_peers.syncing and b_peers.banned == 0
    assert "syncing from" in b.log("p2p")
    assert "unreachable" in net.a.log("p2p")  # its discovery is down, and it works anyway


def test_blocks_sealed_on_a_reach_b(net: Net) -> None:
    b = net.start_b()
    start = net.a.status().height
    seen: set[bytes] = set()
    while len(seen) < 5:
        status = net.a.status()
        if status.height > start:
            reply = wait_until(lambda h=status.head: b.request(  # type: ignore[misc]
                "state", m.GetBlock(0, h), m.BlockReply), 5, "A's head on B")
            assert reply.on_main_chain or net.a.status().head != status.head
            seen.add(status.head)
        time.sleep(0.1)
    assert b.status().height >= start + 5


def test_a_transaction_sent_to_b_is_mined_by_a(net: Net) -> None:
    b = net.start_b()
    net.in_step()
    dev = net.dev
    sender = Signer(dev.developer)
    nonce = b.request("state", m.GetAccount(sender.address), m.AccountReply).pending_nonce
    to = PrivateKey.generate().address
    tx = Transaction.create(sender, chain_id=net.genesis.network_id, nonce=nonce, to=to,
                            amount=1234, fee=1)
    result = b.request("state", m.SubmitTxs((tx.raw,)), m.SubmitResult)
    assert result.results[0].code == ""
    on_a = wait_until(lambda: net.a.request("state", m.GetTx(tx.id), m.TxReply), 5,
                      "the transaction in A's pool or chain")
    assert on_a.tx == tx.raw
    wait_until(lambda: net.a.request("state", m.GetTx(tx.id), m.TxReply).status
               == "confirmed", 10, "the transaction mined by A")
    wait_until(lambda: b.request("state", m.GetTx(tx.id), m.TxReply).status == "confirmed",
               10, "the block with it on B")
    assert b.request("state", m.GetAccount(to), m.AccountReply).balance == 1234


def test_a_heavier_fork_from_a_peer_reorganises_both_nodes(net: Net) -> None:
    """A scripted peer announces the tip of a heavier branch that forks off below the head:
    B finds the fork point with its locator, fetches the branch, reorganises, and A (which
    only talks to B) follows."""
    b = net.start_b()
    net.in_step()
    a_height = net.a.status().height
    fork = net.builder.fork()  # from the end of the history, below both heads
    branch = fork.extend(a_height - HISTORY + 25)  # heavier than what A can mine meanwhile
    peer = net.scripted(b)
    peer.handshake(height=fork.head.height, head=fork.head.hash, total_weight=fork.weight)
    peer.send(wire.NewBlock(branch[-1].raw, fork.weight))
    served = peer.serve_blocks(fork, lambda: b.status().height >= fork.head.height)
    assert served >= 1
    on_b = b.request("state", m.GetBlock(fork.head.height, b""), m.BlockReply)
    assert Block.decode(on_b.block).hash == fork.head.hash
    wait_until(lambda: Block.decode(net.a.request(
        "state", m.GetBlock(fork.head.height, b""), m.BlockReply).block).hash
        == fork.head.hash, 15, "A on the heavier branch")
    net.in_step()
    assert net.a.status().height >= fork.head.height
    peer.close()


def test_curve_links_and_the_allow_list(tmp_path: Path) -> None:
    """Two Curve nodes connect (the dialer knows the server key from its bootnode address);
    a client key not on the allow-list never gets through, nor does a plain peer."""
    dev, port_a = first_node(tmp_path / "a", interval_ms=60_000)
    b_dir = tmp_path / "b"
    b_public, _ = load_curve_keys(b_dir / "p2p")  # B's key exists before B first starts
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# who may connect to A\n{b_public.hex()}\n")
    set_p2p(dev.config_path, port=port_a, curve=True, allow_list=str(allow))
    a_public, _ = load_curve_keys(dev.base_path / "p2p")
    b_config = peer_dir(dev, b_dir, p2p_port=free_port(), curve=True,
                        bootnodes=(f"tcp://127.0.0.1:{port_a}#{a_public.hex()}",))
    a = TestNode(dev.config_path, "a").start("state", "p2p")
    b = TestNode(b_config, "b").start("state", "p2p")
    try:
        builder = ChainBuilder(load_genesis(dev.genesis_path), Signer(dev.validator))
        submit_blocks(a, builder.extend(20))
        wait_until(lambda: b.status().height == 20, 10, "B synced over Curve")
        assert [p.node_id for p in a.peers().peers] == [b.peers().node_id]
        status = a.status()
        stranger_public, stranger_secret = _curve_pair()
        stranger = ScriptedPeer(a.p2p_endpoint, network_id=status.network_id,
                                genesis=status.genesis,
                                curve=(a_public, stranger_public, stranger_secret))
        stranger.hello()
        assert stranger.recv(1.5) is None  # ZAP refused the key: nothing reaches the node
        plain = ScriptedPeer(a.p2p_endpoint, network_id=status.network_id,
                             genesis=status.genesis)
        plain.hello()
        assert plain.recv(1.0) is None
        stranger.close()
        plain.close()
        assert "not on the allow-list" in a.log("p2p")
    finally:
        a.stop()
        b.stop()


def _curve_pair() -> tuple[bytes, bytes]:
    public, secret = zmq.curve_keypair()
    return z85.decode(public), z85.decode(secret)


def test_nodes_find_each_other_through_discovery(tmp_path: Path) -> None:
    """No bootnodes: both nodes register with the discovery service and dial what it lists."""
    port = free_port()
    discovery = subprocess.Popen(
        [sys.executable, "-m", "services.discovery", "--host", "127.0.0.1", "--port",
         str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dev, port_c = first_node(tmp_path / "c", interval_ms=60_000)
    set_p2p(dev.config_path, port=port_c, discovery_port=port)
    d_config = peer_dir(dev, tmp_path / "d", p2p_port=free_port(), discovery_port=port)
    c, d = TestNode(dev.config_path, "c"), TestNode(d_config, "d")
    try:
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/health"), 20, "discovery up")
        c.start("state", "p2p")
        submit_blocks(c, ChainBuilder(load_genesis(dev.genesis_path),
                                      Signer(dev.validator)).extend(10))
        d.start("state", "p2p")
        wait_until(lambda: d.status().height == 10, 15, "D synced from C found by discovery")
        assert [p.node_id for p in c.peers().peers] == [d.peers().node_id]
    finally:
        c.stop()
        d.stop()
        discovery.terminate()
        discovery.wait(10)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_equal_weight_tips_converge_on_the_lower_hash(tmp_path: Path) -> None:
    """Two nodes that each hold a different block at the same height (equal total weight)
    agree as soon as they link, on the lower-hash tip (PoA fork choice), instead of each
    keeping the block it saw first: the Clique stall of equal-weight forks."""
    dev, port_c = first_node(tmp_path / "c")
    set_p2p(dev.config_path, port=port_c, mining=False)
    builder = ChainBuilder(load_genesis(dev.genesis_path), Signer(dev.validator))
    common_part = builder.extend(3)
    ours, theirs = builder.fork(), builder.fork()
    tip_c, tip_d = ours.next(extra=b"c"), theirs.next(extra=b"d")
    assert ours.weight == theirs.weight
    winner = min(tip_c, tip_d, key=lambda b: b.hash)
    c = TestNode(dev.config_path, "c")
    d = TestNode(peer_dir(dev, tmp_path / "d", p2p_port=free_port(),
                          bootnodes=(f"tcp://127.0.0.1:{port_c}",)), "d")
    try:
        c.start("state")
        d.start("state")
        submit_blocks(c, [*common_part, tip_c])
        submit_blocks(d, [*common_part, tip_d])
        assert c.status().head == tip_c.hash and d.status().head == tip_d.hash
        c.start("p2p")
        d.start("p2p")
        wait_until(lambda: c.status().head == d.status().head == winner.hash, 30,
                   "both nodes on the lower-hash tip")
    finally:
        d.stop()
        c.stop()
