"""Network namespaces for tests that need a real network cut (Linux, root, `ip`).

A `Lab` of N nodes is N+1 namespaces this module creates and deletes; nothing is added to
the namespace the tests run in, so all traffic stays inside namespaces the lab made:

    hub namespace:  bridge br0 (address .254 of the lab's /24) and bridge br1, joined by a
                    veth pair j0 (in br0) - j1 (in br1)
    node I:         its own namespace, eth0 = .I of the /24, wired by a veth pair to port
                    hI of br0

Moving some node ports to br1 (`assign`) and taking the j0-j1 link down (`partition`)
splits the network in two; `heal` brings the link back. Processes are started inside a
node's namespace with `argv(i, ...)` (`ip netns exec`). Unix sockets are not scoped by
network namespaces, so the test process reaches each node's bus (ipc://) directly and its
REST API through a small unix-socket forwarder started inside the node's namespace
(`python -m tests.framework.netns forward SOCKET HOST:PORT`).

`teardown` always runs what `setup` did in reverse, kills what still runs inside the lab's
namespaces (only processes the test started live there) and deletes them; `sweep_stale`
removes the namespaces of earlier runs whose process is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.framework.util import WaitTimeout, wait_until

PREFIX = "ccnet"
DEFAULT_SUBNET = "10.231.7"  # a private /24 that exists only inside the lab's namespaces


class NetnsError(RuntimeError):
    pass


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def unavailable() -> str | None:
    """Why namespaces cannot be used here (None when they can): probed, not guessed."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (run the suite as root to test partitions)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    name = f"{PREFIX}{os.getpid()}-probe"
    probe = _run("ip", "netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    try:
        bridge = _run("ip", "-n", name, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"cannot create a bridge in a namespace: {bridge.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", name, check=False)
    return None


def netem_available() -> bool:
    """Whether the kernel has the netem qdisc (latency, loss)."""
    name = f"{PREFIX}{os.getpid()}-netem"
    if _run("ip", "netns", "add", name, check=False).returncode != 0:
        return False
    try:
        _run("ip", "-n", name, "link", "set", "lo", "up", check=False)
        return _run("ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root",
                    "netem", "delay", "1ms", check=False).returncode == 0
    finally:
        _run("ip", "netns", "del", name, check=False)


def _namespaces() -> list[str]:
    out = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_inside(ns: str) -> None:
    """SIGTERM, then SIGKILL, whatever still runs in `ns` (the lab's own namespace)."""
    for sig, pause in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.5)):
        pids = [int(p) for p in _run("ip", "netns", "pids", ns, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(WaitTimeout):  # then SIGKILL
            wait_until(lambda: not _run("ip", "netns", "pids", ns, check=False).stdout.strip(),
                       timeout=pause, what=f"the processes in {ns} to exit")


def sweep_stale() -> list[str]:
    """Delete lab namespaces left by a test process that no longer exists."""
    removed = []
    for ns in _namespaces():
        if not ns.startswith(PREFIX):
            continue
        owner = ns[len(PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            _kill_inside(ns)
            _run("ip", "netns", "del", ns, check=False)
            removed.append(ns)
    return removed


@dataclass
class Lab:
    nodes: int
    subnet: str = DEFAULT_SUBNET
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-{time.time_ns() % 10**6}")
    created: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    def ns(self, i: int) -> str:
        return f"{self.tag}-n{i}"

    def addr(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    @property
    def hub_addr(self) -> str:
        return f"{self.subnet}.254"

    def _ns_add(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self.created.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def setup(self) -> Lab:
        if not 1 <= self.nodes <= 200:
            raise NetnsError("a lab has 1..200 nodes")
        try:
            hub = self.hub
            self._ns_add(hub)
            for br in ("br0", "br1"):
                _run("ip", "-n", hub, "link", "add", br, "type", "bridge")
                _run("ip", "-n", hub, "link", "set", br, "up")
            _run("ip", "-n", hub, "link", "add", "j0", "type", "veth", "peer", "name", "j1")
            _run("ip", "-n", hub, "link", "set", "j0", "master", "br0", "up")
            _run("ip", "-n", hub, "link", "set", "j1", "master", "br1", "up")
            _run("ip", "-n", hub, "addr", "add", f"{self.hub_addr}/24", "dev", "br0")
            for i in range(1, self.nodes + 1):
                ns = self.ns(i)
                self._ns_add(ns)
                _run("ip", "-n", hub, "link", "add", f"h{i}", "type", "veth", "peer", "name",
                     "eth0", "netns", ns)
                _run("ip", "-n", hub, "link", "set", f"h{i}", "master", "br0", "up")
                _run("ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
                _run("ip", "-n", ns, "link", "set", "eth0", "up")
        except BaseException:
            self.teardown()
            raise
        return self

    def argv(self, i: int, argv: Sequence[str]) -> list[str]:
        """`argv` run inside node `i`'s namespace (i = 0: the hub)."""
        return ["ip", "netns", "exec", self.hub if i == 0 else self.ns(i), *argv]

    def assign(self, i: int, side: int) -> None:
        """Plug node `i` into bridge br`side` (0 or 1)."""
        _run("ip", "-n", self.hub, "link", "set", f"h{i}", "master", f"br{side}")

    def partition(self) -> None:
        """Cut br0 from br1: nodes on different bridges can no longer reach each other."""
        _run("ip", "-n", self.hub, "link", "set", "j0", "down")

    def heal(self) -> None:
        _run("ip", "-n", self.hub, "link", "set", "j0", "up")
        _run("ip", "-n", self.hub, "link", "set", "j1", "up")

    def netem(self, i: int, *spec: str) -> None:
        """`tc qdisc replace dev eth0 root netem SPEC` in node `i`'s namespace."""
        _run("ip", "netns", "exec", self.ns(i), "tc", "qdisc", "replace", "dev", "eth0",
             "root", "netem", *spec)

    def can_reach(self, i: int, j: int, timeout: float = 1.5) -> bool:
        """Whether node `i` reaches node `j` over IP: a TCP connect to a closed port is
        refused (reachable) or times out (cut). No `ping` needed."""
        probe = ("import socket, sys\n"
                 "try:\n"
                 f"    socket.create_connection(({self.addr(j)!r}, 9), {timeout})\n"
                 "except ConnectionRefusedError:\n"
                 "    sys.exit(0)\n"
                 "except OSError:\n"
                 "    sys.exit(1)\n")
        return _run("ip", "netns", "exec", self.ns(i), sys.executable, "-c", probe,
                    check=False).returncode == 0

    def teardown(self) -> None:
        for ns in reversed(self.created):
            _kill_inside(ns)
        for ns in reversed(self.created):
            _run("ip", "netns", "del", ns, check=False)
        self.created.clear()

    def __enter__(self) -> Lab:
        return self.setup()

    def __exit__(self, *exc: object) -> None:
        self.teardown()


# --- the unix-socket forwarder ---------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def forward(socket_path: str, host: str, port: int) -> None:
    """Accept on a unix socket, relay each connection to host:port (in this namespace)."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection(host, port)
        except OSError:
            w.close()
            return
        await asyncio.gather(_pipe(r, tw), _pipe(tr, w))

    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    server = await asyncio.start_unix_server(handle, path=socket_path)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.framework.netns")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fwd = sub.add_parser("forward", help="relay a unix socket to a TCP address")
    fwd.add_argument("socket")
    fwd.add_argument("target", help="HOST:PORT")
    sub.add_parser("sweep", help="delete namespaces of dead test runs")
    args = parser.parse_args(argv)
    if args.cmd == "forward":
        host, _, port = args.target.rpartition(":")
        asyncio.run(forward(args.socket, host, int(port)))
    else:
        for ns in sweep_stale():
            print(f"deleted {ns}")


if __name__ == "__main__":
    main()
