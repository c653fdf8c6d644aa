"""What the bench measures besides the node's own answers: the machine's Ed25519
verification rate, each service's peak memory and CPU time (from /proc), when each node
published each new head (its event socket), and the percentiles the report prints."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import zmq.asyncio

from common import crypto
from common.messages import HeadEvent
from common.types import Transaction
from runtime.bus import Subscription
from tools.bench.workload import CHAIN_ID, bench_key

if TYPE_CHECKING:
    from tools.bench.bodies import BodiesResult
    from tools.bench.singles import SinglesResult

VERIFY_CHUNK = 200  # verifications between two clock reads


@dataclass
class Result:
    """Everything one bench run measured; the stages fill it in as they go."""

    n_txs: int
    n_accounts: int
    tps: float
    submit_tps: float
    p50: float
    p99: float
    blocks: int
    peak_kib: dict[str, int]
    verify_1: float
    verify_2: float
    replay_ok: bool
    wall: float
    cpu: dict[str, float] = field(default_factory=dict)  # end to end: CPU s per service
    client_cpu: float = 0.0  # end to end: CPU s of the bench's own client (same cores)
    profile: dict[str, float] = field(default_factory=dict)  # µs per transfer, by step
    # each end-to-end round's (rate, two-process verify rate just before it); this Result
    # is the round with the median ratio
    rounds: list[tuple[float, float]] = field(default_factory=list)
    sync_txs: int = 0
    # the two-process verify rate again, just before the sync stage: the ratio to it is read
    # beside its own ceiling, not one measured a minute before on a shared machine
    sync_verify_2: float = 0.0
    sync_blocks: int = 0
    sync_seconds: float = 0.0
    sync_boot_seconds: float = 0.0
    sync_cpu: dict[str, float] = field(default_factory=dict)
    av_seconds: float = 0.0  # the same sync with --assume-valid <head>
    av_boot_seconds: float = 0.0  # from its `ccoin node start` to synced
    av_cpu: dict[str, float] = field(default_factory=dict)
    # from each fresh node's p2p log: its first sync's start to being synced
    sync_log_seconds: float = 0.0
    av_log_seconds: float = 0.0
    av_skipped: int = 0  # signatures its p2p log says it skipped
    prop_blocks: int = 0
    prop_p50: float = 0.0
    prop_p99: float = 0.0
    spread_p50: float = 0.0
    spread_p99: float = 0.0
    singles: SinglesResult | None = None
    bodies: BodiesResult | None = None


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def p99(ordered: Sequence[float]) -> float:
    """The 99th percentile of values sorted ascending (0 for none)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


# --- the machine ------------------------------------------------------------------------


def _verify_loop(job: tuple[bytes, bytes, bytes, float]) -> int:
    pk, msg, sig, seconds = job
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(VERIFY_CHUNK):
            crypto.verify(0, pk, msg, sig)
        count += VERIFY_CHUNK
    return count


def verify_rate(processes: int, seconds: float = 2.0) -> float:
    """Ed25519 verifications per second with `processes` worker processes."""
    tx = Transaction.create(bench_key(0), chain_id=CHAIN_ID, nonce=0, to=bytes(20), amount=1)
    job = (tx.public_key, tx.signing_payload(), tx.signature, seconds)
    if processes == 1:
        return _verify_loop(job) / seconds
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return sum(pool.map(_verify_loop, [job] * processes)) / seconds


# --- the node's processes, from /proc ---------------------------------------------------


def service_pids(root_pid: int) -> dict[str, int]:
    """The pid of each service under `root_pid` (`ccoin node start`, whose supervisord is a
    child of its own), by program name (state, api, p2p, miner): every descendant whose
    command line runs `services.<name>`."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(entry)
        parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        name = next((a.decode().split(".")[-1] for a in cmdline if a.startswith(b"services.")),
                    "")
        if name:
            names[pid] = name

    def under_root(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == root_pid:
                return True
        return False

    return {name: pid for pid, name in names.items() if under_root(pid)}


def service_memory_kib(root_pid: int, *keys: str) -> dict[str, tuple[int, ...]]:
    """The /proc status figures `keys` (e.g. VmHWM, RssAnon), in KiB, of each service under
    `root_pid`, by program name."""
    out: dict[str, tuple[int, ...]] = {}
    for name, pid in service_pids(root_pid).items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out[name] = tuple(int(fields.get(key, "0 kB").split()[0]) for key in keys)
    return out


def process_tree_peak_kib(root_pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) of each child of supervisord, by program name."""
    return {name: peak for name, (peak,) in service_memory_kib(root_pid, "VmHWM").items()}


def process_tree_cpu(root_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each child of supervisord, by name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, pid in service_pids(root_pid).items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    return out


# --- when each node published each head -------------------------------------------------


class HeadWatcher:
    """Records, for each node, when its state service published each new head (wall clock,
    seconds), from the nodes' event sockets, on a thread of its own until `stop`."""

    POLL_MS = 100  # how soon a stop request is noticed

    def __init__(self, endpoints: Sequence[str]) -> None:
        self.seen: list[dict[bytes, float]] = [{} for _ in endpoints]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._watch_all(endpoints),),
                                        name="bench-heads", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def seen_by_all(self, block_hash: bytes) -> bool:
        return all(block_hash in seen for seen in self.seen)

    async def _watch_all(self, endpoints: Sequence[str]) -> None:
        ctx = zmq.asyncio.Context()
        try:
            await asyncio.gather(*(self._watch(ctx, endpoint, seen)
                                   for endpoint, seen in zip(endpoints, self.seen, strict=True)))
        finally:
            ctx.term()

    async def _watch(self, ctx: zmq.asyncio.Context, endpoint: str,
                     seen: dict[bytes, float]) -> None:
        events = Subscription(ctx, endpoint, (b"head",))
        try:
            while not self._stop.is_set():
                if not await events.poll(self.POLL_MS):
                    continue
                event = await events.next()
                if isinstance(event.message, HeadEvent):
                    seen.setdefault(event.message.hash, time.time())
        finally:
            events.close()
