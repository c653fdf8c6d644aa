"""feature_disk_full: a full disk loses nothing that was acknowledged (issue 10, items 1 and 2).

One validator (state, miner and api as processes) whose chain database lives on a small
tmpfs (root only: skipped, saying so, elsewhere), under a steady load of transfers with
every 202-acknowledged id recorded (a batch refused is sent again as it is, so the
acknowledged ones leave no nonce gap). The disk is filled until LevelDB's writes fail: new
submissions get 503 `storage_unavailable`, never 500, and readiness fails naming storage.
Then:

(a) space is freed, and state, without a restart, reopens its database and takes writes;
(c) the disk is filled again, state is killed with SIGKILL while it cannot write, space is
    freed and state started again;
(b) state is restarted cleanly (SIGTERM), now with `chain.min_free_mb`: filling the disk to
    below it refuses transactions before any write fails (the guard's reason in readiness
    and /status, one log line when it starts, one when it ends), until space is freed.

After each, every acknowledged transfer is confirmed or in the pool and every block seen
before is still there under the same hash; at the end, every acknowledged transfer is
confirmed, and `ccoin node check` on the stopped node replays the chain from genesis
against the stored state and every header."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.crypto import Signer
from common.encoding import MEDIA_TYPE, pack, unpack
from common.types import Transaction
from tests.framework import disk
from tests.framework.node import TestNode
from tests.framework.util import ccoin, log_step, wait_until

INTERVAL_MS = 300
DISK_MB = 32
MIN_FREE_MB = 6
MB = 1 << 20
TIMEOUT = 30
FULL = "No space left on device"
LOW = "disk space low"
# the batch route's forms: JSON; binary; binary asking for the msgpack answer
FORMS = ("json", "msgpack", "msgpack-reply")


class Load(threading.Thread):
    """Transfers from the developer account, `BATCH` at a time through the batch route
    (JSON and binary forms in turn); a batch refused with 503 is sent again as it is,
    until it is taken."""

    BATCH = 20
    PAUSE_S = 0.05

    def __init__(self, node: TestNode) -> None:
        super().__init__(name="load", daemon=True)
        self.http = httpx.Client(base_url=node.url, timeout=20)
        self.signer = Signer(node.chain.developer)
        self.chain_id = json.loads(node.config.genesis_file().read_text())["network_id"]
        self.acked: list[str] = []  # in nonce order
        self.refusals = 0  # 503 storage_unavailable
        self.refused_forms: set[str] = set()  # the batch forms that got one
        self.attempts = 0
        self.last_refusal = ""
        self.unexpected: list[str] = []  # anything else but 200 or a 503: must stay empty
        self.stopping = threading.Event()

    def _batch(self, nonce: int) -> list[Transaction]:
        return [Transaction.create(self.signer, chain_id=self.chain_id, nonce=nonce + i,
                                   to=(nonce + i).to_bytes(20, "big"), amount=1, fee=1)
                for i in range(self.BATCH)]

    def run(self) -> None:
        batch = self._batch(0)
        while not self.stopping.wait(self.PAUSE_S):
            # the batch route's forms in turn (JSON; binary; binary answered in msgpack), a
            # batch sent again included: a full disk is refused alike in each, in JSON
            form = FORMS[self.attempts % len(FORMS)]
            self.attempts += 1
            try:
                if form == "json":
                    r = self.http.post("/api/v1/txs/batch",
                                       json={"txs": [{"raw": t.raw.hex()} for t in batch]})
                else:
                    headers = {"content-type": MEDIA_TYPE}
                    if form == "msgpack-reply":
                        headers["accept"] = MEDIA_TYPE
                    r = self.http.post("/api/v1/txs/batch", content=pack([t.raw for t in batch]),
                                       headers=headers)
            except httpx.HTTPError as exc:
                self.unexpected.append(f"{type(exc).__name__}: {exc}")
                continue
            code = r.json().get("error", {}).get("code") if r.status_code != 200 else ""
            if r.status_code == 200:
                in_msgpack = r.headers["content-type"] == MEDIA_TYPE
                if in_msgpack != (form == "msgpack-reply"):
                    self.unexpected.append(f"{form} answered as {r.headers['content-type']}")
                results = unpack(r.content)["results"] if in_msgpack else r.json()["results"]
                if all(item.get("status") == "accepted" for item in results):
                    self.acked.extend(t.id.hex() for t in batch)
                    batch = self._batch(batch[-1].nonce + 1)
                else:
                    self.unexpected.append(f"refused items: {results[:2]}")
            elif r.status_code == 503 and code == "storage_unavailable":
                self.refusals += 1
                self.refused_forms.add(form)
                self.last_refusal = r.json()["error"]["message"]
            elif r.status_code == 503 and code == "unavailable":
                pass  # state is being restarted
            else:
                self.unexpected.append(f"{r.status_code} {r.text[:300]}")

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        self.http.close()


def check(node: TestNode, load: Load, seen: dict[int, str]) -> dict[int, str]:
    """Every acknowledged transfer is confirmed or in the pool; every block in `seen` is
    still the main chain's at its height. Returns the main chain as it is now."""
    acked = list(load.acked)
    sender = load.signer.address.hex()
    pool = {tx["id"] for tx in node.api.get("/api/v1/mempool", sender=sender,
                                            limit=1000)["txs"]}
    blocks = node.api.chain(node.api.height())  # after the pool: nothing falls between
    chain = {b["header"]["height"]: b["hash"] for b in blocks}
    assert {h: chain.get(h) for h in seen} == seen, "a block seen before has changed"
    confirmed = {txid for b in blocks for txid in b["txs"]}
    lost = [txid for txid in acked if txid not in confirmed and txid not in pool]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged transfers lost: {lost[:3]}"
    assert not load.unexpected, load.unexpected[:3]
    return chain


def readiness(node: TestNode) -> tuple[int, dict[str, Any]]:
    r = node.http.get("/api/v1/ready")
    return r.status_code, r.json()


def refused_while(node: TestNode, load: Load, fill: Any, words: str) -> None:
    """`fill()` the disk: submissions are refused with 503 `storage_unavailable` saying
    `words`, readiness fails on storage, the status says why."""
    before = load.refusals
    fill()
    wait_until(lambda: load.refusals > before, timeout=TIMEOUT,
               what="a submission refused with 503 storage_unavailable")
    assert words in load.last_refusal, load.last_refusal
    code, body = readiness(node)
    assert code == 503 and body["checks"]["storage"]["status"] == "fail", body
    assert words in body["checks"]["storage"]["detail"]
    storage = node.api.status()["storage"]
    assert storage["ok"] is False and words in storage["problem"], storage
    health = node.http.get("/health")  # alive, and it clears by itself: degraded, not 503
    assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
    assert words in health.json()["storage"]


def taken_again(node: TestNode, load: Load) -> None:
    acked = len(load.acked)
    wait_until(lambda: len(load.acked) >= acked + 3 * Load.BATCH, timeout=TIMEOUT,
               what="submissions taken again")
    wait_until(lambda: readiness(node)[0] == 200, timeout=TIMEOUT, what="the node ready")


def test_a_full_disk_loses_nothing_acknowledged(short_tmp: Path) -> None:
    reason = disk.unavailable_reason()
    if reason:
        pytest.skip(reason)
    node = TestNode.create(short_tmp / "n", interval_ms=INTERVAL_MS,
                           config={"chain": {"min_free_mb": 0}})
    with disk.SmallDisk(node.config.chain_dir, DISK_MB) as small, node:
        node.start("state", "miner", "api")
        load = Load(node)
        load.start()
        try:
            wait_until(lambda: len(load.acked) >= 5 * Load.BATCH and node.api.height() >= 3,
                       timeout=TIMEOUT, what="transfers acknowledged and blocks sealed")
            seen = check(node, load, {})

            log_step("(a) the disk fills until writes fail; space freed, no restart")
            pid = node.pids()["state"]
            refused_while(node, load, small.fill, FULL)
            small.free()
            taken_again(node, load)
            seen = check(node, load, seen)
            assert node.pids()["state"] == pid  # recovered in place

            log_step("(c) full again; state killed with SIGKILL; space freed; state started")
            refused_while(node, load, small.fill, FULL)
            node.kill("state")
            small.free()
            node.restart("state")
            taken_again(node, load)
            seen = check(node, load, seen)

            log_step(f"(b) clean restart with chain.min_free_mb {MIN_FREE_MB}; the disk "
                     "filled below it")
            node.edit_config(chain={"min_free_mb": MIN_FREE_MB})
            node.restart("state")
            seen = check(node, load, seen)
            refused_while(node, load, lambda: small.fill(leave=MIN_FREE_MB * MB // 2), LOW)
            small.free()
            taken_again(node, load)
        finally:
            load.stop()
        log_step(f"every one of {len(load.acked)} acknowledged transfers confirmed")
        last = load.acked[-1]
        wait_until(lambda: node.api.confirmed(last), timeout=TIMEOUT,
                   what="the last acknowledged transfer confirmed")
        check(node, load, seen)
        assert load.refused_forms == set(FORMS), load.refused_forms
        lines = [json.loads(line) for line in node.log("state").splitlines()]
        said = [(line["level"], line["msg"]) for line in lines]
        # each problem said once when it started, once when it ended
        assert sum(level == "error" and FULL in msg for level, msg in said) == 2, said
        assert sum(msg.startswith("the chain database was reopened") for _, msg in said) == 1
        assert sum(level == "warning" and msg.startswith(LOW) for level, msg in said) == 1
        assert sum(msg.startswith("disk space is back") for _, msg in said) == 1
        node.stop()
        log_step("ccoin node check: the chain replayed from genesis")
        result = ccoin("node", "check", "--config", str(node.config_path), check=False)
        assert result.returncode == 0, result.stdout + result.stderr
