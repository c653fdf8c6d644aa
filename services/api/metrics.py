"""Prometheus metrics of the gateway (`GET /metrics`, text exposition format).

Two kinds of series:
- **node-wide figures** (height, total weight, mempool, whether the next block is overdue,
  offline authorities, peers, syncing, what assume-valid sync skipped, mining, state's
  event counts per topic) are read
  from the services at scrape time, so every gateway and every worker reports the same
  values and nothing about them is stored here;
- **gateway figures** are counted as they happen: requests and their latency per route,
  transactions submitted by outcome (accepted or the error code), 429s, and what the
  gateway sees on the event stream (block interval, head delay, reorg depth, transactions
  removed from the pool by reason).

With `api.workers` > 1 the gateway runs prometheus_client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, set by `python -m services.api` before the workers start):
request and submission counts are summed over the workers. Every worker follows the event
stream, so event-derived series count each event once per worker: their rates and
quantiles are right, their absolute counts are multiplied by the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from common import messages as m
from common.status import AssumeValidState, AuthorityState, ChainPace
from services.api.readiness import CHECKS, FAIL, Readiness

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("ccoin_api_requests", "HTTP requests answered, by route template, method "
                   "and status", ["route", "method", "status"])
LATENCY = Histogram("ccoin_api_request_duration_seconds", "time to answer an HTTP request, "
                    "by route template (an event stream counts its whole connection)",
                    ["route", "method"], buckets=_FAST)
TXS = Counter("ccoin_api_txs", "transactions submitted through this gateway, by result: "
              "accepted, or the error code they were refused with", ["result"])
RATE_LIMITED = Counter("ccoin_api_rate_limited", "requests refused with 429 rate_limited")
EVENT_CLIENTS = Gauge("ccoin_api_event_clients", "open event streams (SSE and WebSocket)",
                      multiprocess_mode="livesum")
BODY_BYTES_IN_FLIGHT = Gauge("ccoin_api_body_bytes_in_flight", "bytes of large request "
                             "bodies being handled (api.body_budget_mb)",
                             multiprocess_mode="livesum")
BODIES_WAITING = Gauge("ccoin_api_bodies_waiting", "large requests waiting for the body "
                       "budget", multiprocess_mode="livesum")
EVENTS = Counter("ccoin_events", "node events received from state, by type", ["type"])
EVENTS_LOST = Counter("ccoin_events_lost", "state events the gateway missed (sequence gaps)")
TXS_REMOVED = Counter("ccoin_mempool_removed", "transactions that left the pool other than by "
                      "inclusion, by reason", ["reason"])
BLOCK_INTERVAL = Histogram("ccoin_block_interval_seconds", "difference between consecutive "
                           "heads' timestamps", buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20,
                                                         30, 60, 120, 300, 600))
HEAD_DELAY = Histogram("ccoin_head_delay_seconds", "from a block's timestamp to the gateway "
                       "receiving it as the new head: sealing, import, state apply and commit",
                       buckets=_FAST)
REORG_DEPTH = Histogram("ccoin_reorg_depth_blocks", "blocks disconnected per reorg",
                        buckets=(1, 2, 3, 5, 10, 20, 50, 100, 1000))


def count_submissions(codes: Iterable[str], accepted: int = 0) -> None:
    """Count transaction outcomes: `accepted` ones, and one per error code (an empty code
    is an accepted one too)."""
    tally: dict[str, int] = {"accepted": accepted} if accepted else {}
    for code in codes:
        key = code or "accepted"
        tally[key] = tally.get(key, 0) + 1
    for key, n in tally.items():
        TXS.labels(key).inc(n)


class _Families(Collector):
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        return iter(self.families)


def node_families(status: m.StatusReply | None, peers: m.PeersReply | None, p2p_up: bool,
                  mining: m.MiningReply | None, topic_seq: dict[bytes, int],
                  version: str, health: m.SignersReply | None = None) -> list[Any]:
    """The node-wide series, from what the services answered just now."""
    out: list[Any] = []

    def gauge(name: str, doc: str, value: float) -> None:
        g = GaugeMetricFamily(name, doc)
        g.add_metric([], value)
        out.append(g)

    gauge("ccoin_state_up", "1 when the state service answered this scrape",
          1 if status is not None else 0)
    if status is not None:
        info = InfoMetricFamily("ccoin_node", "the node's chain and software")
        info.add_metric([], {"version": version, "network_id": str(status.network_id),
                             "genesis": status.genesis.hex(),
                             "consensus": "poa" if status.poa else "pow"})
        out.append(info)
        gauge("ccoin_chain_height", "height of the head block", status.height)
        gauge("ccoin_chain_total_weight", "total weight of the main chain", status.total_weight)
        gauge("ccoin_chain_head_timestamp_seconds", "timestamp of the head block",
              status.head_timestamp / 1000)
        gauge("ccoin_chain_difficulty", "difficulty the next block needs", status.difficulty)
        gauge("ccoin_mempool_transactions", "transactions in the pool", status.mempool_count)
        gauge("ccoin_mempool_bytes", "bytes of transactions in the pool", status.mempool_bytes)
        gauge("ccoin_mempool_ready", "pool transactions ready for the next block",
              status.ready_count)
        gauge("ccoin_storage_ok", "1 while state may write; 0 while it refuses transactions "
              "and blocks (damage, a failed write, free space below chain.min_free_mb)",
              0 if status.storage else 1)
        gauge("ccoin_storage_free_bytes", "free disk space for the chain database",
              status.disk_free)
        gauge("ccoin_storage_min_free_bytes", "chain.min_free_mb in bytes (0: no guard)",
              status.min_free)
    if health is not None:
        overdue = health.pace in (ChainPace.LATE, ChainPace.WAITING)
        gauge("ccoin_chain_overdue", "1 while the next block is overdue (more than half an "
              "interval past its due time in PoA, two in PoW)", 1 if overdue else 0)
        gauge("ccoin_chain_overdue_seconds", "how far past its due time the next block is, "
              "once overdue (0 before)", health.overdue_ms / 1000)
        offline = sum(1 for s in health.signers if s.state == AuthorityState.OFFLINE)
        gauge("ccoin_authorities_offline", "authorities that missed a turn since their last "
              "block (PoA)", offline)
    gauge("ccoin_p2p_up", "1 when the p2p service answered", 1 if p2p_up else 0)
    gauge("ccoin_peers", "connected peers", len(peers.peers) if peers else 0)
    gauge("ccoin_syncing", "1 while p2p is syncing", 1 if peers and peers.syncing else 0)
    gauge("ccoin_peers_banned", "peers currently banned", peers.banned if peers else 0)
    if peers is not None:
        out.extend(assume_valid_families(peers.assume_valid))
    gauge("ccoin_mining", "1 when this node's miner is sealing",
          1 if mining and mining.enabled else 0)
    if mining is not None:
        sealed = CounterMetricFamily("ccoin_miner_blocks_sealed", "blocks the miner sealed "
                                     "since it started")
        sealed.add_metric([], mining.blocks_sealed)
        out.append(sealed)
    published = CounterMetricFamily("ccoin_state_events_published", "events state published "
                                    "since it started, by topic (its per-topic sequence)",
                                    labels=["topic"])
    for topic, seq in sorted(topic_seq.items()):
        published.add_metric([topic.decode("ascii", "replace")], seq)
    out.append(published)
    return out


def assume_valid_families(av: m.AssumeValidInfo) -> list[Any]:
    """Assume-valid sync, from p2p's status (services/p2p/assumevalid.py): whether a block is
    configured, and what sync skipped for it since p2p started."""
    configured = GaugeMetricFamily("ccoin_sync_assume_valid", "1 when sync.assume_valid "
                                   "names a block (GET /api/v1/status `assume_valid`)")
    configured.add_metric([], 1 if av.target else 0)
    reached = GaugeMetricFamily("ccoin_sync_assume_valid_reached", "1 once this node's chain "
                                "holds the assumed block: later blocks are verified in full")
    reached.add_metric([], 1 if av.state == AssumeValidState.REACHED else 0)
    skipped = CounterMetricFamily("ccoin_sync_signatures_skipped", "transaction signatures "
                                  "sync did not check under assume-valid, since p2p started")
    skipped.add_metric([], av.skipped)
    blocks = CounterMetricFamily("ccoin_sync_assume_valid_blocks", "synced blocks whose "
                                 "signatures were not checked, since p2p started")
    blocks.add_metric([], av.blocks)
    return [configured, reached, skipped, blocks]


def readiness_families(answer: Readiness) -> list[Any]:
    """`ccoin_ready` (1 when no check fails) and `ccoin_ready_check{check}` (0 for a
    failing check, 1 for one that passes or does not apply): `services.api.readiness`."""
    ready = GaugeMetricFamily("ccoin_ready", "1 when the node is ready (GET /api/v1/ready)")
    ready.add_metric([], 1 if answer.ready else 0)
    checks = GaugeMetricFamily("ccoin_ready_check", "0 while this readiness check fails, else "
                               "1 (it passes, or does not apply)", labels=["check"])
    for name in CHECKS:
        checks.add_metric([name], 0 if getattr(answer.checks, name).status == FAIL else 1)
    return [ready, checks]


def exposition(families: list[Any]) -> bytes:
    """The whole text exposition: this process's (or all workers') counters and
    histograms, then the node-wide families."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    node = CollectorRegistry(auto_describe=False)
    node.register(_Families(families))
    return generate_latest(registry) + generate_latest(node)


def worker_exit(pid: int) -> None:
    """Forget a finished worker's live gauges (multiprocess mode only)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
