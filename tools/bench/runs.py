"""The bench's runs on real nodes, talking to them through `client.Client` only.

A throwaway devnet (`tools.devnet`) is started the way a user starts a node (`ccoin node
start`, supervisord in the foreground), then the stages run in order on the same chain:

1. single node, end to end: the pre-signed transfers go through the REST batch route from
   two threads, and each is timed from its batch's POST to the fetch of the block that
   confirmed it;
2. sync: the chain grows to the sync size, then a fresh node starts empty with the first
   as bootnode and is timed from its first peer link to reaching the first node's height;
   then a third node does the same with `--assume-valid <the head's hash>` (no transaction
   signature checked below it; everything else is);
3. propagation: four nodes; when each node's state service published each new head.

Last, with the nodes stopped, the chain is replayed from the genesis alloc and must reach
the head's state root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client import Client
from common.errors import CcoinError
from common.ledger import apply_block
from common.statehash import from_scratch, root_of
from common.types import Account, Transaction
from runtime.config import load_config, load_genesis
from tools.bench import bodies, profile, singles
from tools.bench.measure import (
    HeadWatcher,
    Result,
    median,
    p99,
    process_tree_cpu,
    process_tree_peak_kib,
    verify_rate,
)
from tools.bench.workload import CHAIN_ID, accounts, presign
from tools.devnet import Devnet, create_devnet, free_base_port

BATCH = 1000  # transfers per POST /txs/batch
# Client threads, each with one batch in flight: enough that the node, not the client's
# round trips, sets the pace. With two, both requests often waited on state while it built
# or imported a block, and the cores idled 12% of the run; with four, 8%, and the rate rose
# ~5% (A/B, six runs each, issue 13's notes).
SUBMITTERS = 4
INTERVAL_MS = 1000
MAX_BOUND = 4000  # transfers per block
FUNDS = 10**12
FOLLOW_PAGE = 20  # blocks per read of the confirmation follower
FOLLOW_WAIT = 0.05  # its longest wait for a head event before it looks again
HEALTH_TIMEOUT = 60.0
CONFIRM_TIMEOUT = 300.0
SYNC_TIMEOUT = 600.0
PEER_TIMEOUT = 120.0
FAST_POLL = 0.02  # while timing the sync
POLL = 0.2
SYNC_DONE = re.compile(r"done: height \d+ -> (\d+)")
AV_SKIPPED = re.compile(r"(\d+) signatures skipped under assume-valid")


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr)


def wait_until(condition: Callable[[], bool], timeout: float, failure: str,
               poll: float = POLL) -> None:
    """Poll `condition` until it holds; past `timeout` seconds the bench stops with
    `failure`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {failure}")
        time.sleep(poll)


# --- nodes ------------------------------------------------------------------------------


def start_node(config: Path, node_type: str, *extra: str) -> subprocess.Popen[bytes]:
    """`ccoin node start`, the way a user starts a node (supervisord in the foreground);
    `extra`: more of its options."""
    cmd = [sys.executable, "-c", "from tools.cli import main; main()", "node", "start",
           "--config", str(config), "--type", node_type, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_node(node: subprocess.Popen[bytes]) -> None:
    node.send_signal(signal.SIGTERM)
    try:
        node.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(node.pid, signal.SIGKILL)


def healthy(api: str) -> bool:
    try:
        with Client(api, timeout=1) as node:
            node.health()
        return True
    except CcoinError:
        return False


def wait_healthy(api: str) -> None:
    wait_until(lambda: healthy(api), HEALTH_TIMEOUT, "node did not become healthy")


def height_of(api: str) -> int:
    with Client(api, timeout=10) as node:
        return node.status().height


# --- submitting and following -----------------------------------------------------------


@dataclass
class Tally:
    """When each transfer was sent (its batch's POST) and confirmed (its block fetched),
    and what went wrong on the way."""

    sent_at: dict[bytes, float] = field(default_factory=dict)
    confirmed_at: dict[bytes, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def submit_all(api: str, txs: list[Transaction], tally: Tally) -> None:
    """POST the transfers in batches from `SUBMITTERS` threads."""
    chunks = [txs[i:i + BATCH] for i in range(0, len(txs), BATCH)]

    def worker(mine: list[list[Transaction]]) -> None:
        with Client(api, timeout=60) as node:
            for chunk in mine:
                t0 = time.monotonic()
                try:
                    results = node.submit_batch(chunk, raw_ids=True)
                except CcoinError as exc:
                    tally.errors.append(f"batch {exc.http_status}: {exc.message[:200]}")
                    continue
                for tx, item in zip(chunk, results, strict=True):
                    if "error" in item:
                        tally.errors.append(f"{tx.id.hex()[:16]}: {item['error']['code']}")
                    else:
                        tally.sent_at[tx.id] = t0

    # chunk k holds every account's nonce k; the threads may deliver k+1 before k, which
    # the pool holds as queued until the gap closes
    threads = [threading.Thread(target=worker, args=(chunks[k::SUBMITTERS],))
               for k in range(SUBMITTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def follow_blocks(api: str, want: set[bytes], tally: Tally, timeout: float) -> int:
    """Read each new block's transaction ids until every transfer in `want` is confirmed;
    returns the number of blocks seen. The ids only (`GET /blocks?order=asc`), as a
    client following its transfers would: whole blocks with the accounts they changed
    would have the node render ~1 MB of JSON per block for the bench alone. A new head is
    learnt from the event stream, so a block is read as soon as it is the head, not at the
    next poll."""
    blocks = 0
    deadline = time.monotonic() + timeout
    missing = set(want)  # what is left, kept as blocks come: no pass over `want` per poll
    with Client(api, timeout=30) as node, HeadSignal(api) as new_head:
        seen_height = node.block_count() - 1
        while missing and time.monotonic() < deadline:
            new_head.clear()
            page = node.blocks(start=seen_height + 1, limit=FOLLOW_PAGE, order="asc")
            if not page.blocks:
                # a head event, or the next look anyway (the stream may not be open yet)
                new_head.wait(FOLLOW_WAIT)
                continue
            now = time.monotonic()
            for block in page.blocks:
                blocks += 1
                for tx in block.txs:
                    txid = bytes.fromhex(tx["id"] if isinstance(tx, dict) else tx)
                    tally.confirmed_at.setdefault(txid, now)
                    missing.discard(txid)
            seen_height = page.blocks[-1].height
    return blocks


class HeadSignal(threading.Event):
    """Set at each head event of the node's stream (`GET /events?types=head`), by a thread
    of its own. The thread ends at the first event after the `with` block (the chain has
    one every block interval), or with the node."""

    def __init__(self, api: str) -> None:
        super().__init__()
        self._api = api
        self._done = threading.Event()

    def __enter__(self) -> HeadSignal:
        threading.Thread(target=self._listen, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()

    def _listen(self) -> None:
        with Client(self._api, timeout=30) as stream:
            try:
                for _ in stream.events(types=["head"], reconnect=False):
                    if self._done.is_set():
                        return
                    self.set()
            except CcoinError:  # the node stopped
                return


def confirm(api: str, txs: list[Transaction], tally: Tally) -> int:
    """Submit `txs` and follow blocks until all are confirmed; returns blocks seen."""
    want = {t.id for t in txs}
    seen: list[int] = []
    follower = threading.Thread(target=lambda: seen.append(
        follow_blocks(api, want, tally, timeout=CONFIRM_TIMEOUT)))
    follower.start()
    submit_all(api, txs, tally)
    follower.join()
    return seen[0] if seen else 0


# --- the stages -------------------------------------------------------------------------


def single_node(api: str, node_pid: int, txs: list[Transaction], tally: Tally, *,
                n_accounts: int, verify_1: float, verify_2: float) -> Result:
    cpu_before = process_tree_cpu(node_pid)
    client_before = time.process_time()
    t0 = time.monotonic()
    blocks = confirm(api, txs, tally)
    client_cpu = time.process_time() - client_before
    cpu = {name: used - cpu_before.get(name, 0.0)
           for name, used in process_tree_cpu(node_pid).items()}
    want = {t.id for t in txs}
    confirmed_at, sent_at = tally.confirmed_at, tally.sent_at
    t_end = max((confirmed_at[i] for i in want if i in confirmed_at), default=time.monotonic())
    t_submitted = max((sent_at[i] for i in want if i in sent_at), default=t_end)
    peak = process_tree_peak_kib(node_pid)
    lat = sorted(confirmed_at[i] - sent_at[i] for i in want
                 if i in confirmed_at and i in sent_at)
    wall = t_end - t0
    return Result(
        n_txs=len(txs), n_accounts=n_accounts, tps=len(confirmed_at.keys() & want) / wall,
        submit_tps=len(want & sent_at.keys()) / max(t_submitted - t0, 1e-9),
        p50=median(lat), p99=p99(lat), blocks=blocks, peak_kib=peak, verify_1=verify_1,
        verify_2=verify_2, replay_ok=False, wall=wall, cpu=cpu, client_cpu=client_cpu)


def transactions_up_to(api: str, height: int) -> int:
    """How many transactions the chain holds in blocks 1..height (every stage's, the ones
    of the single-submission and large-request stages too)."""
    total, start = 0, 1
    with Client(api, timeout=30) as node:
        while start <= height:
            page = node.blocks(start=start, limit=100, order="asc")
            total += sum(b.tx_count for b in page.blocks if b.height <= height)
            if not page.blocks:
                break
            start = page.blocks[-1].height + 1
    return total


def p2p_log(config: Path) -> str:
    path = load_config(config).log_dir / "p2p.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def wait_sync_start(config: Path, what: str) -> None:
    """Until the node's p2p log says its first sync began: the start of the window whose
    CPU is counted (the API's peer count is a status the gateway caches for a second, long
    next to a sync of a second or two)."""
    wait_until(lambda: '"syncing from ' in p2p_log(config), PEER_TIMEOUT,
               f"the {what} node never began to sync", poll=FAST_POLL)


def sync(net: Devnet, procs: list[subprocess.Popen[bytes]], result: Result) -> None:
    """A fresh node, started empty, catches up with the first; timed from its first sync's
    start (and from its start) to its height reaching the first node's."""
    target = height_of(net.nodes[0].api_url)
    total_txs = transactions_up_to(net.nodes[0].api_url, target)
    progress(f"a fresh node syncs {target} blocks ({total_txs} transactions)...")
    fresh = net.nodes[1]
    t_boot = time.monotonic()
    procs.append(start_node(fresh.config_path, "basic"))
    wait_healthy(fresh.api_url)
    with Client(fresh.api_url, timeout=10) as node:
        wait_sync_start(fresh.config_path, "fresh")
        cpu0 = [process_tree_cpu(p.pid) for p in procs]
        t_sync = time.monotonic()
        wait_until(lambda: node.status().height >= target, SYNC_TIMEOUT,
                   "sync did not finish in 10 minutes", poll=FAST_POLL)
    result.sync_seconds = time.monotonic() - t_sync
    for role, proc, before in zip(("serving", "syncing"), procs, cpu0, strict=True):
        for name, used in process_tree_cpu(proc.pid).items():
            result.sync_cpu[f"{role} {name}"] = used - before.get(name, 0.0)
    result.sync_boot_seconds = time.monotonic() - t_boot
    result.sync_blocks, result.sync_txs = target, total_txs
    result.sync_log_seconds = logged_sync_seconds(p2p_log(fresh.config_path), target)


def sync_assume_valid(net: Devnet, procs: list[subprocess.Popen[bytes]],
                      result: Result) -> None:
    """As `sync`, the same chain, by another fresh node (the devnet's last) started with
    `--assume-valid <the first node's head>`: it checks seals, Merkle roots, state roots and
    balances, not signatures. Stopped afterwards, so that propagation runs on 4 nodes."""
    api = net.nodes[0].api_url
    target = height_of(api)
    with Client(api, timeout=10) as node:
        head = node.block(target).hash
    progress(f"a fresh node syncs {target} blocks with --assume-valid {head[:16]}...")
    fresh = net.nodes[-1]
    t_boot = time.monotonic()
    proc = start_node(fresh.config_path, "basic", "--assume-valid", head)
    try:
        wait_healthy(fresh.api_url)
        with Client(fresh.api_url, timeout=10) as node:
            wait_sync_start(fresh.config_path, "assume-valid")
            cpu0 = [process_tree_cpu(p.pid) for p in (*procs, proc)]
            t_sync = time.monotonic()
            wait_until(lambda: node.status().height >= target, SYNC_TIMEOUT,
                       "assume-valid sync did not finish in 10 minutes", poll=FAST_POLL)
        result.av_seconds = time.monotonic() - t_sync
        result.av_boot_seconds = time.monotonic() - t_boot
        roles = ("serving", *("peer" for _ in procs[1:]), "syncing")
        for role, p, before in zip(roles, (*procs, proc), cpu0, strict=True):
            for name, used in process_tree_cpu(p.pid).items():
                key = f"{role} {name}"
                result.av_cpu[key] = result.av_cpu.get(key, 0.0) + used - before.get(name, 0.0)
    finally:
        stop_node(proc)
    # the p2p log says what was skipped (proof that the blocks did skip their signatures),
    # and when the sync began and ended, closer than polling the API can
    text = p2p_log(fresh.config_path)
    result.av_skipped = sum(int(n) for n in AV_SKIPPED.findall(text))
    result.av_log_seconds = logged_sync_seconds(text, target)


def logged_sync_seconds(text: str, target: int) -> float:
    """From a p2p log (JSON lines): the first sync's start to the end of the sync that took
    the node to `target` or above; 0.0 when the log does not say."""
    start = None
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        msg = str(entry.get("msg", ""))
        if start is None and msg.startswith("syncing from "):
            start = float(entry["ts"])
        elif start is not None and (done := SYNC_DONE.search(msg)) and int(done[1]) >= target:
            return float(entry["ts"]) - start
    return 0.0


def propagation(net: Devnet, procs: list[subprocess.Popen[bytes]], result: Result,
                n_blocks: int) -> None:
    """Four nodes: from each block's seal (its header's timestamp) to the last node's state
    publishing it as head, and the spread from the first node to the last."""
    progress(f"propagation over {n_blocks} blocks on 4 nodes...")
    api = net.nodes[0].api_url
    members = net.nodes[2:4]  # a fifth node, the assume-valid sync's, stays stopped
    for member in members:
        procs.append(start_node(member.config_path, "basic"))
    for member in members:
        wait_healthy(member.api_url)
    top = height_of(api)
    wait_until(lambda: min(height_of(n.api_url) for n in net.nodes[:4]) >= top, SYNC_TIMEOUT,
               "the nodes did not catch up")
    watcher = HeadWatcher([load_config(n.config_path).endpoint("events")
                           for n in net.nodes[:4]])
    try:
        last = height_of(api) + n_blocks + 1
        blocks_due = 60.0 + 2 * (n_blocks + 1) * INTERVAL_MS / 1000
        wait_until(lambda: height_of(api) >= last, blocks_due,
                   f"the chain did not reach height {last}")
        with Client(api, timeout=10) as node:
            final = bytes.fromhex(node.block(last).hash)
        wait_until(lambda: watcher.seen_by_all(final), 30.0,
                   "not every node published the last block", poll=0.05)
    finally:
        watcher.stop()
    prop, spread = [], []
    with Client(api, timeout=10) as node:
        for h in watcher.seen[0]:
            if not watcher.seen_by_all(h):
                continue
            sealed = node.block(h).timestamp / 1000
            times = [seen[h] for seen in watcher.seen]
            prop.append(max(times) - sealed)
            spread.append(max(times) - min(times))
    prop.sort()
    spread.sort()
    if prop:
        result.prop_blocks = len(prop)
        result.prop_p50, result.prop_p99 = median(prop), p99(prop)
        result.spread_p50, result.spread_p99 = median(spread), p99(spread)


def replay_from_genesis(chain_dir: Path, genesis_path: Path) -> bool:
    """Re-apply every main-chain block from the genesis alloc; True if every header's
    state root and the stored accounts agree with the replay."""
    from services.state.store import Store

    genesis = load_genesis(genesis_path)
    accounts_now: dict[bytes, Account] = dict(genesis.initial_accounts())
    value = from_scratch(accounts_now.items())
    store = Store(chain_dir)
    try:
        height = 1
        while (h := store.hash_at(height)) is not None:
            block = store.block(h)
            assert block is not None
            changes = apply_block(lambda a: accounts_now.get(a, Account()), value, block,
                                  genesis.network_id, genesis.reward)
            accounts_now.update(changes.after)
            value = changes.state_value
            height += 1
        stored = from_scratch(store.all_accounts())
        head = store.hash_at(height - 1)
        assert head is not None
        header = store.header(head)
        return header is not None and root_of(stored) == root_of(value) == header.state_root
    finally:
        store.close()


def end_to_end_rounds(api: str, node_pid: int, txs: list[Transaction], tally: Tally, *,
                      rounds: int, n_accounts: int, verify_1: float) -> Result:
    """`rounds` end-to-end runs of len(txs) // rounds transfers each, on the same node, each
    read beside a two-process verify rate measured just before it; the round with the
    median ratio, with every round's (rate, ceiling) in `rounds`. One run of a few
    seconds on a shared machine can land anywhere in a ±10% band: the median of three
    is what a ratio is read from."""
    each = len(txs) // rounds
    done: list[Result] = []
    for k in range(rounds):
        verify_2 = verify_rate(2)
        progress(f"end to end, round {k + 1} of {rounds}: {each} transfers...")
        done.append(single_node(api, node_pid, txs[k * each:(k + 1) * each], tally,
                                n_accounts=n_accounts, verify_1=verify_1, verify_2=verify_2))
    mid = sorted(done, key=lambda r: r.tps / r.verify_2)[len(done) // 2]
    mid.rounds = [(r.tps, r.verify_2) for r in done]
    return mid


def run(n_txs: int, n_accounts: int, sync_txs: int, prop_blocks: int, workdir: Path,
        singles_n: int = 0, big_bodies: int = 0, rounds: int = 1) -> Result:
    """Every stage asked for, on one chain; the nodes are stopped whatever happens. The
    end-to-end stage runs `rounds` times `n_txs` transfers (`end_to_end_rounds`)."""
    funded = accounts(n_accounts + 2 + singles.CLIENTS + big_bodies)
    signers = funded[:n_accounts]
    single_signers = funded[n_accounts:n_accounts + 2 + singles.CLIENTS]
    body_signers = funded[n_accounts + 2 + singles.CLIENTS:]
    e2e_txs = n_txs * rounds
    total = max(e2e_txs, sync_txs)
    progress(f"pre-signing {total} transfers among {n_accounts} accounts...")
    txs = presign(total, signers)
    progress("profiling the node's steps in-process...")
    steps = profile.run(txs[:min(n_txs, profile.MAX_TXS)], [s.address for s in signers])
    progress("measuring Ed25519 verification (1 process)...")
    v1 = verify_rate(1)
    n_nodes = 4 if prop_blocks else 2 if sync_txs else 1
    n_nodes += 1 if sync_txs else 0  # the last: the assume-valid sync's
    net = create_devnet(workdir, nodes=n_nodes, validators=1, base_port=free_base_port(n_nodes),
                        interval_ms=INTERVAL_MS, max_bound=MAX_BOUND, network_id=CHAIN_ID,
                        extra_alloc={s.address: FUNDS for s in funded})
    first = net.nodes[0]
    api = first.api_url
    procs = [start_node(first.config_path, "validator")]
    tally = Tally()
    try:
        wait_healthy(api)
        progress(f"node up at {api}")
        result = end_to_end_rounds(api, procs[0].pid, txs[:e2e_txs], tally, rounds=rounds,
                                   n_accounts=n_accounts, verify_1=v1)
        result.profile = steps
        if singles_n:
            progress(f"single submissions: {singles_n} node-signed, {singles_n} "
                     f"client-signed, {singles.CLIENTS} concurrent clients...")
            result.singles = singles.run(api, first.config_path, first.account,
                                         single_signers, singles_n, node_pid=procs[0].pid)
        if sync_txs > e2e_txs:
            progress(f"growing the chain to {sync_txs} transfers...")
            confirm(api, txs[e2e_txs:], tally)
        if sync_txs:
            progress("measuring Ed25519 verification again (2 processes)...")
            result.sync_verify_2 = verify_rate(2)
            sync(net, procs, result)
            sync_assume_valid(net, procs, result)
        if prop_blocks:
            propagation(net, procs, result, prop_blocks)
        if big_bodies:  # last: its 1 KB transfers would change what the sync stage syncs
            progress(f"{big_bodies} large batch requests at once...")
            result.bodies = bodies.run(api, procs[0].pid, body_signers)
    finally:
        for proc in reversed(procs):
            stop_node(proc)
    if tally.errors:
        progress(f"{len(tally.errors)} submission errors, first: {tally.errors[0]}")
    missing = {t.id for t in txs} - tally.confirmed_at.keys()
    if missing:
        progress(f"{len(missing)} transfers never confirmed")
    replay_ok = replay_from_genesis(first.base_path / "chain", net.base_path / "genesis.json")
    result.replay_ok = replay_ok and not missing and not tally.errors and (
        result.singles is None or result.singles.all_confirmed)
    return result
