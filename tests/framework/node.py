"""`TestNode`: the one way a functional test starts a node (Bitcoin Core's test_node, in
small).

A node is a data dir with a node.json. `TestNode.create` makes a dev chain there (keys, a
funded developer account, genesis; ports from `runtime.ports.free_port`, claimed for this
pytest worker by tests/framework/ports.py),
`TestNode.sharing_chain` a second node on another node's genesis, `TestNode.at` wraps a
data dir made elsewhere (a devnet's node). Then either

- `start("state", "miner", "api", "p2p")`: the chosen services as processes
  (`ServiceProcess`), each ready when it answers a real round trip; one of them can be
  killed with any signal, paused (SIGSTOP), resumed, restarted; or
- `start_supervised()` / `quickstart()`: the whole node the way the README starts it
  (`ccoin node start`, `ccoin quickstart`: supervisord in the foreground).

`stop()` stops whatever runs and checks that no process mentioning the data dir is left
(it kills any it finds and says so). The node's REST API is at `url` (`http`, `client`,
`api` talk to it), its bus through `bus(service)`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from client import Client
from common import messages as m
from runtime import buscurve
from runtime.bus import SyncBusClient
from runtime.config import NodeConfig, load_config
from tests.framework.ports import free_port
from tests.framework.process import ServiceProcess
from tests.framework.rest import RestApi
from tests.framework.util import (
    ROOT,
    ccoin,
    ccoin_argv,
    kill_leftovers,
    processes_using,
    wait_until,
)
from tools.devchain import DevChain, create_dev_chain

R = TypeVar("R", bound=m.Message)

# services that need state start after it is up; the gateway last (its /health asks state)
START_ORDER = ("state", "p2p", "miner", "api")


def edit_config(path: Path, **sections: dict[str, Any]) -> None:
    """Merge `sections` into node.json's sections of those names."""
    doc = json.loads(path.read_text())
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    path.write_text(json.dumps(doc, indent=2) + "\n")


class TestNode:
    """One node: its data dir, its processes, and handles on its REST API and bus."""

    __test__ = False  # not a pytest class

    def __init__(self, config_path: Path, *, name: str = "node", chain: DevChain | None = None,
                 uds: str | None = None) -> None:
        self.name = name
        self.config_path = config_path.resolve()
        self._chain = chain
        self.uds = uds  # the REST API through a unix socket (a node in a namespace)
        self.procs: dict[str, ServiceProcess] = {}
        self.supervisor: subprocess.Popen[bytes] | None = None  # `ccoin node start`
        self._config: NodeConfig | None = None
        self._bus: dict[str, SyncBusClient] = {}
        self._http: httpx.Client | None = None
        self._client: Client | None = None
        self._api: RestApi | None = None

    # --- making the data dir -------------------------------------------------------------

    @classmethod
    def create(cls, base: Path, *, name: str = "node",
               config: dict[str, dict[str, Any]] | None = None, **devchain: Any) -> TestNode:
        """A new dev chain in `base` (`tools.devchain.create_dev_chain` arguments), its API
        and p2p ports free ones; `config` merges into node.json's sections."""
        chain = create_dev_chain(base, api_port=free_port(), p2p_port=free_port(), **devchain)
        node = cls(chain.config_path, name=name, chain=chain)
        if config:
            node.edit_config(**config)
        return node

    @classmethod
    def at(cls, config_path: Path, *, name: str = "node", uds: str | None = None) -> TestNode:
        """A node whose data dir exists already (a devnet's node, a quickstart's)."""
        return cls(config_path, name=name, uds=uds)

    @classmethod
    def sharing_chain(cls, other: TestNode, base: Path, *, name: str = "node",
                      config: dict[str, dict[str, Any]] | None = None) -> TestNode:
        """A node on `other`'s genesis (same chain) in `base`, with its own database, run
        dir, API port and identity. It holds `other`'s keystore and password, so the same
        keys are at hand, but only the authorities named in the genesis may seal."""
        base = base.resolve()
        base.mkdir(parents=True, exist_ok=True)
        src = other.base_path
        shutil.copy(other.config.genesis_file(), base / "genesis.json")
        shutil.copytree(src / "keystore", base / "keystore", dirs_exist_ok=True)
        pw = base / "password.txt"
        shutil.copy(src / "password.txt", pw)
        pw.chmod(0o600)
        doc = json.loads(other.config_path.read_text())
        doc["app"]["base_path"] = str(base)
        doc["genesis"] = str(base / "genesis.json")
        doc["keystore"] = {"password_file": str(pw)}
        doc.setdefault("api", {})["port"] = free_port()
        doc.pop("endpoints", None)
        doc.pop("p2p", None)
        config_path = base / "node.json"
        config_path.write_text(json.dumps(doc, indent=2) + "\n")
        node = cls(config_path, name=name, chain=other._chain)
        if config:
            node.edit_config(**config)
        return node

    def edit_config(self, **sections: dict[str, Any]) -> None:
        edit_config(self.config_path, **sections)
        self._config = None

    def enable_p2p(self, *, bootnodes: Iterable[str] = (), **p2p: Any) -> int:
        """Give the node a p2p section on a free loopback port; return the port."""
        port = free_port()
        self.edit_config(p2p={"host": "127.0.0.1", "port": port,
                              "bootnodes": list(bootnodes), **p2p})
        return port

    @property
    def chain(self) -> DevChain:
        """The keys, password and files `create` made (for a node made here only)."""
        assert self._chain is not None, f"{self.name} was not made by TestNode.create"
        return self._chain

    @property
    def config(self) -> NodeConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def base_path(self) -> Path:
        return self.config.base_path

    @property
    def url(self) -> str:
        return "http://node" if self.uds else f"http://127.0.0.1:{self.config.api_port}"

    @property
    def p2p_endpoint(self) -> str:
        return f"tcp://{self.config.p2p_host}:{self.config.p2p_port}"

    # --- services as processes -----------------------------------------------------------

    def start(self, *services: str, prefix: Sequence[str] = (), wait: bool = True) -> TestNode:
        """Start `services` (under the command `prefix`, when given) and, with `wait`, wait
        until each answers. All are launched at once; the others tolerate state coming up
        later."""
        assert services, "name the services to start"
        order = sorted(services, key=lambda s: START_ORDER.index(s)
                       if s in START_ORDER else len(START_ORDER))
        for service in order:
            assert service not in self.procs or not self.procs[service].alive(), service
            self.procs[service] = ServiceProcess(service, self.config_path, prefix).start()
        if not wait:
            return self
        try:
            for service in order:
                self.procs[service].wait_ready()
        except BaseException:
            print(self.tail())
            raise
        return self

    def start_gateway(self, name: str, **api: Any) -> ServiceProcess:
        """Another REST gateway on this node, under `name`: the node's config with these
        `api` settings in its own file (node-NAME.json), started and answering."""
        doc = json.loads(self.config_path.read_text())
        doc.setdefault("api", {}).update(api)
        path = self.base_path / f"node-{name}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        self.procs[name] = ServiceProcess("api", path).start()
        self.procs[name].wait_ready()
        return self.procs[name]

    def process(self, service: str) -> ServiceProcess:
        return self.procs[service]

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        self.procs[service].kill(sig)

    def pause(self, service: str) -> None:
        self.procs[service].pause()

    def resume(self, service: str) -> None:
        self.procs[service].resume()

    def stop_service(self, service: str) -> int | None:
        """Stop one service (SIGTERM); its exit status."""
        return self.procs[service].stop()

    def restart(self, service: str) -> None:
        """Start `service` again (it was stopped or killed) and wait until it answers."""
        proc = self.procs[service]
        proc.stop()
        proc.start().wait_ready()

    def pids(self) -> dict[str, int | None]:
        return {name: p.pid for name, p in self.procs.items()}

    def alive(self) -> bool:
        return bool(self.procs) and all(p.alive() for p in self.procs.values())

    # --- the whole node, the way the README starts it ------------------------------------

    @property
    def start_log(self) -> Path:
        return self.base_path.parent / f"{self.base_path.name}-start.log"

    def start_supervised(self, node_type: str = "validator", *, prefix: Sequence[str] = (),
                         wait: bool = True, services: Sequence[str] = ()) -> TestNode:
        """`ccoin node start --config node.json --type TYPE [--services LIST]` in the
        background (supervisord in the foreground of its own session); with `wait`, until
        the API answers."""
        only = ["--services", ",".join(services)] if services else []
        with open(self.start_log, "ab") as out:
            self.supervisor = subprocess.Popen(
                [*prefix, *ccoin_argv("node", "start", "--config", str(self.config_path),
                                      "--type", node_type, *only)],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        if wait:
            self.wait_api()
        return self

    @classmethod
    def quickstart(cls, data: Path, *, port: int | None = None, name: str = "node",
                   timeout: float = 90) -> TestNode:
        """`ccoin quickstart --data DIR --port P` (what `make run` does) in the background,
        until the node's API answers."""
        data = data.resolve()
        log = data.parent / f"{data.name}-start.log"
        argv = ccoin_argv("quickstart", "--data", str(data), "--port", str(port or free_port()),
                          "--p2p-port", str(free_port()))
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                    start_new_session=True)

        def written() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"ccoin quickstart exited:\n{log.read_text()}")
            return (data / "node.json").is_file() and (data / "run").is_dir()

        try:
            wait_until(written, timeout=timeout, what="ccoin quickstart to write its data dir")
            node = cls(data / "node.json", name=name)
            node.supervisor = proc
            node.wait_api(timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            raise
        return node

    def wait_api(self, timeout: float = 90) -> None:
        """Until `GET /health` answers 200 (the gateway reached state)."""
        def healthy() -> bool:
            if self.supervisor is not None and self.supervisor.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            return self.api.up()

        wait_until(healthy, timeout=timeout, what=f"{self.name}'s API to answer /health",
                   interval=0.2)

    def supervised_status(self) -> dict[str, dict[str, Any]]:
        """`ccoin node status --json`: each service's state and pid under supervisord."""
        out = ccoin("node", "status", "--data", str(self.base_path), "--json").stdout
        return {p["name"]: p for p in json.loads(out)}

    def stop_supervised(self, timeout: float = 60) -> int | None:
        """`ccoin node stop` and the foreground command's exit status."""
        if self.supervisor is None:
            return None
        ccoin("node", "stop", "--data", str(self.base_path), check=False, timeout=timeout)
        try:
            return self.supervisor.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.supervisor.pid, signal.SIGKILL)
            self.supervisor.wait(5)
            raise

    # --- stopping ------------------------------------------------------------------------

    def leftovers(self) -> list[int]:
        """Live processes whose command line names this node's data dir."""
        return processes_using(f"{self.base_path}/")

    def stop(self, *, check: bool = True) -> dict[str, int | None]:
        """Stop everything this node runs; return each service's exit status. Whatever
        outlives that is killed, and (with `check`) fails the test: nothing may leak."""
        self.close_clients()
        codes: dict[str, int | None] = {}
        # the reverse of the start order; an extra gateway (start_gateway) first
        for name in sorted(self.procs, key=lambda s: -START_ORDER.index(s)
                           if s in START_ORDER else -len(START_ORDER)):
            codes[name] = self.procs[name].stop()
        if self.supervisor is not None and self.supervisor.poll() is None:
            codes["supervisord"] = self.stop_supervised()
        left = kill_leftovers(f"{self.base_path}/")
        if check:
            assert not left, f"{self.name}: processes left running: {left}"
        return codes

    def __enter__(self) -> TestNode:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.stop(check=exc_type is None)

    # --- talking to it -------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """Plain HTTP to the node's API (the test reads status codes and bodies itself)."""
        if self._http is None:
            transport = httpx.HTTPTransport(uds=self.uds) if self.uds else None
            self._http = httpx.Client(base_url=self.url, timeout=20.0, transport=transport)
        return self._http

    @property
    def client(self) -> Client:
        """The REST client library, as a user's program would call the node."""
        if self._client is None:
            self._client = Client(self.url)
        return self._client

    @property
    def api(self) -> RestApi:
        if self._api is None:
            self._api = RestApi(self.name, self.url, self.uds)
        return self._api

    def bus(self, service: str, timeout: float = 5.0) -> SyncBusClient:
        if service not in self._bus:
            self._bus[service] = SyncBusClient(self.config.endpoint(service), timeout=timeout,
                                               curve=buscurve.for_config(self.config))
        return self._bus[service]

    def request(self, service: str, msg: m.Message, expect: type[R]) -> R:
        return self.bus(service).request(msg, expect)

    def status(self) -> m.StatusReply:
        """The state service's status, over the bus."""
        return self.request("state", m.GetStatus(), m.StatusReply)

    def height(self) -> int:
        return self.status().height

    def peers(self) -> m.PeersReply:
        """The p2p service's peers and bans, over the bus."""
        return self.request("p2p", m.GetPeers(), m.PeersReply)

    def close_clients(self) -> None:
        for client in self._bus.values():
            client.close()
        self._bus.clear()
        for c in (self._http, self._client, self._api):
            if c is not None:
                c.close()
        self._http = self._client = self._api = None

    # --- logs ----------------------------------------------------------------------------

    def log_path(self, service: str) -> Path:
        return self.config.log_dir / f"{service}.log"

    def log(self, service: str) -> str:
        try:
            return self.log_path(service).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, chars: int = 2000) -> str:
        """The end of every log of this node, for a failure's report."""
        parts = []
        if self.start_log.exists():
            parts.append(f"--- {self.name} start\n"
                         + self.start_log.read_text(errors="replace")[-chars:])
        for service in ("state", "p2p", "miner", "api"):
            text = self.log(service)
            if text:
                parts.append(f"--- {self.name} {service}\n{text[-chars:]}")
        return "\n".join(parts)


def stop_together(nodes: Sequence[TestNode], *, check: bool = True) -> None:
    """Stop several nodes at once, as a devnet does: `ccoin node stop` for every supervised
    one in parallel, then `stop()` on each (it reaps and checks nothing is left)."""
    stoppers = [subprocess.Popen(ccoin_argv("node", "stop", "--data", str(n.base_path)),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 cwd=ROOT)
                for n in nodes if n.supervisor is not None and n.supervisor.poll() is None]
    for proc in stoppers:
        proc.wait(60)
    for node in nodes:
        node.stop(check=check)
