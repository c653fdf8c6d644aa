"""What the multi-node tests share: running `ccoin devnet` as the README says, reaching each
node's REST API and bus, waiting, and making sure nothing outlives a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.node.devnet import Devnet, load_devnet
from services.node.devnet import free_base_port as free_base_port  # re-exported for the tests
from tests.harness import ROOT, poll, processes_using

CCOIN_SCRIPT = Path(sys.executable).parent / "ccoin"


def ccoin_argv(*args: str) -> list[str]:
    if CCOIN_SCRIPT.is_file():
        return [str(CCOIN_SCRIPT), *args]
    return [sys.executable, "-c", "import sys; from services.cli import main; sys.exit(main())",
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
