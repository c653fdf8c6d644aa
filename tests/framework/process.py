"""One ccoin service as an OS process: what `TestNode` (tests/framework/node.py) is made of.

A `ServiceProcess` is `python -m services.<name> --config <node.json>`, optionally under a
command prefix (`ip netns exec NS` runs it in a network namespace), with its output in
`<data>/logs/<name>.log`. It is ready when it answers a real round trip: a bus
`ServicePing` for state, miner and p2p, `GET /health` (which itself asks state) for the
REST gateway. It can be killed with any signal, paused (SIGSTOP) and resumed, and stopped
the way supervisord stops it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from common import messages
from common.errors import CcoinError
from runtime import buscurve
from runtime.bus import SyncBusClient
from runtime.config import NodeConfig, load_config
from tests.framework.util import ROOT, wait_until

HTTP_SERVICES = frozenset({"api"})  # answer over HTTP, not on the bus


class ServiceProcess:
    """One service of one node, as a process."""

    def __init__(self, name: str, config_path: Path, prefix: Sequence[str] = ()) -> None:
        self.name = name
        self.config_path = config_path
        self.prefix = list(prefix)
        self.config: NodeConfig = load_config(config_path)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.config.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ServiceProcess:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", f"services.{self.name}", "--config",
                 str(self.config_path)], stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=ROOT)
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def wait_ready(self, endpoint: str | None = None, timeout: float = 30.0) -> None:
        """Wait until the service answers a round trip (it exiting fails at once)."""
        if self.name in HTTP_SERVICES and endpoint is None:
            url = f"http://127.0.0.1:{self.config.api_port}/health"

            def healthy() -> bool:
                self._check_alive()
                return httpx.get(url, timeout=2.0).status_code == 200

            wait_until(healthy, timeout=timeout, what=f"{self.name} to answer {url}",
                       ignore=(httpx.HTTPError,))
            return
        client = SyncBusClient(endpoint or self.config.endpoint(self.name), timeout=0.5,
                               retries=0, curve=buscurve.for_config(self.config))

        def pong() -> bool:
            self._check_alive()
            client.request(messages.ServicePing(), messages.ServicePong)
            return True

        try:
            wait_until(pong, timeout=timeout, what=f"{self.name} to answer a bus ping",
                       interval=0.05, ignore=(CcoinError,))
        finally:
            client.close()

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` and reap the process (a crash, as far as the node can tell)."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing (a hung service)."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> int | None:
        """SIGTERM, as supervisord stops a service (SIGKILL after 10 s); the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

