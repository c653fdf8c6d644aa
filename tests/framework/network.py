"""`TestNetwork`: N nodes on one genesis, started as `ccoin devnet` starts them (the README's
way: discovery plus every node under its own supervisord), each node a `TestNode`.

`TestNetwork.up(...)` is the usual form: it starts `ccoin devnet ARGS` in a fresh short
directory (supervisord's socket path must stay short), waits for its banner and for every
node to have a peer and agree on a block, and on the way out stops it with Ctrl-C, which
must exit 0 and leave no process behind. Whatever happens, the devnet's output and the
nodes' logs are shown on failure and its files removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.crypto import Signer
from runtime.keystore import Keystore
from tests.framework.node import TestNode
from tests.framework.ports import free_base_port as free_base_port  # re-exported
from tests.framework.rest import RestApi
from tests.framework.util import (
    ROOT,
    ccoin,
    ccoin_argv,
    kill_leftovers,
    log_step,
    processes_using,
    wait_until,
)
from tools.devnet import Devnet, load_devnet

BANNER = "Stop all: Ctrl-C"


def developer_signer(devnet: Devnet) -> Signer:
    """The devnet's funded developer account (its key is in every node's keystore)."""
    store = Keystore(devnet.nodes[-1].base_path / "keystore")
    return Signer(store.load(devnet.developer, devnet.password()))


class TestNetwork:
    """`ccoin devnet ...` running in the background, and its nodes."""

    __test__ = False  # not a pytest class

    def __init__(self, data: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.data = data
        self.proc = proc
        self.log = log
        self._devnet: Devnet | None = None
        self.nodes: list[TestNode] = []

    @classmethod
    def start(cls, data: Path, *args: str) -> TestNetwork:
        """`ccoin devnet --data DATA ARGS` in its own session (Ctrl-C reaches only it)."""
        log = data.parent / f"{data.name}-devnet.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(ccoin_argv("devnet", "--data", str(data), *args),
                                    stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                    start_new_session=True)
        return cls(data, proc, log)

    @classmethod
    @contextlib.contextmanager
    def up(cls, prefix: str, *args: str) -> Iterator[TestNetwork]:
        """A devnet of `args`, up and linked, stopped with Ctrl-C on the way out."""
        base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        net = cls.start(base / "net", *args)
        try:
            net.wait_up()
            log_step(f"devnet up in {net.data}: " + ", ".join(n.url for n in net.nodes))
            net.wait_connected()
            yield net
            for node in net.nodes:  # an open connection would hold up the gateways' exit
                node.close_clients()
            log_step("stopping the devnet with Ctrl-C")
            assert net.stop(signal.SIGINT) == 0
            assert not processes_using(str(net.data)), processes_using(str(net.data))
        except BaseException:
            print(net.tail())
            raise
        finally:
            net.close()
            shutil.rmtree(base, ignore_errors=True)

    # --- the devnet ----------------------------------------------------------------------

    @property
    def devnet(self) -> Devnet:
        """The manifest (`devnet.json`), once the devnet has written it."""
        if self._devnet is None:
            self._devnet = load_devnet(self.data)
            self.nodes = [TestNode.at(n.config_path, name=n.name) for n in self._devnet.nodes]
        return self._devnet

    @property
    def apis(self) -> list[RestApi]:
        return [n.api for n in self.nodes]

    def node(self, index: int) -> TestNode:
        """Node `index` (1-based, as the devnet names them)."""
        return self.nodes[index - 1]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        return "\n".join(["--- ccoin devnet\n" + self.output()[-3000:],
                          *(n.tail(1500) for n in self.nodes)])

    def wait_up(self, timeout: float = 180) -> None:
        """Until `ccoin devnet` prints its banner (every node's API answered it)."""
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ccoin devnet exited ({self.proc.returncode}):\n"
                                   f"{self.output()}")
            return BANNER in self.output()

        wait_until(up, timeout=timeout, what="ccoin devnet to print its banner", interval=0.3)
        assert self.devnet.nodes

    def wait_connected(self, apis: Sequence[RestApi] | None = None, timeout: float = 90) -> None:
        """Every node has a peer and all agree on a recent block."""
        apis = self.apis if apis is None else apis

        def connected() -> bool:
            statuses = [a.status() for a in apis]
            if min(s["peers"] for s in statuses) < 1:
                return False
            low = min(s["height"] for s in statuses)
            if low < 1:
                return False
            return len({a.block(low)["hash"] for a in apis}) == 1

        wait_until(connected, timeout=timeout, what="the nodes to connect and agree",
                   interval=0.3, ignore=(OSError, KeyError))

    # --- one node, by hand, as a user would ----------------------------------------------

    def stop_node(self, index: int) -> None:
        """`ccoin node stop --data DIR/nodeI`: the devnet reports it and keeps running."""
        ccoin("node", "stop", "--data", str(self.node(index).base_path))

    def start_node(self, index: int) -> TestNode:
        """`ccoin node start` for node `index` again (not waiting for its API)."""
        node = self.node(index)
        return node.start_supervised(self.devnet.node(index).node_type, wait=False)

    # --- stopping ------------------------------------------------------------------------

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

    def close(self) -> None:
        """Whatever happened in the test: stop the devnet, then kill anything left."""
        try:
            if self.proc.poll() is None:
                self.stop(signal.SIGTERM)
        finally:
            for node in self.nodes:
                node.close_clients()
                sup = node.supervisor
                if sup is not None and sup.poll() is None:
                    try:
                        sup.wait(30)
                    except subprocess.TimeoutExpired:
                        os.killpg(sup.pid, signal.SIGKILL)
                        sup.wait(5)
            kill_leftovers(str(self.data))

    def __enter__(self) -> TestNetwork:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
