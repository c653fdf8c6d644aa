"""The bench's single-submission stage (issue 16): one transaction per request, as wallets,
the dashboard and most REST clients send them.

On the node of the end-to-end stage, with accounts of its own:

1. **node-signed**: N sequential `POST /api/v1/wallet/send` on one persistent connection;
2. **client-signed**: N sequential `POST /api/v1/txs` (pre-signed, raw form), likewise;
3. **concurrent**: `CLIENTS` clients at once, each on its own connection and account, each
   sending its share one by one; beside it, in the same run, the same number of transfers
   in one `POST /api/v1/txs/batch`, the route the concurrent singles are compared with.

Each request is timed at the client; its `Server-Timing` header splits the node's part
(parsing and the signature check, or signing; the state round trip with the synced journal
write; the app as a whole), and the rest (HTTP on both ends) is the client's time minus the
app's. Two figures measured beside them place those steps: the bus round trip (a ping to
state) and one synced LevelDB write on the node's own disk. Every transfer sent must then
be confirmed: each account's nonce must reach the number it sent.

The client is the standard library's `http.client` (one keep-alive connection each): a
client's own overhead is not the node's, and it is far below httpx's.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import plyvel

from client import Client
from common import crypto
from common import messages as m
from common.types import Transaction
from runtime import buscurve
from runtime.bus import SyncBusClient
from runtime.config import load_config
from tools.bench.measure import p99, process_tree_cpu
from tools.bench.workload import CHAIN_ID

CLIENTS = 32
PROBES = 300  # bus pings and synced writes
CONFIRM_TIMEOUT = 120.0


@dataclass
class Series:
    """One sequence of single requests: its rate and latency, and the node's steps."""

    n: int
    rate: float  # requests / s
    p50_ms: float
    p99_ms: float
    steps_ms: dict[str, float] = field(default_factory=dict)  # Server-Timing medians, + http
    cpu_us: dict[str, float] = field(default_factory=dict)  # CPU per request, by process


@dataclass
class SinglesResult:
    node_signed: Series
    client_signed: Series
    concurrent: Series
    batch_rate: float  # accepted / s by one POST /txs/batch of as many transfers
    null_rate: float  # requests / s of the concurrent clients against `nullapp`
    bus_rtt_ms: float
    sync_write_ms: float
    all_confirmed: bool


class Connection:
    """One keep-alive HTTP connection posting JSON."""

    def __init__(self, api: str, timeout: float = 30) -> None:
        url = urlsplit(api)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80,
                                               timeout=timeout)

    def post(self, path: str, body: object) -> tuple[int, bytes, str]:
        """(status, body, Server-Timing header)."""
        self.conn.request("POST", path, orjson.dumps(body),
                          {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, r.read(), r.getheader("server-timing") or ""

    def close(self) -> None:
        self.conn.close()


def parse_timing(header: str) -> dict[str, float]:
    """`Server-Timing: a;dur=1.2, b;dur=3` -> {"a": 1.2, "b": 3.0} (milliseconds)."""
    steps = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name and dur:
            steps[name] = float(dur)
    return steps


def sequence(api: str, bodies: Sequence[tuple[str, object]]) -> tuple[list[float],
                                                                  list[dict[str, float]]]:
    """POST each (path, body) in turn on one connection: each one's seconds and steps."""
    conn = Connection(api)
    times, steps = [], []
    try:
        for path, body in bodies:
            t0 = time.perf_counter()
            status, data, timing = conn.post(path, body)
            elapsed = time.perf_counter() - t0
            if status != 202:
                raise SystemExit(f"bench: {path} answered {status}: {data[:200]!r}")
            times.append(elapsed)
            steps.append(parse_timing(timing))
    finally:
        conn.close()
    return times, steps


def series(times: list[float], steps: list[dict[str, float]], wall: float) -> Series:
    ordered = sorted(times)
    medians = {name: statistics.median(s[name] for s in steps if name in s)
               for name in steps[0]} if steps else {}
    if "app" in medians:
        medians["http"] = statistics.median(t * 1000 - s.get("app", 0)
                                            for t, s in zip(times, steps, strict=True))
    return Series(len(times), len(times) / wall, statistics.median(ordered) * 1000,
                  p99(ordered) * 1000, medians)


def timed(run: Callable[[], tuple[list[float], list[dict[str, float]]]],
          node_pid: int | None = None) -> Series:
    """Run a series; with `node_pid`, also the CPU each of the node's services and this
    client used per request."""
    before = process_tree_cpu(node_pid) if node_pid else {}
    client = time.process_time()
    t0 = time.perf_counter()
    times, steps = run()
    out = series(times, steps, time.perf_counter() - t0)
    if node_pid:
        used = {name: cpu - before.get(name, 0.0)
                for name, cpu in process_tree_cpu(node_pid).items()}
        used["client"] = time.process_time() - client
        out.cpu_us = {name: sec * 1e6 / max(out.n, 1) for name, sec in used.items()
                      if name in ("api", "state", "client")}
    return out


def concurrently(api: str, work: list[list[tuple[str, object]]],
                 ) -> tuple[list[float], list[dict[str, float]]]:
    """Each list of requests posted in turn by a client of its own, all at once."""
    outcomes: list[tuple[list[float], list[dict[str, float]]]] = []
    threads = [threading.Thread(target=lambda w=w: outcomes.append(sequence(api, w)))
               for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(outcomes) != len(work):
        raise SystemExit("bench: a concurrent client failed")
    return ([t for times, _ in outcomes for t in times],
            [s for _, steps in outcomes for s in steps])


def null_rate(work: list[list[tuple[str, object]]]) -> float:
    """Requests / s of the same concurrent clients against `nullapp` (a server that does
    nothing): this machine's ceiling for any one-request-per-transaction route."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tools.bench.nullapp", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("bench: the null server did not start") from None
                time.sleep(0.05)
        api = f"http://127.0.0.1:{port}"
        return timed(lambda: concurrently(api, work)).rate
    finally:
        server.terminate()
        server.wait(10)


def transfers(signer: crypto.Signer, n: int, first_nonce: int = 0) -> list[Transaction]:
    return [Transaction.create(signer, chain_id=CHAIN_ID, nonce=first_nonce + i,
                               to=(10**6 + i).to_bytes(20, "big"), amount=1, fee=1)
            for i in range(n)]


def raw(tx: Transaction) -> tuple[str, object]:
    return "/api/v1/txs", {"raw": tx.raw.hex()}


def bus_rtt_ms(config_path: Path) -> float:
    """Median round trip of a ping to the node's state service."""
    config = load_config(config_path)
    client = SyncBusClient(config.endpoint("state"), timeout=5, retries=0,
                           curve=buscurve.for_config(config))
    try:
        times = []
        for _ in range(PROBES):
            t0 = time.perf_counter()
            client.request(m.ServicePing(), m.ServicePong)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000
    finally:
        client.close()


def sync_write_ms(directory: Path) -> float:
    """Median time of one small synced LevelDB write on `directory`'s disk (what the journal
    write of one submission costs at least)."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="bench-sync-") as tmp:
        db = plyvel.DB(tmp, create_if_missing=True)
        try:
            times = []
            for i in range(PROBES):
                t0 = time.perf_counter()
                db.put(b"k%d" % i, bytes(160), sync=True)
                times.append(time.perf_counter() - t0)
        finally:
            db.close()
    return statistics.median(times) * 1000


def fund_node_account(api: str, funder: crypto.Signer, account: bytes) -> None:
    with Client(api, timeout=30) as node:
        tx = Transaction.create(funder, chain_id=CHAIN_ID, nonce=0, to=account,
                                amount=10**11, fee=1)
        node.wait_confirmed(node.submit_tx(tx), timeout=CONFIRM_TIMEOUT, poll=0.1)


def confirmed(api: str, sent: dict[bytes, int]) -> bool:
    """Whether every account's nonce reached the number of transfers it sent."""
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    with Client(api, timeout=30) as node:
        while True:
            if all(node.account(a.hex()).nonce >= n for a, n in sent.items()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def run(api: str, config_path: Path, node_account: bytes, signers: list[crypto.Signer],
        n: int, node_pid: int | None = None) -> SinglesResult:
    """The stage on a running node (`node_pid`: its `ccoin node start`, for the CPU its
    services use); `signers`: 2 + CLIENTS funded accounts no one else uses (the first funds
    the node's account, the second signs the client-signed series)."""
    funder, single, many = signers[0], signers[1], signers[2:2 + CLIENTS]
    fund_node_account(api, funder, node_account)
    sends = [("/api/v1/wallet/send", {"to": (2 * 10**6 + i).to_bytes(20, "big").hex(),
                                      "amount": 1, "fee": 1}) for i in range(n)]
    node_signed = timed(lambda: sequence(api, sends), node_pid)
    client_signed = timed(lambda: sequence(api, [raw(tx) for tx in transfers(single, n)]),
                          node_pid)

    share = max(1, n // CLIENTS)
    work = [[raw(tx) for tx in transfers(s, share)] for s in many]
    concurrent = timed(lambda: concurrently(api, work), node_pid)
    batch = [tx for s in many for tx in transfers(s, share, first_nonce=share)]
    conn = Connection(api)
    try:
        t0 = time.perf_counter()
        status, data, _ = conn.post("/api/v1/txs/batch", {"txs": [{"raw": tx.raw.hex()}
                                                                  for tx in batch]})
        batch_rate = orjson.loads(data).get("accepted", 0) / (time.perf_counter() - t0)
    finally:
        conn.close()
    if status != 200:
        raise SystemExit(f"bench: the batch answered {status}")
    sent = {node_account: n, single.address: n, funder.address: 1,
            **{s.address: 2 * share for s in many}}
    data_dir = config_path.parent
    return SinglesResult(node_signed, client_signed, concurrent, batch_rate, null_rate(work),
                         bus_rtt_ms(config_path), sync_write_ms(data_dir),
                         confirmed(api, sent))
