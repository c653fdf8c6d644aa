"""The bench's request-memory stage (issue 13): many large batch requests at once.

N clients (24 by default) each POST one batch of `PER_BODY` transfers with `DATA` bytes of data
(a body of about 3.4 MB) to `/api/v1/txs/batch`, all at once. The api process's resident
set is read before, every 10 ms during, and a second after the last answer: the gateway's
body budget (`api.body_budget_mb`, services/api/bodybudget.py) should keep the peak
bounded, and the memory should go back near the baseline afterwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from common import crypto
from common.types import Transaction
from tools.bench.measure import service_pids
from tools.bench.singles import Connection
from tools.bench.workload import CHAIN_ID

PER_BODY = 1550
DATA = 1024
SETTLE_S = 1.0  # after the last answer, before the "after" reading


@dataclass
class BodiesResult:
    requests: int
    body_mb: float
    before_mb: float
    peak_mb: float
    after_mb: float
    seconds: float
    accepted: int
    statuses: list[int]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _post(api: str, body: bytes) -> tuple[int, int]:
    """(status, accepted)."""
    conn = Connection(api, timeout=120)
    try:
        status, data, _ = conn.post("/api/v1/txs/batch", orjson.Fragment(body))
        return status, orjson.loads(data).get("accepted", 0) if status == 200 else 0
    finally:
        conn.close()


def run(api: str, node_pid: int, signers: list[crypto.Signer]) -> BodiesResult:
    """The stage on a running node: one request per signer (funded accounts no one else
    uses)."""
    bodies = [orjson.dumps({"txs": [{"raw": Transaction.create(
        s, chain_id=CHAIN_ID, nonce=i, to=(3 * 10**6 + i).to_bytes(20, "big"), amount=1,
        fee=1, data=bytes(DATA)).raw.hex()} for i in range(PER_BODY)]})
        for s in signers]
    api_pid = service_pids(node_pid)["api"]
    before = peak = _rss_mb(api_pid)
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, _rss_mb(api_pid))

    outcomes: list[tuple[int, int]] = []
    watcher = threading.Thread(target=watch)
    clients = [threading.Thread(target=lambda b=b: outcomes.append(_post(api, b)))
               for b in bodies]
    watcher.start()
    t0 = time.monotonic()
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    seconds = time.monotonic() - t0
    time.sleep(SETTLE_S)  # the heap is trimmed off the event loop after the last answer
    done.set()
    watcher.join()
    return BodiesResult(len(bodies), len(bodies[0]) / 2**20, before, peak, _rss_mb(api_pid),
                        seconds, sum(a for _, a in outcomes), sorted({s for s, _ in outcomes}))
