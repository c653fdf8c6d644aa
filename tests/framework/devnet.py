"""What the multi-node tests share: running `ccoin devnet` as the README says, reaching each
node's REST API and bus, waiting, and making sure nothing outlives a test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.types import Transaction
from tests.framework.process import ROOT, poll, processes_using
from tools.devnet import Devnet, load_devnet
from tools.devnet import free_base_port as free_base_port  # re-exported for the tests

CCOIN_SCRIPT = Path(sys.executable).parent / "ccoin"


def ccoin_argv(*args: str) -> list[str]:
    if CCOIN_SCRIPT.is_file():
        return [str(CCOIN_SCRIPT), *args]
    return [sys.executable, "-c", "import sys; from tools.cli import main; sys.exit(main())",
            *args]


def ccoin(*args: str, timeout: float = 120, check: bool = True,
          ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(ccoin_argv(*args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"ccoin {' '.join(args)}: {proc.stderr}"
    return proc


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """`poll` in which HTTP errors, failed assertions and unexpected JSON count as not yet."""
    return poll(pred, timeout, what, interval=interval,
                ignore=(AssertionError, httpx.HTTPError, KeyError, ValueError, TypeError))


def kill_leftovers(marker: str) -> list[int]:
    pids = processes_using(marker)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def api_get(url: str, path: str, timeout: float = 5.0) -> Any:
    r = httpx.get(f"{url}{path}", timeout=timeout)
    r.raise_for_status()
    return r.json()


@dataclass
class RunningDevnet:
    """`ccoin devnet ...` running in the background, with its manifest."""

    data: Path
    proc: subprocess.Popen[bytes]
    log: Path
    devnet: Devnet | None = None
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def manifest(self) -> Devnet:
        if self.devnet is None:
            self.devnet = load_devnet(self.data)
        return self.devnet

    def urls(self) -> list[str]:
        return [n.api_url for n in self.manifest().nodes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, logs: tuple[str, ...] = ("state", "p2p", "miner", "api")) -> str:
        parts = ["--- ccoin devnet\n" + self.output()[-3000:]]
        if self.devnet is not None:
            for n in self.devnet.nodes:
                for name in logs:
                    p = n.base_path / "logs" / f"{name}.log"
                    if p.exists():
                        text = p.read_text(errors="replace")[-1500:]
                        parts.append(f"--- {n.name} {name}\n{text}")
        return "\n".join(parts)

    def wait_up(self, timeout: float = 180) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ccoin devnet exited ({self.proc.returncode}):\n"
                                   f"{self.output()}")
            return "Stop all: Ctrl-C" in self.output()

        wait_for(up, timeout, "ccoin devnet did not print its banner", interval=0.5)
        self.manifest()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 90) -> int:
        """Stop the devnet the way a user does; return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise

    def start_node(self, index: int) -> subprocess.Popen[bytes]:
        """Start one node again the way the README says (`ccoin node start`)."""
        node = self.manifest().node(index)
        log = self.data / f"{node.name}-restart.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ccoin_argv("node", "start", "--config", str(node.config_path), "--type",
                           node.node_type), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                start_new_session=True)
        self.extra.append(proc)
        return proc

    def stop_node(self, index: int) -> None:
        ccoin("node", "stop", "--data", str(self.manifest().node(index).base_path))


def start_devnet(data: Path, *args: str) -> RunningDevnet:
    log = data.parent / f"{data.name}-devnet.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(ccoin_argv("devnet", "--data", str(data), *args), stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    return RunningDevnet(data, proc, log)


def teardown_devnet(net: RunningDevnet) -> None:
    """Whatever happened in the test: stop the devnet, then kill anything left."""
    try:
        if net.proc.poll() is None:
            net.stop(signal.SIGTERM)
    finally:
        for proc in net.extra:
            if proc.poll() is None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        kill_leftovers(str(net.data))


# --- a network of nodes started with `ccoin devnet`, and each node's REST API -----------


def p2p_missing() -> str | None:
    """Why this checkout cannot run a network yet (None: it can)."""
    if not (ROOT / "services" / "p2p" / "__main__.py").is_file():
        return "services/p2p is not part of this checkout yet"
    if "GetBlocksAfter" not in (ROOT / "services" / "state" / "service.py").read_text():
        return "the state service has no sync support (GetBlocksAfter) yet"
    return None


requires_p2p = pytest.mark.skipif(p2p_missing() is not None, reason=str(p2p_missing()))


def log_step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Api:
    """One node's REST API, over TCP or (for a node in another network namespace) over a
    unix socket forwarded into that namespace."""

    def __init__(self, name: str, url: str | None = None, uds: str | None = None) -> None:
        self.name = name
        transport = httpx.HTTPTransport(uds=uds) if uds else None
        self.http = httpx.Client(base_url=url or "http://node", transport=transport,
                                 timeout=10)

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params or None)
        r.raise_for_status()
        return r.json()

    def up(self) -> bool:
        try:
            return self.http.get("/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        return dict(self.get("/api/v1/status"))

    def height(self) -> int:
        return int(self.status()["height"])

    def block(self, ref: int | str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/blocks/{ref}"))

    def tx_status(self, tx_id: str) -> dict[str, Any] | None:
        r = self.http.get(f"/api/v1/txs/{tx_id}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def confirmed(self, tx_id: str) -> bool:
        doc = self.tx_status(tx_id)
        return doc is not None and doc.get("status") == "confirmed"

    def balance(self, address: bytes) -> int:
        return int(self.get(f"/api/v1/accounts/{address.hex()}")["balance"])

    def pending_nonce(self, address: bytes) -> int:
        return int(self.get(f"/api/v1/accounts/{address.hex()}")["pending_nonce"])

    def submit(self, txs: Sequence[Transaction]) -> list[dict[str, Any]]:
        r = self.http.post("/api/v1/txs/batch", json={"txs": [{"raw": t.raw.hex()}
                                                               for t in txs]})
        r.raise_for_status()
        return list(r.json()["results"])

    def chain(self, upto: int) -> list[dict[str, Any]]:
        """Main-chain blocks 1..upto (headers only), oldest first."""
        out: list[dict[str, Any]] = []
        start = 1
        while start <= upto:
            page = self.get("/api/v1/blocks", start=start, limit=min(100, upto - start + 1),
                            order="asc")["blocks"]
            if not page:
                break
            out.extend(page)
            start = out[-1]["header"]["height"] + 1
        return out[:upto]

    def close(self) -> None:
        self.http.close()


def wait_connected(apis: Sequence[Api], timeout: float = 90) -> None:
    """Every node has a peer and all agree on a recent block."""
    def connected() -> bool:
        statuses = [a.status() for a in apis]
        if min(s["peers"] for s in statuses) < 1:
            return False
        low = min(s["height"] for s in statuses)
        if low < 1:
            return False
        return len({a.block(low)["hash"] for a in apis}) == 1

    wait_for(connected, timeout, "the nodes connect and agree", interval=0.5)


@contextlib.contextmanager
def devnet_up(prefix: str, *args: str) -> Iterator[tuple[RunningDevnet, Devnet, list[Api]]]:
    """`ccoin devnet ARGS` started the way the README says, every node linked. On the way
    out it is stopped with Ctrl-C, which must exit 0 and leave no process behind; whatever
    happened, its output is shown on failure and its files are removed."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    data = base / "net"
    net = start_devnet(data, *args)
    apis: list[Api] = []
    try:
        net.wait_up()
        devnet = net.manifest()
        apis = [Api(n.name, n.api_url) for n in devnet.nodes]
        log_step(f"devnet up in {data}: " + ", ".join(n.api_url for n in devnet.nodes))
        wait_connected(apis)
        yield net, devnet, apis
        log_step("stopping the devnet with Ctrl-C")
        assert net.stop(signal.SIGINT) == 0
        assert not processes_using(str(data)), processes_using(str(data))
    except BaseException:
        print(net.tail())
        raise
    finally:
        for a in apis:
            a.close()
        teardown_devnet(net)
        shutil.rmtree(base, ignore_errors=True)
