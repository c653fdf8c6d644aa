"""p2p between real nodes on loopback: state, p2p and miner processes over real sockets.

One network for the module: node A (state + p2p + miner, a block every 200 ms) starts with
1,000 blocks already in its chain; node B (state + p2p) starts late with an empty one, so
it has to catch up by itself. The tests then watch blocks and transactions flow between
them, feed B hostile and scripted peers (tests/framework/p2p.py), and reorganise both nodes
onto a heavier fork. Curve runs on its own pair of nodes.
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

from common import consensus, wire
from common import messages as m
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import (
    BadSignature,
    BlockTransactionInvalid,
    Malformed,
    Refused,
    WrongChain,
)
from common.genesis import Genesis, load_genesis
from common.merkle import EMPTY_ROOT
from common.types import Block, BlockHeader, Transaction
from services.p2p import scoring
from services.p2p.book import AddressBook
from services.p2p.identity import load_curve_keys
from services.p2p.verify import Verifier
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
from tools.devchain import DevChain, create_dev_chain

log = logging.getLogger("test_p2p")

HISTORY = 1000  # blocks A has before B first starts


# --- the pure parts: verification cache, scores, rate limits, bans, address book ----------


def test_a_block_of_already_verified_transactions_costs_no_signature_check(
        tmp_path: Path) -> None:
    dev = create_dev_chain(tmp_path / "v", interval_ms=1000)
    genesis = load_genesis(dev.genesis_path)
    sender = Signer(dev.developer)
    txs = tuple(Transaction.create(sender, chain_id=genesis.network_id, nonce=i,
                                   to=bytes(20), amount=1) for i in range(30))
    verifier = Verifier(genesis)
    for tx in txs:  # relayed one by one first
        verifier.check_tx(tx.raw)
    assert verifier.signature_checks == 30
    block = ChainBuilder(genesis, Signer(dev.validator)).next(txs)
    assert verifier.check_block(block.raw).hash == block.hash
    assert verifier.signature_checks == 30 and verifier.cache_hits == 30
    forged = txs[0].with_signature(bytes(64))
    with pytest.raises(BadSignature):
        verifier.check_tx(forged.raw)
    other_chain = Transaction.create(sender, chain_id=genesis.network_id + 1, nonce=0,
                                     to=bytes(20), amount=1)
    with pytest.raises(WrongChain):
        verifier.check_tx(other_chain.raw)
    bad = ChainBuilder(genesis, Signer(dev.validator)).next((forged,))
    with pytest.raises(BlockTransactionInvalid):
        verifier.check_block(bad.raw)


def test_penalties_rate_limits_and_bans() -> None:
    assert scoring.block_penalty("bad_state_root") == scoring.INVALID_BLOCK
    assert scoring.block_penalty("unknown_parent") == 0
    assert scoring.block_penalty("unavailable") == 0  # our state failing is not the peer's
    assert scoring.decode_penalty(wire.UnknownMessage()) < scoring.decode_penalty(Malformed())
    limiter = scoring.RateLimiter()
    now = 1000.0
    allowed = sum(limiter.allow(b"PNG", now) for _ in range(50))
    assert allowed == scoring.RATE_LIMITS[b"PNG"][1]  # the burst, then nothing
    assert limiter.allow(b"PNG", now + 1.0)  # refilled at its rate
    assert sum(limiter.allow(b"Q" + bytes([i, i]), now) for i in range(50)) == \
        scoring.DEFAULT_LIMIT[1]  # unknown headers share one bucket
    bans = scoring.BanList(seconds=10)
    bans.ban([("node", b"x"), ("endpoint", "tcp://h:1")], now=now)
    assert bans.banned(("node", b"x"), now=now + 9) and not bans.banned(("node", b"y"), now=now)
    assert not bans.banned(("node", b"x"), now=now + 10)


def test_address_book_backs_off_holds_and_keeps_persistent_entries() -> None:
    book = AddressBook(capacity=3)
    book.add("tcp://boot:1", source="bootnode")
    book.add("tcp://a:1", b"a" * 32)
    book.add("tcp://b:1")
    book.failed("tcp://b:1", now=0.0)
    book.failed("tcp://b:1", now=0.0)
    assert book.entries["tcp://b:1"].next_try == 2.0  # 1 s, then 2 s
    book.hold("tcp://a:1", 1e9)
    book.failed("tcp://a:1")  # a failure never shortens a hold
    assert book.entries["tcp://a:1"].next_try > 1e8
    assert book.add("tcp://c:1") is not None  # full: the most-failed transient entry goes
    assert "tcp://b:1" not in book.entries and "tcp://boot:1" in book.entries
    due = [a.endpoint for a in book.due(now=time.monotonic())]
    assert due[0] == "tcp://boot:1" and "tcp://a:1" not in due
    book.add("tcp://c:1", b"c" * 32, source="manual")
    assert book.entries["tcp://c:1"].persistent


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


def test_pooled_transactions_are_relayed_in_bulk(net: Net) -> None:
    """40 transactions behind a nonce gap: A pools them (queued, not minable) and relays the
    batch; B pools them too. Filling the gap then gets all of them mined."""
    b = net.start_b()
    net.in_step()
    sender = Signer(net.dev.developer)
    nonce = net.a.request("state", m.GetAccount(sender.address), m.AccountReply).pending_nonce
    txs = [Transaction.create(sender, chain_id=net.genesis.network_id, nonce=nonce + 1 + i,
                              to=bytes(20), amount=1) for i in range(40)]
    result = net.a.request("state", m.SubmitTxs(tuple(t.raw for t in txs)), m.SubmitResult)
    assert {r.code for r in result.results} == {""}
    wait_until(lambda: all(b.request("state", m.GetTx(t.id), m.TxReply).status == "queued"
                           for t in txs), 10, "the queued batch in B's pool")
    gap = Transaction.create(sender, chain_id=net.genesis.network_id, nonce=nonce,
                             to=bytes(20), amount=1)
    net.a.request("state", m.SubmitTxs((gap.raw,)), m.SubmitResult)
    wait_until(lambda: b.request("state", m.GetTx(txs[-1].id), m.TxReply).status
               == "confirmed", 10, "the whole batch mined and on B")


def test_a_node_on_another_genesis_is_refused(net: Net) -> None:
    """A real node of another chain (same network id, other genesis) dials A."""
    other = create_dev_chain(net.base / "other", interval_ms=200, api_port=free_port())
    set_p2p(other.config_path, port=free_port(), bootnodes=(net.a.p2p_endpoint,))
    c = TestNode(other.config_path, "other").start("state", "p2p")
    try:
        wait_until(lambda: "refused us: wrong_network" in c.log("p2p"), 10, "A refusing it")
        assert "refusing peer" in net.a.log("p2p") and "genesis" in net.a.log("p2p")
        time.sleep(1.5)  # the refusal holds: it does not dial A again and again
        assert c.log("p2p").count("refused us") == 1
        assert c.peers().peers == ()
        assert c.status().genesis not in {net.a.status().genesis}
        assert all(p.node_id != c.peers().node_id for p in net.a.peers().peers)
    finally:
        c.stop()
    # and a scripted hello with another network id gets a BYE naming the reason
    peer = net.scripted(net.a)
    peer.hello(network_id=net.genesis.network_id + 1)
    bye = peer.expect(wire.Bye)
    assert bye.code == "wrong_network"
    peer.close()


def _bad_seal_block(net: Net, parent: BlockHeader) -> Block:
    """A block sealed by a key that is not an authority of the chain."""
    intruder = Signer(PrivateKey.generate(KeyType.ED25519))
    header = BlockHeader(parent.height + 1, parent.hash, parent.timestamp + 1, intruder.address,
                         EMPTY_ROOT, bytes(32), net.genesis.difficulty, 0, b"")
    solved = consensus.solve_proof(consensus.with_signer(header, intruder), 1 << 20)
    assert solved is not None
    return Block(consensus.sign_header(solved, intruder), ())


def _bad_state_root_block(net: Net, parent: BlockHeader) -> Block:
    """Sealed by the real authority on the current head, but claiming a wrong state root:
    only state can tell (p2p's stateless checks pass)."""
    signer = Signer(net.dev.validator)
    header = BlockHeader(parent.height + 1, parent.hash, max(parent.timestamp + 1,
                         int(time.time() * 1000)), signer.address, EMPTY_ROOT, b"\x01" * 32,
                         net.genesis.difficulty, 0, b"")
    solved = consensus.solve_proof(consensus.with_signer(header, signer), 1 << 20)
    assert solved is not None
    return Block(consensus.sign_header(solved, signer), ())


def _banned(peer: ScriptedPeer, timeout: float = 5.0) -> wire.Bye:
    bye = peer.expect(wire.Bye, timeout)
    while bye.code != "banned":
        bye = peer.expect(wire.Bye, timeout)
    return bye


def test_hostile_peers_are_banned_while_honest_propagation_continues(net: Net) -> None:
    b = net.start_b()
    net.in_step()
    height_before = b.status().height
    head = b.request("state", m.GetBlock(0, b.status().head), m.BlockReply)
    parent = Block.decode(head.block).header

    log.info("garbage before any hello")
    junk = net.scripted(b)
    for frame in (b"\x00", b"HEL\xc1", b"XYZ\x90", b"PNG\x94", b"GPX\xdc\x00\x00", b"\xff" * 99):
        junk.send_raw(frame)
    assert _banned(junk).reason

    log.info("handshake, then transactions with bad signatures")
    liar = net.scripted(b)
    liar.handshake()
    sender = Signer(net.dev.developer)
    forged = Transaction.create(sender, chain_id=net.genesis.network_id, nonce=10**6,
                                to=bytes(20), amount=1).with_signature(bytes(64))
    for _ in range(5):
        liar.send(wire.Txs((forged.raw,)))
    _banned(liar)
    wait_until(lambda: b.peers().banned >= 1, 5, "the liar's node id banned")
    liar.reconnect()
    liar.hello()
    assert liar.expect(wire.Bye).code == "banned"  # the node id stays banned

    log.info("a block sealed by an intruder")
    intruder = net.scripted(b)
    intruder.handshake()
    intruder.send(wire.NewBlock(_bad_seal_block(net, parent).raw, 10**9))
    assert "not an authority" in _banned(intruder).reason

    log.info("a block with a wrong state root, which only state detects")
    forger = net.scripted(b)
    forger.handshake()
    deadline = time.monotonic() + 10
    while True:  # A's next block may make our parent stale (then the block is just a side one)
        tip = Block.decode(b.request("state", m.GetBlock(0, b.status().head),
                                     m.BlockReply).block).header
        forger.send(wire.NewBlock(_bad_state_root_block(net, tip).raw, 10**9))
        try:
            bye = _banned(forger, 1.0)
            break
        except TimeoutError:
            assert time.monotonic() < deadline
    assert "bad_state_root" in bye.reason

    log.info("a flood of pings")
    flooder = net.scripted(b)
    flooder.handshake()
    for i in range(200):
        flooder.send(wire.Ping(i, 0, bytes(32), 0))
    _banned(flooder)

    log.info("an application-level oversized message and an oversized frame")
    bulky = net.scripted(b)
    bulky.handshake()
    for _ in range(5):
        bulky.send_raw(b"TXS" + b"\x00" * (wire.Txs.max_body + 1))
    _banned(bulky)
    giant = net.scripted(b)
    giant.handshake()
    # our ack and B's peer listing travel on different sockets: B may answer the listing first
    wait_until(lambda: giant.node_id in {p.node_id for p in b.peers().peers}, 5,
               "the oversized sender's link up")
    giant.send_raw(b"BLK" + bytes(wire.MAX_MESSAGE + 1))  # over MAXMSGSIZE: ZMQ drops the link
    wait_until(lambda: giant.node_id not in {p.node_id for p in b.peers().peers}, 10,
               "the oversized sender's link gone")  # noticed at the next ping

    for peer in (junk, liar, intruder, forger, flooder, bulky, giant):
        peer.close()
    # honest propagation went on all along, and the honest peer is still there
    net.in_step()
    assert b.status().height > height_before
    assert [p.node_id for p in b.peers().peers] == [net.a.peers().node_id]
    assert b.peers().peers[0].score == 0
    assert b.peers().banned >= 4
    assert "banning peer" in b.log("p2p")


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


def test_control_requests(net: Net) -> None:
    b = net.start_b()
    p2p = b.client("p2p")
    with pytest.raises(Malformed):
        p2p.request(m.AddPeer("not an endpoint"), m.Ok)
    with pytest.raises(Malformed):
        p2p.request(m.AddPeer("tcp://127.0.0.1:99999"), m.Ok)
    with pytest.raises(Refused, match="is this node"):
        p2p.request(m.AddPeer(b.p2p_endpoint), m.Ok)  # ourselves
    assert isinstance(p2p.request(m.AddPeer(net.a.p2p_endpoint), m.Ok), m.Ok)  # already there
    rounds = b.log("p2p").count("syncing from")
    assert isinstance(p2p.request(m.SyncNow(), m.Ok), m.Ok)
    wait_until(lambda: b.log("p2p").count("syncing from") > rounds, 5, "a forced sync round")
    a_id = net.a.peers().node_id
    wait_until(lambda: [p.latency_ms >= 0 for p in b.peers().peers if p.node_id == a_id]
               == [True], 5, "a measured ping")
    reply = b.peers()
    assert len(reply.node_id) == 32
    (info,) = [p for p in reply.peers if p.node_id == a_id]
    assert info.endpoint == net.a.p2p_endpoint and info.direction == "outbound"
    assert info.height > 0 and len(info.head) == 32 and info.total_weight > 0
    assert info.latency_ms >= 0 and info.connected_ms > 1_600_000_000_000


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
