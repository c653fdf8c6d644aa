"""Start real ccoin service processes for tests (Bitcoin Core's test_node, in small).

Each `ServiceProcess` is `python -m services.<name> --config <node.json>` with its output in
`<data>/logs/<name>.log`; `wait_ready` pings it over the real bus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import messages
from common.errors import CcoinError
from runtime.bus import SyncBusClient
from runtime.config import NodeConfig, load_config
from runtime.ports import free_port as free_port  # re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]


def poll(pred: Callable[[], Any], timeout: float, what: str, *, interval: float = 0.2,
         ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """Call `pred` every `interval` s until it returns something truthy, and return that. An
    exception of a type in `ignore` counts as "not yet"; any other propagates at once. After
    `timeout` s, `TimeoutError` naming `what` and the last ignored error."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except ignore as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}"
                       + (f" (last error: {last!r})" if last else ""))


class ServiceProcess:
    def __init__(self, name: str, config_path: Path) -> None:
        self.name = name
        self.config_path = config_path
        self.config: NodeConfig = load_config(config_path)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.config.log_dir / f"{self.name}.log"

    def start(self) -> ServiceProcess:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        log.close()
        return self

    def wait_ready(self, endpoint: str | None = None, timeout: float = 20.0) -> None:
        """Ping the service's bus endpoint until it answers."""
        ep = endpoint or self.config.endpoint(self.name)
        deadline = time.monotonic() + timeout
        client = SyncBusClient(ep, timeout=0.5, retries=0)
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.tail()}")
                try:
                    client.request(messages.ServicePing(), messages.ServicePong)
                    return
                except CcoinError:
                    time.sleep(0.1)
        finally:
            client.close()
        raise TimeoutError(f"{self.name} not ready: {self.tail()}")

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def processes_using(marker: str) -> list[int]:
    """Pids of live processes (zombies excluded) whose command line mentions `marker`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if marker.encode() in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            out.append(int(entry))
    return out
