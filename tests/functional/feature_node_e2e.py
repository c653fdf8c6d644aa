"""feature_node_e2e: a whole node started the way the README says (`ccoin quickstart`), used
through the `ccoin` command line, and its state service killed with SIGKILL under load.

Checks: supervisord brings state back (RUNNING, new pid); every transaction the node
acknowledged is confirmed exactly once; the sender's nonce is the number of its confirmed
transactions and the balances add up; `ccoin node stop` leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from client import sign_transfer, tx_to_json
from common.crypto import PrivateKey, Signer
from runtime.keystore import Keystore
from tests.framework.process import ROOT, free_port, processes_using

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CCOIN_SCRIPT = Path(sys.executable).parent / "ccoin"


def ccoin_argv(*args: str) -> list[str]:
    if CCOIN_SCRIPT.is_file():
        return [str(CCOIN_SCRIPT), *args]
    return [sys.executable, "-c", "import sys; from tools.cli import main; sys.exit(main())",
            *args]


def ccoin(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run(ccoin_argv(*args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
    assert proc.returncode == 0, f"ccoin {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def ccoin_json(*args: str) -> Any:
    return json.loads(ccoin(*args, "--json"))


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (AssertionError, httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(what)


@dataclass
class Node:
    data: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in ccoin_json("node", "status", "--data", str(self.data))}

    def tail(self) -> str:
        parts = [self.log.read_text(errors="replace")[-3000:]]
        for name in ("state", "api", "miner"):
            p = self.data / "logs" / f"{name}.log"
            if p.exists():
                parts.append(f"--- {name}\n" + p.read_text(errors="replace")[-2000:])
        return "\n".join(parts)


@pytest.fixture
def node() -> Iterator[Node]:
    base = Path(tempfile.mkdtemp(prefix="cce2e-", dir="/tmp"))
    data, port = base / "data", free_port()
    log = base / "quickstart.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(ccoin_argv("quickstart", "--data", str(data), "--port",
                                           str(port)),
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
    n = Node(data, port, proc, log)
    try:
        wait_for(lambda: httpx.get(f"{n.api}/health", timeout=2).status_code == 200, 90,
                 "api up")
        yield n
    except TimeoutError:
        pytest.fail(f"node did not come up:\n{n.tail()}")
    finally:
        if proc.poll() is None:
            subprocess.run(ccoin_argv("node", "stop", "--data", str(data)), cwd=ROOT,
                           capture_output=True, timeout=60)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for pid in processes_using(str(data)):  # nothing of ours may outlive the test
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


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
                    time.sleep(0.2)  # the same batch again: resubmission is idempotent
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
                time.sleep(0.05)


def test_quickstart_send_and_survive_a_state_crash(node: Node) -> None:
    data = str(node.data)
    developer = (node.data / "developer.txt").read_text().strip()
    password = (node.data / "password.txt").read_text().strip()

    # --- the README's first steps --------------------------------------------------------
    status = ccoin_json("status", "--data", data)
    assert status["network_id"] == 1337
    assert {p["state"] for p in node.status().values()} == {"RUNNING"}
    alice = ccoin("account", "new", "--data", data).strip()
    sent = ccoin_json("send", "--data", data, "--from", developer, "--to", alice,
                      "--amount", "1000000", "--fee", "1", "--wait", "--timeout", "60")
    assert sent["status"] == "confirmed" and sent["to"] == alice
    assert ccoin_json("balance", alice, "--data", data)["balance"] == 1_000_000

    # --- SIGKILL the state service while transfers pour in --------------------------------
    signer = Signer(Keystore(node.data / "keystore").load(bytes.fromhex(alice), password))
    bob = PrivateKey.generate().address
    load = Load(node.api, signer, status["network_id"], bob)
    worker = threading.Thread(target=load.run, daemon=True)
    worker.start()
    wait_for(lambda: len(load.acked) >= 300, 60, "load running")
    before = node.status()["state"]
    os.kill(before["pid"], signal.SIGKILL)
    wait_for(lambda: (node.status()["state"]["state"] == "RUNNING"
                      and node.status()["state"]["pid"] != before["pid"]), 60,
             "supervisord restarts state")
    after_restart = len(load.acked)
    wait_for(lambda: len(load.acked) >= after_restart + 300, 90, "load resumes")
    load.stop.set()
    worker.join(120)
    assert not worker.is_alive()
    assert not load.errors, load.errors[:5]
    print(f"load: {len(load.acked)} accepted, {len(load.unacked)} unanswered, "
          f"{load.failed_requests} failed requests around the crash")

    # --- every acknowledged transaction confirmed, exactly once ---------------------------
    with httpx.Client(base_url=node.api, timeout=10) as http:
        def all_confirmed() -> bool:
            pending = [i for i in load.acked
                       if http.get(f"/api/v1/txs/{i}").json().get("status") != "confirmed"]
            return not pending
        wait_for(all_confirmed, 120, "every accepted transaction confirmed")
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
    pids = [p["pid"] for p in node.status().values()] + [before["pid"], node.proc.pid]
    ccoin("node", "stop", "--data", data)
    assert node.proc.wait(30) == 0
    time.sleep(0.5)
    assert not processes_using(data), processes_using(data)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
