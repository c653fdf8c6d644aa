"""feature_network: several whole nodes talking over the real p2p protocol.

Started the way the README says (`ccoin devnet`, `ccoin node stop|start`), on loopback:

- 3 validators + 1 basic node + discovery: transfers submitted to the basic node's REST API
  are confirmed on every node, and every node has the same block hash and state root at
  every height;
- a validator stopped: the other two keep sealing (out of turn when it was its turn), and
  it catches up when restarted;
- a node stopped for a few hundred blocks catches up by itself when restarted;
- block propagation, seal to head on all 4 nodes, measured and printed (not asserted).

A PoW devnet: feature_network_pow.py; a partition in network namespaces:
feature_network_partition.py.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import pytest
import zmq

from common import messages
from common.crypto import PrivateKey
from common.types import Transaction
from runtime.bus import parse_event
from runtime.config import load_genesis
from tests.framework.network import TestNetwork, developer_signer, free_base_port
from tests.framework.rest import RestApi, assert_one_chain, same_head
from tests.framework.util import log_step, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NET_ERRORS = (httpx.HTTPError,)  # a node that is stopped or restarting answers nothing


POA_INTERVAL_MS = 150
CATCH_UP_BLOCKS = 250


def wait_caught_up(laggard: RestApi, others: Sequence[RestApi], timeout: float) -> int:
    """Wait until `laggard` reaches the height the others had at the start, with the block
    they all have there now. (Not the block they had at the start: validators sealing out
    of turn may both seal a height, and the fork settles on one of them later.)"""
    target = max(o.height() for o in others)

    def done() -> bool:
        if min(a.height() for a in (laggard, *others)) < target:
            return False
        return len({a.block(target)["hash"] for a in (laggard, *others)}) == 1

    wait_until(done, timeout=timeout, what=f"{laggard.name} catches up to height {target}",
               interval=0.5, ignore=NET_ERRORS)
    return target


# --- block propagation, measured through each node's own event bus --------------------------


@dataclass
class HeadWatcher:
    """Subscribes to the `head` events of every node's state service (ipc:// sockets in
    the nodes' run dirs) and records when each node first made each block its head."""

    endpoints: list[str]
    seen: dict[bytes, dict[int, float]] = field(default_factory=dict)  # hash -> node -> ms
    info: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # hash -> (height, ts)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # report() runs meanwhile

    def start(self) -> HeadWatcher:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        ctx = zmq.Context()
        socks = []
        poller = zmq.Poller()
        try:
            for ep in self.endpoints:
                s = ctx.socket(zmq.SUB)
                s.setsockopt(zmq.SUBSCRIBE, b"head")
                s.setsockopt(zmq.LINGER, 0)
                s.connect(ep)
                poller.register(s, zmq.POLLIN)
                socks.append(s)
            while not self.stop_flag.is_set():
                for sock, _ in poller.poll(100):
                    arrived = time.time() * 1000
                    node = socks.index(sock)
                    frames = sock.recv_multipart()
                    try:
                        _, _, event = parse_event(frames)
                    except Exception:  # noqa: BLE001 - a measurement, not a check
                        continue
                    if isinstance(event, messages.HeadEvent):
                        with self.lock:
                            self.info[event.hash] = (event.height, event.timestamp)
                            self.seen.setdefault(event.hash, {}).setdefault(node, arrived)
        finally:
            for s in socks:
                s.close(0)
            ctx.term()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(5)

    def report(self, main_chain: set[bytes]) -> dict[str, float] | None:
        """Seal (header timestamp) -> head on every node, and first node -> last node."""
        full, spread = [], []
        n = len(self.endpoints)
        with self.lock:
            seen = {h: dict(by_node) for h, by_node in self.seen.items()}
        for h, by_node in seen.items():
            if h not in main_chain or len(by_node) < n:
                continue
            _, ts = self.info[h]
            full.append(max(by_node.values()) - ts)
            spread.append(max(by_node.values()) - min(by_node.values()))
        if len(full) < 2:
            return None

        def pct(xs: list[float], q: float) -> float:
            xs = sorted(xs)
            return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

        return {"blocks": len(full), "p50_ms": statistics.median(full),
                "p99_ms": pct(full, 0.99), "max_ms": max(full),
                "relay_p50_ms": statistics.median(spread), "relay_p99_ms": pct(spread, 0.99)}


# --- the PoA devnet shared by the loopback tests ---------------------------------------------


@pytest.fixture(scope="module")
def poa() -> Iterator[TestNetwork]:
    with TestNetwork.up("ccnet-", "--nodes", "4", "--validators", "3", "--base-port",
                        str(free_base_port(4)), "--interval-ms", str(POA_INTERVAL_MS)) as net:
        yield net


def test_transfers_to_the_basic_node_are_confirmed_everywhere(poa: TestNetwork) -> None:
    devnet, apis = poa.devnet, poa.apis
    basic = apis[3]
    assert devnet.nodes[3].node_type == "basic"
    assert basic.get("/api/v1/mining")["validator"] is False
    signer = developer_signer(devnet)
    nonce = basic.pending_nonce(devnet.developer)
    recipients = [PrivateKey.generate().address for _ in range(5)]
    txs = [Transaction.create(signer, chain_id=devnet.network_id, nonce=nonce + i,
                              to=recipients[i % 5], amount=1000 + i, fee=1)
           for i in range(40)]
    log_step(f"submitting {len(txs)} transfers to {basic.name}")
    basic.submit_all(txs)
    ids = [t.id.hex() for t in txs]
    wait_until(lambda: all(a.confirmed(i) for a in apis for i in ids), timeout=90,
               what="every transfer confirmed on every node", interval=0.5, ignore=NET_ERRORS)
    for tx_id in ids:  # in the same block everywhere
        assert len({a.tx_status(tx_id)["block"] for a in apis}) == 1  # type: ignore[index]
    expected = {r: sum(1000 + i for i in range(40) if i % 5 == k)
                for k, r in enumerate(recipients)}
    for a in apis:
        assert {r: a.balance(r) for r in recipients} == expected
    # same head everywhere (blocks keep coming: poll until a moment when all agree)
    wait_until(lambda: same_head(apis), timeout=60, what="all four nodes report the same head",
               interval=0.1, ignore=NET_ERRORS)
    chain = assert_one_chain(apis)
    log_step(f"one chain of {len(chain)} blocks with equal state roots on all 4 nodes")


def test_block_propagation_on_loopback(poa: TestNetwork) -> None:
    """Measured, not asserted: seal -> head on all 4 nodes (p50, p99)."""
    apis = poa.apis
    watcher = HeadWatcher([n.config.endpoint("events") for n in poa.nodes]).start()

    def measured() -> dict[str, float] | None:
        top = min(a.height() for a in apis)
        result = watcher.report({bytes.fromhex(b["hash"]) for b in apis[0].chain(top)})
        return result if result is not None and result["blocks"] >= 30 else None

    try:
        result = wait_until(measured, timeout=90, interval=1.0,
                            what="30 main-chain blocks seen by all four nodes")
    finally:
        watcher.stop()
    print(f"\nPROPAGATION loopback, 4 nodes, interval {POA_INTERVAL_MS} ms: "
          + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in result.items()), flush=True)
    assert result["blocks"] >= 10


def test_validators_keep_sealing_while_one_is_down(poa: TestNetwork) -> None:
    net, devnet, apis = poa, poa.devnet, poa.apis
    genesis = load_genesis(devnet.genesis_path)
    down, others = apis[0], apis[1:]
    log_step("stopping validator node1 (ccoin node stop)")
    net.stop_node(1)
    h0 = max(o.height() for o in others)
    wait_until(lambda: min(o.height() for o in others) >= h0 + 30, timeout=120,
               what="the two remaining validators seal 30 more blocks", interval=0.5,
               ignore=NET_ERRORS)
    blocks = others[0].chain(h0 + 30)[h0 + 1:]
    signers = {b["header"]["coinbase"] for b in blocks}
    assert devnet.nodes[0].account.hex() not in signers
    assert signers == {devnet.nodes[1].account.hex(), devnet.nodes[2].account.hex()}
    its_turns = [b for b in blocks
                 if genesis.miners[b["header"]["height"] % 3] == devnet.nodes[0].account]
    assert its_turns, "node1's turns were sealed out of turn by the others"
    log_step(f"{len(blocks)} blocks sealed without node1 ({len(its_turns)} in its turn)")
    net.start_node(1)
    wait_until(down.up, timeout=60, what="node1's API is back", ignore=NET_ERRORS)
    target = wait_caught_up(down, others, 120)
    log_step(f"node1 caught up to {target}")
    wait_until(lambda: down.get("/api/v1/mining")["blocks_sealed"] > 0, timeout=60,
               what="node1 seals again", ignore=NET_ERRORS)
    wait_until(lambda: same_head(apis), timeout=60, what="all four nodes on one head",
               interval=0.1, ignore=NET_ERRORS)  # blocks keep coming: a moment they agree
    assert_one_chain(apis)


def test_a_node_down_for_hundreds_of_blocks_catches_up(poa: TestNetwork) -> None:
    net, apis = poa, poa.apis
    laggard, others = apis[3], apis[:3]
    log_step("stopping the basic node node4 (ccoin node stop)")
    net.stop_node(4)
    h0 = max(o.height() for o in others)
    started = time.monotonic()
    wait_until(lambda: min(o.height() for o in others) >= h0 + CATCH_UP_BLOCKS,
               timeout=CATCH_UP_BLOCKS * POA_INTERVAL_MS / 1000 * 4 + 60,
               what=f"{CATCH_UP_BLOCKS} blocks while node4 is down", interval=1.0,
               ignore=NET_ERRORS)
    log_step(f"{CATCH_UP_BLOCKS} blocks in {time.monotonic() - started:.1f} s; "
             "restarting node4 (ccoin node start)")
    net.start_node(4)
    t0 = time.monotonic()
    wait_until(laggard.up, timeout=60, what="node4's API is back", ignore=NET_ERRORS)
    target = wait_caught_up(laggard, others, 180)
    took = time.monotonic() - t0
    log_step(f"node4 caught up to height {target} in {took:.1f} s after its restart")
    print(f"\nCATCH-UP {target - h0} blocks behind, caught up in {took:.1f} s "
          f"(including process start)", flush=True)
    wait_until(lambda: same_head(apis), timeout=60, what="all four nodes on one head",
               interval=0.1, ignore=NET_ERRORS)  # blocks keep coming: a moment they agree
    assert_one_chain(apis)
