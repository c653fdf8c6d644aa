"""feature_network_e2e: several whole nodes talking over the real p2p protocol.

Started the way the README says (`ccoin devnet`, `ccoin node stop|start`), on loopback:

- 3 validators + 1 basic node + discovery: transfers submitted to the basic node's REST API
  are confirmed on every node, and every node has the same block hash and state root at
  every height;
- a validator stopped: the other two keep sealing (out of turn when it was its turn), and
  it catches up when restarted;
- a node stopped for a few hundred blocks catches up by itself when restarted;
- block propagation, seal to head on all 4 nodes, measured and printed (not asserted);
- a PoW devnet: every node mines, difficulty retargets, and all nodes converge.

And with real network namespaces (root only; skipped otherwise): a partition with a
conflicting spend on each side (same sender and nonce, different recipients) heals into
one chain on which exactly one of the two spends is applied, everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq

from common import messages
from common.crypto import PrivateKey, Signer
from common.genesis import load_genesis
from common.types import Transaction
from runtime.bus import parse_event
from runtime.config import load_config
from runtime.keystore import Keystore
from tests.framework import netns
from tests.framework.devnet import (
    Api,
    RunningDevnet,
    ccoin,
    ccoin_argv,
    devnet_up,
    free_base_port,
    kill_leftovers,
    log_step,
    p2p_missing,
    requires_p2p,
    wait_for,
)
from tests.framework.process import ROOT
from tools.devnet import Devnet, create_devnet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


POA_INTERVAL_MS = 150
CATCH_UP_BLOCKS = 250


# --- a node's REST API ----------------------------------------------------------------------


def submit_all(api: Api, txs: Sequence[Transaction]) -> None:
    results = api.submit(txs)
    refused = [r for r in results if r.get("status") != "accepted"]
    assert not refused, refused[:3]


def same_head(apis: Sequence[Api]) -> str | None:
    heads = {a.status()["head"] for a in apis}
    return heads.pop() if len(heads) == 1 else None


def assert_one_chain(apis: Sequence[Api], upto: int | None = None) -> list[dict[str, Any]]:
    """Every node has the same block hash and state root at every height up to `upto`
    (default: the lowest height among them). Returns that chain."""
    if upto is None:
        upto = min(a.height() for a in apis)
    chains = [a.chain(upto) for a in apis]
    reference = [(b["hash"], b["header"]["state_root"]) for b in chains[0]]
    assert len(reference) == upto
    for api, chain in zip(apis[1:], chains[1:], strict=True):
        mine = [(b["hash"], b["header"]["state_root"]) for b in chain]
        if mine != reference:
            first = next(i for i, (x, y) in enumerate(zip(mine, reference, strict=False))
                         if x != y) if len(mine) == len(reference) else len(mine)
            raise AssertionError(f"{api.name} differs from {apis[0].name} at height "
                                 f"{first + 1}: {mine[first:first + 1]} vs "
                                 f"{reference[first:first + 1]}")
    return chains[0]


def wait_caught_up(laggard: Api, others: Sequence[Api], timeout: float) -> int:
    """Wait until `laggard` has the block the others had at the start, at that height."""
    target = max(o.height() for o in others)
    want = others[0].block(target)["hash"] if others[0].height() >= target else None

    def done() -> bool:
        if laggard.height() < target:
            return False
        reference = want or others[0].block(target)["hash"]
        return bool(laggard.block(target)["hash"] == reference)

    wait_for(done, timeout, f"{laggard.name} catches up to height {target}", interval=0.5)
    return target


def developer_signer(devnet: Devnet) -> Signer:
    store = Keystore(devnet.nodes[-1].base_path / "keystore")
    return Signer(store.load(devnet.developer, devnet.password()))


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
        for h, by_node in self.seen.items():
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


@dataclass
class PoaNet:
    net: RunningDevnet
    devnet: Devnet
    apis: list[Api]


@pytest.fixture(scope="module")
def poa() -> Iterator[PoaNet]:
    if p2p_missing():
        pytest.skip(str(p2p_missing()))
    with devnet_up("ccnet-", "--nodes", "4", "--validators", "3", "--base-port",
                   str(free_base_port(4)), "--interval-ms", str(POA_INTERVAL_MS),
                   ) as (net, devnet, apis):
        yield PoaNet(net, devnet, apis)


@requires_p2p
def test_transfers_to_the_basic_node_are_confirmed_everywhere(poa: PoaNet) -> None:
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
    submit_all(basic, txs)
    ids = [t.id.hex() for t in txs]
    wait_for(lambda: all(a.confirmed(i) for a in apis for i in ids), 90,
             "every transfer confirmed on every node", interval=0.5)
    for tx_id in ids:  # in the same block everywhere
        assert len({a.tx_status(tx_id)["block"] for a in apis}) == 1  # type: ignore[index]
    expected = {r: sum(1000 + i for i in range(40) if i % 5 == k)
                for k, r in enumerate(recipients)}
    for a in apis:
        assert {r: a.balance(r) for r in recipients} == expected
    # same head everywhere (blocks keep coming: poll until a moment when all agree)
    wait_for(lambda: same_head(apis), 60, "all four nodes report the same head", interval=0.1)
    chain = assert_one_chain(apis)
    log_step(f"one chain of {len(chain)} blocks with equal state roots on all 4 nodes")


@requires_p2p
def test_block_propagation_on_loopback(poa: PoaNet) -> None:
    """Measured, not asserted: seal -> head on all 4 nodes (p50, p99)."""
    devnet, apis = poa.devnet, poa.apis
    endpoints = [load_config(n.config_path).endpoint("events") for n in devnet.nodes]
    watcher = HeadWatcher(endpoints).start()
    time.sleep(20)
    watcher.stop()
    top = min(a.height() for a in apis)
    main = {bytes.fromhex(b["hash"]) for b in apis[0].chain(top)}
    result = watcher.report(main)
    assert result is not None, "no block was seen by all four nodes"
    print(f"\nPROPAGATION loopback, 4 nodes, interval {POA_INTERVAL_MS} ms: "
          + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in result.items()), flush=True)
    assert result["blocks"] >= 10


@requires_p2p
def test_validators_keep_sealing_while_one_is_down(poa: PoaNet) -> None:
    net, devnet, apis = poa.net, poa.devnet, poa.apis
    genesis = load_genesis(devnet.genesis_path)
    down, others = apis[0], apis[1:]
    log_step("stopping validator node1 (ccoin node stop)")
    net.stop_node(1)
    h0 = max(o.height() for o in others)
    wait_for(lambda: min(o.height() for o in others) >= h0 + 30, 120,
             "the two remaining validators seal 30 more blocks", interval=0.5)
    blocks = others[0].chain(h0 + 30)[h0 + 1:]
    signers = {b["header"]["coinbase"] for b in blocks}
    assert devnet.nodes[0].account.hex() not in signers
    assert signers == {devnet.nodes[1].account.hex(), devnet.nodes[2].account.hex()}
    its_turns = [b for b in blocks
                 if genesis.miners[b["header"]["height"] % 3] == devnet.nodes[0].account]
    assert its_turns, "node1's turns were sealed out of turn by the others"
    log_step(f"{len(blocks)} blocks sealed without node1 ({len(its_turns)} in its turn)")
    net.start_node(1)
    wait_for(down.up, 60, "node1's API is back")
    target = wait_caught_up(down, others, 120)
    log_step(f"node1 caught up to {target}")
    wait_for(lambda: down.get("/api/v1/mining")["blocks_sealed"] > 0, 60,
             "node1 seals again")
    assert_one_chain(apis)


@requires_p2p
def test_a_node_down_for_hundreds_of_blocks_catches_up(poa: PoaNet) -> None:
    net, apis = poa.net, poa.apis
    laggard, others = apis[3], apis[:3]
    log_step("stopping the basic node node4 (ccoin node stop)")
    net.stop_node(4)
    h0 = max(o.height() for o in others)
    started = time.monotonic()
    wait_for(lambda: min(o.height() for o in others) >= h0 + CATCH_UP_BLOCKS,
             CATCH_UP_BLOCKS * POA_INTERVAL_MS / 1000 * 4 + 60,
             f"{CATCH_UP_BLOCKS} blocks while node4 is down", interval=1.0)
    log_step(f"{CATCH_UP_BLOCKS} blocks in {time.monotonic() - started:.1f} s; "
             "restarting node4 (ccoin node start)")
    net.start_node(4)
    t0 = time.monotonic()
    wait_for(laggard.up, 60, "node4's API is back")
    target = wait_caught_up(laggard, others, 180)
    took = time.monotonic() - t0
    log_step(f"node4 caught up to height {target} in {took:.1f} s after its restart")
    print(f"\nCATCH-UP {target - h0} blocks behind, caught up in {took:.1f} s "
          f"(including process start)", flush=True)
    assert_one_chain(apis)


# --- PoW devnet ----------------------------------------------------------------------------


@requires_p2p
def test_pow_devnet_mines_retargets_and_converges() -> None:
    start_difficulty = 19
    with devnet_up("ccpow-", "--nodes", "3", "--pow", "--base-port", str(free_base_port(3)),
                   "--interval-ms", "150", "--difficulty", str(start_difficulty),
                   ) as (_, devnet, apis):
        wait_for(lambda: min(a.height() for a in apis) >= 35, 240,
                 "35 PoW blocks on every node", interval=1.0)
        # PoW keeps the first-seen tip on a tie, so stopping every miner at once can leave
        # equal-weight tips that nothing would ever settle; as in any PoW network the next
        # block does: node 1 mines on alone until its branch is strictly heavier
        log_step("stopping the miners of nodes 2..N (POST /api/v1/mining/stop)")
        for a in apis[1:]:
            a.http.post("/api/v1/mining/stop").raise_for_status()
        top = max(a.height() for a in apis)
        wait_for(lambda: min(a.height() for a in apis) >= top + 2, 120,
                 "two more blocks from node 1 on every node", interval=0.5)
        apis[0].http.post("/api/v1/mining/stop").raise_for_status()
        wait_for(lambda: same_head(apis), 90, "all PoW nodes converge on one head",
                 interval=0.5)
        chain = assert_one_chain(apis, apis[0].height())
        coinbases = {b["header"]["coinbase"] for b in chain}
        assert coinbases <= {n.account.hex() for n in devnet.nodes}
        assert len(coinbases) >= 2, "open mining: blocks from more than one node"
        diffs = [b["header"]["difficulty"] for b in chain]
        retarget = load_genesis(devnet.genesis_path).retarget_blocks
        changes = [b["header"]["height"] for prev, b in zip(chain, chain[1:], strict=False)
                   if b["header"]["difficulty"] != prev["header"]["difficulty"]]
        assert diffs[0] == start_difficulty
        assert changes, f"no retarget in {len(chain)} blocks: {diffs}"
        assert all(h % retarget == 0 for h in changes), changes
        log_step(f"PoW chain of {len(chain)} blocks from {len(coinbases)} miners; "
                 f"difficulty {diffs[0]} -> {diffs[-1]} at heights {changes}")


# --- partition and heal in network namespaces ------------------------------------------------


@dataclass
class NsNet:
    lab: netns.Lab
    devnet: Devnet
    apis: list[Api]
    procs: list[subprocess.Popen[bytes]]


@contextlib.contextmanager
def namespaced_devnet(base: Path) -> Iterator[NsNet]:
    """3 validators + 1 basic node, each in its own namespace, discovery in the hub."""
    lab = netns.Lab(4).setup()
    procs: list[subprocess.Popen[bytes]] = []
    apis: list[Api] = []
    devnet: Devnet | None = None
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def spawn(i: int, argv: list[str], name: str) -> None:
        with open(logs / f"{name}.log", "wb") as out:
            procs.append(subprocess.Popen(lab.argv(i, argv), stdout=out,
                                          stderr=subprocess.STDOUT, cwd=ROOT,
                                          start_new_session=True))

    try:
        devnet = create_devnet(base / "net", nodes=4, validators=3, interval_ms=300,
                               allow_empty=False, base_port=free_base_port(4),
                               p2p_hosts=[lab.addr(i) for i in range(1, 5)],
                               discovery_host=lab.hub_addr)
        spawn(0, [sys.executable, "-m", "services.discovery", "--host", lab.hub_addr,
                  "--port", str(devnet.discovery_port)], "discovery")
        for n in devnet.nodes:
            spawn(n.index, ccoin_argv("node", "start", "--config", str(n.config_path),
                                      "--type", n.node_type), n.name)
            sock = str(logs / f"{n.name}-api.sock")
            spawn(n.index, [sys.executable, "-m", "tests.framework.netns", "forward", sock,
                            f"127.0.0.1:{n.api_port}"], f"{n.name}-forward")
            apis.append(Api(n.name, uds=sock))
        def up(api: Api) -> bool:
            dead = [p.args for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"exited early: {dead}")
            return api.up()

        for a in apis:
            wait_for(functools.partial(up, a), 120, f"{a.name}'s API is up (in its namespace)",
                     interval=0.5)
        yield NsNet(lab, devnet, apis, procs)
    except BaseException:
        for f in sorted(logs.glob("*.log")):
            print(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}")
        if devnet is not None:
            for n in devnet.nodes:
                for svc in ("p2p", "state", "miner"):
                    p = n.base_path / "logs" / f"{svc}.log"
                    if p.exists():
                        print(f"--- {n.name} {svc}\n{p.read_text(errors='replace')[-2000:]}")
        raise
    finally:
        for a in apis:
            a.close()
        if devnet is not None:
            for n in devnet.nodes:
                ccoin("node", "stop", "--data", str(n.base_path), check=False, timeout=60)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        lab.teardown()
        kill_leftovers(str(base))


@requires_p2p
def test_partition_and_heal_apply_exactly_one_of_two_conflicting_spends() -> None:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"partition test needs network namespaces: {reason}")
    netns.sweep_stale()
    base = Path(tempfile.mkdtemp(prefix="ccns-", dir="/tmp"))
    try:
        with namespaced_devnet(base) as ns:
            run_partition(ns)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_partition(ns: NsNet) -> None:
    lab, devnet, apis = ns.lab, ns.devnet, ns.apis
    chain_id = devnet.network_id
    dev = developer_signer(devnet)
    wait_connected_idle(apis, dev, chain_id)

    # a second funded sender, for a transaction that is not in conflict
    w = PrivateKey.generate()
    n0 = apis[0].pending_nonce(devnet.developer)
    fund = Transaction.create(dev, chain_id=chain_id, nonce=n0, to=w.address, amount=10_000,
                              fee=1)
    submit_all(apis[0], [fund])
    wait_for(lambda: all(a.confirmed(fund.id.hex()) for a in apis), 60,
             "the funding transfer confirmed everywhere", interval=0.5)
    wait_for(lambda: same_head(apis), 30, "all nodes on one head before the cut")

    # the lone validator must be allowed to seal next: not the signer of the head
    head_signer = apis[0].block(apis[0].height())["header"]["coinbase"]
    lone = next(n.index for n in devnet.validators if n.account.hex() != head_signer)
    side1 = [n.index for n in devnet.validators if n.index != lone]
    side2 = [lone, 4]
    log_step(f"partition: nodes {side1} | nodes {side2} (node4 is the basic node)")
    for i in side2:
        lab.assign(i, 1)
    lab.partition()
    assert not lab.can_reach(side1[0], lone) and lab.can_reach(lone, 4)
    assert lab.can_reach(side1[0], side1[1])

    x, y, y2 = (PrivateKey.generate().address for _ in range(3))
    spend_a = Transaction.create(dev, chain_id=chain_id, nonce=n0 + 1, to=x, amount=777, fee=1)
    spend_b = Transaction.create(dev, chain_id=chain_id, nonce=n0 + 1, to=y, amount=888, fee=1)
    other = Transaction.create(Signer(w), chain_id=chain_id, nonce=0, to=y2, amount=5, fee=1)
    a_id, b_id, z_id = spend_a.id.hex(), spend_b.id.hex(), other.id.hex()
    s1 = [apis[i - 1] for i in side1]
    s2 = [apis[i - 1] for i in side2]
    submit_all(s1[0], [spend_a])
    submit_all(apis[3], [spend_b, other])
    wait_for(lambda: all(a.confirmed(a_id) for a in s1), 60, "spend A sealed on side 1",
             interval=0.5)
    wait_for(lambda: all(a.confirmed(b_id) for a in s2), 60, "spend B sealed on side 2",
             interval=0.5)
    # make side 1 clearly heavier (3 blocks against 1), so the outcome is no tie
    for k in (2, 3):
        more = Transaction.create(dev, chain_id=chain_id, nonce=n0 + k, to=x, amount=1, fee=1)
        submit_all(s1[0], [more])
        more_id = more.id.hex()
        wait_for(lambda: all(a.confirmed(more_id) for a in s1), 60,  # noqa: B023
                 f"side 1 block {k}", interval=0.5)
    assert not any(a.confirmed(b_id) for a in s1), "spend B crossed the partition"
    assert not any(a.confirmed(a_id) for a in s2), "spend A crossed the partition"
    log_step(f"side 1 at {s1[0].height()} with spend A, side 2 at {s2[0].height()} "
             "with spend B; healing")

    lab.heal()
    healed = time.monotonic()

    def converged() -> bool:
        if not same_head(apis):
            return False
        a_done = [a.confirmed(a_id) for a in apis]
        b_done = [a.confirmed(b_id) for a in apis]
        return (all(a_done) or all(b_done)) and all(a.confirmed(z_id) for a in apis)

    wait_for(converged, 180, "one chain and one spend everywhere after the heal", interval=1)
    log_step(f"converged {time.monotonic() - healed:.1f} s after the heal")
    for a in apis:
        assert a.confirmed(a_id) != a.confirmed(b_id), f"{a.name}: both or neither spend"
    winner = "A" if apis[0].confirmed(a_id) else "B"
    balances = [(a.balance(x), a.balance(y), a.balance(y2)) for a in apis]
    assert len(set(balances)) == 1, balances
    bx, by, bz = balances[0]
    assert (bx >= 777) != (by == 888) and bz == 5
    assert winner == "A", "side 1 was heavier: its spend should win"
    nonces = {a.pending_nonce(devnet.developer) for a in apis}
    assert nonces == {n0 + 4}
    assert_one_chain(apis)
    log_step(f"spend {winner} applied on all nodes, the other nowhere")


def wait_connected_idle(apis: Sequence[Api], dev: Signer, chain_id: int) -> None:
    """With empty blocks off the chain only moves with transactions: send one, wait until
    it is in a block on every node (which also proves they are connected)."""
    nonce = apis[0].pending_nonce(dev.address)
    tx = Transaction.create(dev, chain_id=chain_id, nonce=nonce, to=PrivateKey.generate().address,
                            amount=1, fee=1)
    submit_all(apis[3], [tx])
    wait_for(lambda: all(a.confirmed(tx.id.hex()) for a in apis), 120,
             "a first transfer reaches every node", interval=0.5)
