"""`ccoin bench --scale`: the node on a big chain, against the same node on a new one.

For each size (accounts; transfers = `TRANSFERS_PER_ACCOUNT` per account) a throwaway
devnet is made whose genesis funds the builder's senders and the bench's e2e accounts,
its chain is built in-process (`scalechain`: the state's own template, seal and import
code), and then, the way `make bench` does it, a real node is started on that data dir
(`ccoin node start`) and measured:

- cold start: from `ccoin node start` to /health answering and to /api/v1/ready ready;
- end to end: the bench's workload (`runs.single_node`: pre-signed transfers through the
  batch route, timed to their confirming block), alone, `E2E_RUNS` times (the median is
  the figure); then as many again while clients
  query the account and the history of random accounts of the chain (`QueryLoad`,
  `QUERY_CLIENTS` of them), whose latencies are kept;
- the node's peak RSS (VmHWM of each service), after all that;
- with the node stopped, the chain directory's disk use per transfer it holds;
- optionally, a fresh node syncing the whole chain from it (`sync_fresh_node`), and that
  node's peak RSS once it holds the whole chain.

The first and last points are size 0: a new chain with only the e2e accounts, the
small-chain rate every other point is compared with, measured in the same run.
`scalereport` writes the table and the plot.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client import Client, NodeStatus
from common.errors import CcoinError
from common.types import Transaction
from runtime.config import load_genesis
from tools.bench import runs
from tools.bench.measure import median, p99, process_tree_peak_kib, service_memory_kib
from tools.bench.runs import progress
from tools.bench.scalechain import Built, ScalePlan, build_chain, receiver, scale_devnet
from tools.bench.workload import CHAIN_ID, accounts, presign
from tools.devnet import Devnet, free_base_port

SIZES = (10_000, 100_000, 1_000_000)
TRANSFERS_PER_ACCOUNT = 2
E2E_ACCOUNTS = 1_000
QUERY_CLIENTS = 4
QUERY_RATE = 50.0  # account + history requests per second per client, while e2e runs
QUERY_TIMEOUT = 10.0
READY_TIMEOUT = 120.0
SYNC_TIMEOUT = 1200.0  # 2M transfers at a few thousand a second, on a shared machine
SYNC_POLL = 0.25  # the fresh node's height: the sync takes minutes, a quarter second will do
BASELINE_ACCOUNTS = 3  # the smallest chain a plan builds: size 0 builds nothing
# A run of 20,000 transfers takes about a second, and on a big chain whether one of
# LevelDB's compactions lands in it or not moves state's CPU a transfer by half (22 to 55 us
# at 1M accounts, one run to the next): each size's rate is the median of this many runs.
E2E_RUNS = 3


@dataclass
class Point:
    """What one size measured."""

    accounts: int  # planned (0: the new chain, only the e2e accounts)
    transfers: int  # built before the node started
    blocks: int
    build_seconds: float
    cold_health: float = 0.0  # `ccoin node start` to /health answering
    cold_ready: float = 0.0  # ... to /api/v1/ready saying ready
    tps: float = 0.0  # end to end, nothing else asked of the node: the median run's
    tps_runs: list[float] = field(default_factory=list)  # every run's, in order
    loaded_tps: float = 0.0  # the next as many transfers, under the query load
    cpu_us: dict[str, float] = field(default_factory=dict)  # the median run's, per transfer
    confirm_p50: float = 0.0
    confirm_p99: float = 0.0
    peak_kib: dict[str, int] = field(default_factory=dict)
    account_ms: list[float] = field(default_factory=list)
    history_ms: list[float] = field(default_factory=list)
    query_errors: int = 0
    disk_bytes: int = 0
    chain_transfers: int = 0  # on the chain when the disk was measured
    sync_seconds: float = 0.0
    sync_txs: int = 0
    sync_blocks: int = 0
    # each service's resident memory after the e2e run, (anonymous, file-backed) KiB: the
    # file-backed part of state is mostly LevelDB's table files, which it reads through mmap
    rss_split: dict[str, tuple[int, int]] = field(default_factory=dict)
    sync_peak_kib: dict[str, int] = field(default_factory=dict)  # the syncing node's
    sync_misses: int = 0  # status polls the syncing node did not answer
    sync_error: str = ""

    @property
    def rss_mib(self) -> float:
        return sum(self.peak_kib.values()) / 1024

    @property
    def anon_mib(self) -> float:
        return sum(anon for anon, _ in self.rss_split.values()) / 1024

    def latency(self, which: str) -> tuple[float, float]:
        values = sorted(self.account_ms if which == "account" else self.history_ms)
        return median(values), p99(values)


@dataclass
class ScaleRun:
    points: list[Point]
    e2e_txs: int
    started: float  # wall clock
    seconds: float
    sync: bool
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load, at start and end


def disk_bytes(path: Path) -> int:
    """What `du` counts: the blocks the files under `path` occupy."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(Path(root) / name).st_blocks * 512
            except OSError:
                continue
    return total


class QueryLoad:
    """One client asking, at up to `QUERY_RATE`, for the account and then the history of random
    addresses of the chain, on a thread of its own until `stop`; every latency is kept
    (milliseconds). Paced so it adds the same load on every chain size."""

    def __init__(self, api: str, addresses: list[bytes], seed: int) -> None:
        self.account_ms: list[float] = []
        self.history_ms: list[float] = []
        self.errors = 0
        self._api = api
        self._addresses = addresses
        self._seed = seed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-queries", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        rng = random.Random(self._seed)
        period = 2 / QUERY_RATE  # one account and one history request per period
        with Client(self._api, timeout=QUERY_TIMEOUT) as node:
            next_at = time.monotonic()
            while not self._stop.is_set():
                address = rng.choice(self._addresses)
                for ask, into in ((node.account, self.account_ms),
                                  (node.history, self.history_ms)):
                    t0 = time.perf_counter()
                    try:
                        ask(address)
                    except CcoinError:
                        self.errors += 1
                        continue
                    into.append((time.perf_counter() - t0) * 1000)
                next_at += period
                # pacing, not waiting for a condition: the stop event ends it at once
                self._stop.wait(max(0.0, next_at - time.monotonic()))


def rss_split(root_pid: int) -> dict[str, tuple[int, int]]:
    """Each service's resident memory now, (anonymous, file-backed) KiB, from /proc."""
    return {name: (anon, file) for name, (anon, file)
            in service_memory_kib(root_pid, "RssAnon", "RssFile").items()}


def ready(api: str) -> bool:
    try:
        with Client(api, timeout=1) as node:
            return node.ready().ready
    except CcoinError:
        return False


def sync_fresh_node(net: Devnet, procs: list[subprocess.Popen[bytes]], point: Point) -> None:
    """A fresh node, started empty with the first as bootnode, timed from its first peer
    link to reaching the first node's height (as `runs.sync`, but a status poll the busy
    syncing node does not answer counts as "not yet", not as the end of the run)."""
    api = net.nodes[0].api_url
    target = runs.height_of(api)
    total = runs.transactions_up_to(api, target)
    progress(f"a fresh node syncs {target} blocks ({total:,} transactions)...")
    fresh = net.nodes[1]
    procs.append(runs.start_node(fresh.config_path, "basic"))
    runs.wait_healthy(fresh.api_url)

    def status_says(condition: Callable[[NodeStatus], bool]) -> bool:
        try:
            with Client(fresh.api_url, timeout=10) as node:
                return condition(node.status())
        except CcoinError:
            point.sync_misses += 1
            return False

    runs.wait_until(lambda: status_says(lambda st: st.peers > 0), runs.PEER_TIMEOUT,
                    "the fresh node found no peer", poll=runs.FAST_POLL)
    t0 = time.monotonic()
    runs.wait_until(lambda: status_says(lambda st: st.height >= target), SYNC_TIMEOUT,
                    f"sync did not finish in {SYNC_TIMEOUT:.0f} s", poll=SYNC_POLL)
    point.sync_seconds = time.monotonic() - t0
    point.sync_txs, point.sync_blocks = total, target
    point.sync_peak_kib = process_tree_peak_kib(procs[-1].pid)


def measure_point(size: int, e2e: list[Transaction], workdir: Path, *, sync: bool) -> Point:
    """Build a chain of `size` accounts (none for 0), start a node on it, measure: the
    first `E2E_RUNS` parts of `e2e` end to end alone, one after the other, the last part
    under the query load."""
    plan = ScalePlan(max(size, BASELINE_ACCOUNTS), TRANSFERS_PER_ACCOUNT * size)
    nodes = 2 if sync else 1
    net, senders, authority = scale_devnet(
        workdir, plan, nodes=nodes, base_port=free_base_port(nodes),
        interval_ms=runs.INTERVAL_MS, max_bound=runs.MAX_BOUND, network_id=CHAIN_ID,
        extra_alloc={s.address: runs.FUNDS for s in accounts(E2E_ACCOUNTS)})
    first = net.nodes[0]
    chain_dir = first.base_path / "chain"
    built = Built(0, 0, 0, 0.0)  # the new chain: genesis only
    if size:
        progress(f"building {plan.n_accounts:,} accounts, {plan.n_transfers:,} transfers...")
        built = build_chain(chain_dir, load_genesis(net.genesis_path), authority, plan,
                            senders, progress=progress)
    point = Point(size, built.transfers, built.blocks, built.seconds)
    if size:
        progress(f"built {built.blocks} blocks in {built.seconds:.0f} s; starting the node")
        addresses = [*(receiver(i) for i in range(plan.n_receivers)),
                     *(s.address for s in senders)]
    else:
        addresses = [s.address for s in accounts(E2E_ACCOUNTS)]
    api = first.api_url
    t0 = time.monotonic()
    procs = [runs.start_node(first.config_path, "validator")]
    try:
        runs.wait_until(lambda: runs.healthy(api), runs.HEALTH_TIMEOUT,
                        "node did not answer /health", poll=runs.FAST_POLL)
        point.cold_health = time.monotonic() - t0
        runs.wait_until(lambda: ready(api), READY_TIMEOUT, "node did not become ready",
                        poll=runs.FAST_POLL)
        point.cold_ready = time.monotonic() - t0
        each = len(e2e) // (E2E_RUNS + 1)
        parts = [e2e[i * each:(i + 1) * each] for i in range(E2E_RUNS)]
        loaded = e2e[E2E_RUNS * each:]
        progress(f"ready in {point.cold_ready:.1f} s; {E2E_RUNS} x {each:,} transfers end to "
                 "end, then as many under query load...")
        results = [runs.single_node(api, procs[0].pid, part, runs.Tally(),
                                    n_accounts=E2E_ACCOUNTS, verify_1=0.0, verify_2=0.0)
                   for part in parts]
        point.tps_runs = [r.tps for r in results]
        mid = sorted(results, key=lambda r: r.tps)[len(results) // 2]
        point.tps, point.confirm_p50, point.confirm_p99 = mid.tps, mid.p50, mid.p99
        point.cpu_us = {name: used / each * 1e6 for name, used in mid.cpu.items()}
        queries = [QueryLoad(api, addresses, seed) for seed in range(QUERY_CLIENTS)]
        try:
            point.loaded_tps = runs.single_node(
                api, procs[0].pid, loaded, runs.Tally(), n_accounts=E2E_ACCOUNTS,
                verify_1=0.0, verify_2=0.0).tps
        finally:
            for load in queries:
                load.stop()
        for load in queries:
            point.account_ms += load.account_ms
            point.history_ms += load.history_ms
            point.query_errors += load.errors
        point.peak_kib = process_tree_peak_kib(procs[0].pid)
        point.rss_split = rss_split(procs[0].pid)
        if sync and size:  # a new chain has nothing to sync
            try:
                sync_fresh_node(net, procs, point)
            except (SystemExit, CcoinError) as exc:  # the other figures still stand
                point.sync_error = str(exc)
                progress(f"the sync stage failed: {exc}")
    finally:
        for proc in reversed(procs):
            runs.stop_node(proc)
    point.disk_bytes = disk_bytes(chain_dir)
    point.chain_transfers = built.transfers + len(e2e)  # both halves
    progress(f"{size:,} accounts: {point.tps:,.0f} transfers/s, RSS {point.rss_mib:.0f} MiB, "
             f"ready in {point.cold_ready:.1f} s, {point.disk_bytes:,} bytes on disk, sync "
             f"{point.sync_seconds:.0f} s {point.sync_error}")
    return point


def run(sizes: list[int], e2e_txs: int, workdir: Path, *, sync: bool) -> ScaleRun:
    """The new chain, every size, the new chain again, each in its own devnet (removed
    after it)."""
    started_wall, started = time.time(), time.monotonic()
    load_before = os.getloadavg()[0]
    progress(f"pre-signing {E2E_RUNS + 1} x {e2e_txs:,} e2e transfers among "
             f"{E2E_ACCOUNTS:,} accounts...")
    # in nonce order: each part runs after the one before it, the last under the query load
    e2e = presign((E2E_RUNS + 1) * e2e_txs, accounts(E2E_ACCOUNTS))
    points = []
    for size in [0, *sizes, 0]:  # the new chain first and last: see scalereport.base_tps
        progress(f"--- {size:,} accounts ---")
        where = workdir / f"size{size}"
        points.append(measure_point(size, e2e, where, sync=sync))
        shutil.rmtree(where, ignore_errors=True)
    return ScaleRun(points, e2e_txs, started_wall, time.monotonic() - started, sync,
                    (load_before, os.getloadavg()[0]))
