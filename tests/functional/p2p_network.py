"""p2p between real nodes on loopback: state, p2p and miner processes over real sockets.

Whole-network behaviour only; one node's handshake, relay, discipline, sync machine and
control socket are tested in-process (tests/unit/services/p2p/).

One network for the module: node A (state + p2p + miner, a block every 200 ms) starts with
1,000 blocks already in its chain, the first 40 with a transfer each; node B (state + p2p +
api) starts late with an empty one, so it has to catch up by itself, with assume-valid on
A's block 20 (`sync.assume_valid`): its REST API then says the 20 signatures up to it were
not checked, and that count stays put while the blocks above it come, by sync or live. The
tests then watch blocks and transactions flow between them and reorganise both nodes onto a
heavier fork a scripted peer shows B (tests/framework/scripted_peer.py). Curve links,
discovery and equal-weight forks run on pairs of their own.

Every wait is `wait_until` with `NOT_YET`: a bus error (a block or transaction not there
yet, a node still busy) counts as "not yet", and the last one is reported at the deadline.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zmq
from zmq.utils import z85

from common import messages as m
from common import wire
from common.crypto import PrivateKey, Signer
from common.errors import CcoinError
from common.genesis import Genesis
from common.types import Block, Transaction
from runtime.config import load_genesis
from services.p2p.blocks import SUBMIT_TIMEOUT_S
from services.p2p.identity import load_curve_keys
from tests.framework.node import TestNode
from tests.framework.ports import free_port
from tests.framework.scripted_peer import ChainBuilder, ScriptedPeer, submit_blocks
from tests.framework.util import ROOT, ccoin, wait_until
from tools.devchain import DevChain

log = logging.getLogger("test_p2p")

HISTORY = 1000  # blocks A has before B first starts
PAID = 40  # the first history blocks carry a transfer each
ASSUMED_AT = 20  # B assumes valid A's history block at this height
SINK = bytes.fromhex("5a" * 20)  # where the history's transfers go
MID_SYNC_BLOCKS, MID_SYNC_TXS = 60, 500  # the chain a state is killed in the middle of syncing
NOT_YET = (CcoinError,)  # what `wait_until` takes for "not yet" here (see the docstring)


def _discovery(port: int) -> dict[str, Any]:
    """node.json's discovery_service section for a discovery service on loopback."""
    return {"host": "127.0.0.1", "port": port, "proto": "http"}


@dataclass
class Net:
    base: Path
    dev: DevChain
    genesis: Genesis
    builder: ChainBuilder  # A's first HISTORY blocks
    a: TestNode
    b: TestNode
    assumed: bytes  # the block B's assume-valid names: A's history block ASSUMED_AT

    def start_b(self) -> TestNode:
        if "p2p" not in self.b.procs:
            self.b.start("state", "p2p", "api")
        return self.b

    def assume_valid(self) -> dict[str, Any]:
        """What assume-valid did on B, as its REST API says (GET /api/v1/status)."""
        doc: dict[str, Any] = self.b.client.status().doc["assume_valid"]
        return doc

    def assumed_status(self) -> dict[str, Any]:
        """B's `assume_valid` once it synced past the assumed block: the signatures of the
        transfers up to it skipped, one a block; none above it."""
        return {"block": self.assumed.hex(), "state": "reached", "height": ASSUMED_AT,
                "signatures_skipped": ASSUMED_AT, "blocks_skipped": ASSUMED_AT}

    def scripted(self, node: TestNode, **kwargs: object) -> ScriptedPeer:
        status = node.status()
        return ScriptedPeer(node.p2p_endpoint, network_id=status.network_id,
                            genesis=status.genesis, **kwargs)  # type: ignore[arg-type]

    def in_step(self, timeout: float = 10.0) -> None:
        """Wait until B's head is A's head (A keeps mining, so compare repeatedly)."""
        wait_until(lambda: self.a.status().head == self.b.status().head, timeout=timeout,
                   what="A and B on the same head", interval=0.05, ignore=NOT_YET)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    base = tmp_path_factory.mktemp("p2p")
    a = TestNode.create(base / "a", name="a", interval_ms=200)
    port_a = a.enable_p2p()
    # A's discovery service is down for good: the node must not care
    a.edit_config(discovery_service=_discovery(free_port()))
    dev = a.chain
    genesis = load_genesis(dev.genesis_path)
    builder = ChainBuilder(genesis, Signer(dev.validator))
    payer = Signer(dev.developer)
    history = [builder.next((Transaction.create(payer, chain_id=genesis.network_id,
                                                nonce=nonce, to=SINK, amount=1, fee=1),))
               for nonce in range(PAID)]
    history += builder.extend(HISTORY - PAID)
    assumed = history[ASSUMED_AT - 1]
    b = TestNode.sharing_chain(a, base / "b", name="b",
                               config={"sync": {"assume_valid": assumed.hash.hex()}})
    b.enable_p2p(bootnodes=(f"tcp://127.0.0.1:{port_a}",))
    codes: dict[str, int | None] = {}
    try:
        a.start("state")
        submit_blocks(a, history)
        a.start("p2p", "miner")
        yield Net(base, dev, genesis, builder, a, b, assumed.hash)
    finally:
        try:
            codes.update({f"a.{s}": code for s, code in a.stop().items()})
        finally:
            codes.update({f"b.{s}": code for s, code in b.stop().items()})
    assert all(code == 0 for code in codes.values()), codes


def test_a_late_node_catches_up_by_itself(net: Net) -> None:
    """B starts 1,000+ blocks behind with only A as bootnode; nothing else is done."""
    assert net.a.status().height >= HISTORY
    started = time.monotonic()
    b = net.start_b()
    wait_until(lambda: b.status().height >= HISTORY, timeout=30, what="B past the history",
               ignore=NOT_YET)
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
    # assume-valid, through B's REST API: the transfers up to the assumed block skipped
    # their signature checks, the 20 above it did not (the count would say 40)
    wait_until(lambda: net.assume_valid()["state"] == "reached", timeout=10,
               what="B past the assumed block", ignore=NOT_YET)
    assert net.assume_valid() == net.assumed_status()
    metrics = b.http.get("/metrics").text
    assert f"ccoin_sync_signatures_skipped_total {float(ASSUMED_AT)}" in metrics
    assert "ccoin_sync_assume_valid 1.0" in metrics


def test_blocks_sealed_on_a_reach_b(net: Net) -> None:
    """The next five heads A seals each reach B, on its main chain (unless A has moved off
    that head meanwhile)."""
    b = net.start_b()
    start = net.a.status().height
    seen: set[bytes] = set()

    def new_head() -> m.StatusReply | None:
        status = net.a.status()
        return status if status.height > start and status.head not in seen else None

    def on_b(head: bytes) -> m.BlockReply:
        return wait_until(lambda: b.request("state", m.GetBlock(0, head), m.BlockReply),
                          timeout=5, what="A's head on B", ignore=NOT_YET)

    while len(seen) < 5:
        status = wait_until(new_head, timeout=10, what="a new head on A", interval=0.05,
                            ignore=NOT_YET)
        reply = on_b(status.head)
        assert reply.on_main_chain or net.a.status().head != status.head
        seen.add(status.head)
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
    assert result.codes() == [""]
    on_a = wait_until(lambda: net.a.request("state", m.GetTx(tx.id), m.TxReply), timeout=5,
                      what="the transaction in A's pool or chain", ignore=NOT_YET)
    assert on_a.tx == tx.raw
    wait_until(lambda: net.a.request("state", m.GetTx(tx.id), m.TxReply).status
               == "confirmed", timeout=10, what="the transaction mined by A", ignore=NOT_YET)
    wait_until(lambda: b.request("state", m.GetTx(tx.id), m.TxReply).status == "confirmed",
               timeout=10, what="the block with it on B", ignore=NOT_YET)
    assert b.request("state", m.GetAccount(to), m.AccountReply).balance == 1234
    assert net.assume_valid() == net.assumed_status()  # its live block was verified


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
        == fork.head.hash, timeout=15, what="A on the heavier branch", ignore=NOT_YET)
    net.in_step()
    assert net.a.status().height >= fork.head.height
    peer.close()
    assert net.assume_valid() == net.assumed_status()  # the synced branch skipped nothing


def test_curve_links_and_the_allow_list(tmp_path: Path) -> None:
    """Two Curve nodes connect (the dialer knows the server key from its bootnode address);
    a client key not on the allow-list never gets through, nor does a plain peer."""
    a = TestNode.create(tmp_path / "a", name="a", interval_ms=60_000)
    b_dir = tmp_path / "b"
    b_public, _ = load_curve_keys(b_dir / "p2p")  # B's key exists before B first starts
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# who may connect to A\n{b_public.hex()}\n")
    port_a = a.enable_p2p(curve=True, allow_list=str(allow))
    a_public, _ = load_curve_keys(a.base_path / "p2p")
    b = TestNode.sharing_chain(a, b_dir, name="b")
    b.enable_p2p(curve=True, bootnodes=(f"tcp://127.0.0.1:{port_a}#{a_public.hex()}",))
    with a, b:
        a.start("state", "p2p")
        b.start("state", "p2p")
        builder = ChainBuilder(load_genesis(a.chain.genesis_path), Signer(a.chain.validator))
        submit_blocks(a, builder.extend(20))
        wait_until(lambda: b.status().height == 20, timeout=10, what="B synced over Curve",
                   ignore=NOT_YET)
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


def test_a_state_killed_mid_sync_costs_its_restart_and_loses_nothing(tmp_path: Path) -> None:
    """B syncs 30,000 transfers from A; its state is killed (SIGKILL) in the middle, with a
    block import in flight, and started again. B's p2p sends that import again as soon as
    its connection to state drops, so the sync goes on when state is back, long before the
    import's own timeout; B ends on A's chain, and its database checks clean. (B assumes
    A's head valid: with no signature to check, its p2p always has an import waiting on
    state, so the kill finds one in flight.)"""
    a = TestNode.create(tmp_path / "a", name="a", interval_ms=60_000)
    port_a = a.enable_p2p()
    genesis = load_genesis(a.chain.genesis_path)
    builder = ChainBuilder(genesis, Signer(a.chain.validator))
    payer = Signer(a.chain.developer)
    blocks = [builder.next(tuple(
        Transaction.create(payer, chain_id=genesis.network_id, nonce=n * MID_SYNC_TXS + i,
                           to=SINK, amount=1, fee=1) for i in range(MID_SYNC_TXS)))
        for n in range(MID_SYNC_BLOCKS)]
    b = TestNode.sharing_chain(a, tmp_path / "b", name="b",
                               config={"sync": {"assume_valid": blocks[-1].hash.hex()}})
    b.enable_p2p(bootnodes=(f"tcp://127.0.0.1:{port_a}",))
    with a, b:
        a.start("state", "p2p")
        submit_blocks(a, blocks, chunk=10)
        b.start("state")
        b.start("p2p", wait=False)  # it syncs as soon as it is up: watch from the start
        # halfway: in the full batch, p2p hands state block after block
        at = wait_until(lambda: h if (h := b.height()) >= MID_SYNC_BLOCKS // 2 else None,
                        timeout=30, what="B's sync under way", interval=0.005, ignore=NOT_YET)
        b.kill("state")
        assert at < MID_SYNC_BLOCKS, "B synced before its state could be killed"
        b.restart("state")
        # well within the 30 s an import waits for its answer before it is sent again
        wait_until(lambda: b.status().head == blocks[-1].hash, timeout=SUBMIT_TIMEOUT_S / 2,
                   what="B on A's head after its state's restart", ignore=NOT_YET)
    result = ccoin("node", "check", "--config", str(b.config_path), check=False)
    assert result.returncode == 0 and "clean" in result.stdout, result.stdout + result.stderr


def _curve_pair() -> tuple[bytes, bytes]:
    public, secret = zmq.curve_keypair()
    return z85.decode(public), z85.decode(secret)


def test_nodes_find_each_other_through_discovery(tmp_path: Path) -> None:
    """No bootnodes: both nodes register with the discovery service and dial what it lists."""
    port = free_port()
    discovery = subprocess.Popen(
        [sys.executable, "-m", "services.discovery", "--host", "127.0.0.1", "--port",
         str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = TestNode.create(tmp_path / "c", name="c", interval_ms=60_000)
    c.enable_p2p()
    c.edit_config(discovery_service=_discovery(port))
    d = TestNode.sharing_chain(c, tmp_path / "d", name="d")
    d.enable_p2p()
    d.edit_config(discovery_service=_discovery(port))
    try:
        with c, d:
            wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/health"), timeout=20,
                       what="discovery up")
            c.start("state", "p2p")
            submit_blocks(c, ChainBuilder(load_genesis(c.chain.genesis_path),
                                          Signer(c.chain.validator)).extend(10))
            d.start("state", "p2p")
            wait_until(lambda: d.status().height == 10, timeout=15,
                       what="D synced from C found by discovery", ignore=NOT_YET)
            assert [p.node_id for p in c.peers().peers] == [d.peers().node_id]
    finally:
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
    c = TestNode.create(tmp_path / "c", name="c", interval_ms=200,
                        config={"mining": {"autostart": False}})
    port_c = c.enable_p2p()
    builder = ChainBuilder(load_genesis(c.chain.genesis_path), Signer(c.chain.validator))
    common_part = builder.extend(3)
    ours, theirs = builder.fork(), builder.fork()
    tip_c, tip_d = ours.next(extra=b"c"), theirs.next(extra=b"d")
    assert ours.weight == theirs.weight
    winner = min(tip_c, tip_d, key=lambda b: b.hash)
    d = TestNode.sharing_chain(c, tmp_path / "d", name="d")
    d.enable_p2p(bootnodes=(f"tcp://127.0.0.1:{port_c}",))
    with c, d:
        c.start("state")
        d.start("state")
        submit_blocks(c, [*common_part, tip_c])
        submit_blocks(d, [*common_part, tip_d])
        assert c.status().head == tip_c.hash and d.status().head == tip_d.hash
        c.start("p2p")
        d.start("p2p")
        wait_until(lambda: c.status().head == d.status().head == winner.hash, timeout=30,
                   what="both nodes on the lower-hash tip", ignore=NOT_YET)
