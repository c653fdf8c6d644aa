"""feature_node_e2e: a whole node started the way the README says (`ccoin quickstart`), used
through the `ccoin` command line, and its state service killed with SIGKILL under load.

Checks: supervisord brings state back (RUNNING, new pid); every transaction the node
acknowledged is confirmed exactly once; the sender's nonce is the number of its confirmed
transactions and the balances add up; `ccoin node stop` leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from client import sign_transfer, tx_to_json
from common.crypto import PrivateKey, Signer
from runtime.keystore import Keystore
from tests.framework.node import TestNode
from tests.framework.util import ccoin, processes_using, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

NOT_YET = (httpx.HTTPError, KeyError, ValueError)  # the API down, or not answering in full


def ccoin_out(*args: str) -> str:
    return ccoin(*args).stdout


def ccoin_json(*args: str) -> Any:
    return json.loads(ccoin_out(*args, "--json"))


@pytest.fixture
def node(short_tmp: Path) -> Iterator[TestNode]:
    """`ccoin quickstart` (what `make run` does), stopped with `ccoin node stop`; nothing of
    it may outlive the test."""
    n = TestNode.quickstart(short_tmp / "data")
    try:
        yield n
    except BaseException:
        print(n.tail())
        raise
    finally:
        n.stop()


@dataclass
class Load:
    """Transfers from one account, posted in batches with consecutive nonces."""

    api: str
    signer: Signer
    chain_id: int
    to: bytes
    batch: int = 50
    acked: dict[str, int] = field(default_factory=dict)      # id -> nonce, node said accepted
    unacked: dict[str, int] = field(default_factory=dict)    # sent, reply lost or refused
    errors: list[str] = field(default_factory=list)
    failed_requests: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        nonce = 0
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                txs = [sign_transfer(self.signer, chain_id=self.chain_id, nonce=nonce + i,
                                     to=self.to, amount=1 + (nonce + i) % 7, fee=1)
                       for i in range(self.batch)]
                body = {"txs": [tx_to_json(t) for t in txs]}
                results = None
                deadline = time.monotonic() + 90
                while results is None and time.monotonic() < deadline:
                    try:
                        r = http.post(f"{self.api}/api/v1/txs/batch", json=body)
                        if r.status_code == 200:
                            results = r.json()["results"]
                            break
                    except httpx.HTTPError:
                        pass
                    self.failed_requests += 1
                    for t in txs:
                        self.unacked.setdefault(t.id.hex(), t.nonce)
                    # a client's retry pace while the node is down (not a wait for it): the
                    # same batch again, resubmission is idempotent
                    time.sleep(0.2)
                if results is None:
                    self.errors.append("batch never answered")
                    return
                for t, item in zip(txs, results, strict=True):
                    if item.get("status") == "accepted":
                        self.acked[t.id.hex()] = t.nonce
                        self.unacked.pop(t.id.hex(), None)
                    else:
                        self.unacked[t.id.hex()] = t.nonce
                        self.errors.append(f"nonce {t.nonce}: {item.get('error')}")
                if len(self.acked) < nonce + self.batch:
                    return  # a refused nonce: later ones could only gap
                nonce += self.batch
                time.sleep(0.05)  # the load's pace: a steady stream, not a flood


def test_quickstart_send_and_survive_a_state_crash(node: TestNode) -> None:
    data = str(node.base_path)
    developer = (node.base_path / "developer.txt").read_text().strip()
    password = (node.base_path / "password.txt").read_text().strip()

    # --- the README's first steps --------------------------------------------------------
    status = ccoin_json("status", "--data", data)
    assert status["network_id"] == 1337
    # a service counts as RUNNING once it has stayed up supervisord's startsecs, which may
    # be after the API first answered
    wait_until(lambda: {p["state"] for p in node.supervised_status().values()} == {"RUNNING"},
               timeout=30, what="every service RUNNING under supervisord")
    alice = ccoin_out("account", "new", "--data", data).strip()
    sent = ccoin_json("send", "--data", data, "--from", developer, "--to", alice,
                      "--amount", "1000000", "--fee", "1", "--wait", "--timeout", "60")
    assert sent["status"] == "confirmed" and sent["to"] == alice
    assert ccoin_json("balance", alice, "--data", data)["balance"] == 1_000_000

    # --- SIGKILL the state service while transfers pour in --------------------------------
    signer = Signer(Keystore(node.base_path / "keystore").load(bytes.fromhex(alice), password))
    bob = PrivateKey.generate().address
    load = Load(node.url, signer, status["network_id"], bob)
    worker = threading.Thread(target=load.run, daemon=True)
    worker.start()
    wait_until(lambda: len(load.acked) >= 300, timeout=60, what="the load running")
    before = node.supervised_status()["state"]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> bool:
        state = node.supervised_status()["state"]
        return state["state"] == "RUNNING" and state["pid"] != before["pid"]

    wait_until(restarted, timeout=60, what="supervisord to restart state")
    after_restart = len(load.acked)
    wait_until(lambda: len(load.acked) >= after_restart + 300, timeout=90,
               what="the load to resume")
    load.stop.set()
    worker.join(120)
    assert not worker.is_alive()
    assert not load.errors, load.errors[:5]
    print(f"load: {len(load.acked)} accepted, {len(load.unacked)} unanswered, "
          f"{load.failed_requests} failed requests around the crash")

    # --- every acknowledged transaction confirmed, exactly once ---------------------------
    with httpx.Client(base_url=node.url, timeout=10) as http:
        def all_confirmed() -> bool:
            pending = [i for i in load.acked
                       if http.get(f"/api/v1/txs/{i}").json().get("status") != "confirmed"]
            return not pending
        wait_until(all_confirmed, timeout=120, what="every accepted transaction confirmed",
                   ignore=NOT_YET)
        height = http.get("/api/v1/status").json()["height"]
        seen: dict[str, int] = {}
        for h in range(1, height + 1):
            for tx in http.get(f"/api/v1/blocks/{h}").json()["txs"]:
                seen[tx["id"]] = seen.get(tx["id"], 0) + 1
    assert all(count == 1 for count in seen.values())
    ours = {i: n for i, n in {**load.unacked, **load.acked}.items() if i in seen}
    assert set(load.acked) <= set(ours)
    assert sorted(ours.values()) == list(range(len(ours)))  # nonces 0..n-1, none twice

    account = ccoin_json("balance", alice, "--data", data)
    assert account["nonce"] == len(ours)
    spent = sum(1 + n % 7 + 1 for n in ours.values())
    assert account["balance"] == 1_000_000 - spent
    assert ccoin_json("balance", bob.hex(), "--data", data)["balance"] == sum(
        1 + n % 7 for n in ours.values())

    # --- stop: nothing left behind ---------------------------------------------------------
    assert node.supervisor is not None
    pids = [p["pid"] for p in node.supervised_status().values()]
    pids += [before["pid"], node.supervisor.pid]
    ccoin("node", "stop", "--data", data)
    assert node.supervisor.wait(30) == 0
    wait_until(lambda: not processes_using(data), timeout=10,
               what="every process of the node to be gone")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
