"""A real node for interface tests of the REST gateway: a dev chain with state, miner and
api processes (`tests.framework.process.ServiceProcess`), reached over HTTP with `client.http`.

Used by the `test_api_*` and `test_cli_wallet` modules; each starts the fewest processes
it needs, with the config changes it needs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from client import Client
from tests.framework.process import ServiceProcess, free_port, poll
from tools.devchain import DevChain, create_dev_chain


@dataclass
class RunningNode:
    chain: DevChain
    url: str
    http: httpx.Client
    client: Client
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def pids(self) -> dict[str, int | None]:
        return {n: p.proc.pid if p.proc else None for n, p in self.processes.items()}

    def alive(self) -> bool:
        return all(p.proc is not None and p.proc.poll() is None
                   for p in self.processes.values())


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 30.0,
             every: float = 0.1) -> Any:
    return poll(predicate, timeout, what, interval=every)


def start_api(config_path: Path, url: str) -> ServiceProcess:
    """Start a gateway (its log: logs/api.log, shared by every gateway of the node) and
    wait until it answers /health."""
    api = ServiceProcess("api", config_path).start()

    def healthy() -> bool:
        if api.proc is not None and api.proc.poll() is not None:
            raise RuntimeError(f"api exited: {api.tail()}")
        try:
            return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the api gateway to be healthy", healthy, timeout=30.0)
    return api


def edit_config(path: Path, **sections: dict[str, Any]) -> None:
    doc = json.loads(path.read_text())
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    path.write_text(json.dumps(doc, indent=2))


@contextmanager
def running_node(base: Path, *, miner: bool = True, interval_ms: int = 500,
                 config: dict[str, dict[str, Any]] | None = None,
                 **devchain: Any) -> Iterator[RunningNode]:
    chain = create_dev_chain(base, api_port=free_port(), interval_ms=interval_ms, **devchain)
    if config:
        edit_config(chain.config_path, **config)
    processes: dict[str, ServiceProcess] = {}
    try:
        processes["state"] = ServiceProcess("state", chain.config_path).start()
        processes["state"].wait_ready()
        if miner:
            processes["miner"] = ServiceProcess("miner", chain.config_path).start()
            processes["miner"].wait_ready()
        url = f"http://127.0.0.1:{chain.api_port}"
        processes["api"] = start_api(chain.config_path, url)
        with httpx.Client(base_url=url, timeout=20.0) as http, Client(url) as client:
            yield RunningNode(chain, url, http, client, processes)
    finally:
        for proc in reversed(processes.values()):
            proc.stop()


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, r.text
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body
