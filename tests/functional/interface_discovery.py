"""interface_discovery: the discovery service as a real process on loopback
(`python -m services.discovery` and `ccoin discovery`): entries expire after the TTL unless
renewed, the source address fills in a wildcard endpoint, bodies and headers are bounded, a
second service on a taken port fails in one line, SIGTERM exits 0. (The HTTP contract in
process, on a fake clock: tests/unit/services/discovery/.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.framework.ports import free_port
from tests.framework.util import ROOT, wait_until

G1 = "aa" * 32


def node_id(i: int) -> str:
    return f"{i:064x}"


def reg_body(i: int = 1, **over: Any) -> dict[str, Any]:
    body = {"network_id": 7, "genesis": G1, "node_id": node_id(i),
            "endpoint": f"tcp://127.0.0.1:{30000 + i}", "curve_key": ""}
    body.update(over)
    return body


def wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"discovery exited: {out}")
        return httpx.get(f"{url}/health", timeout=1).status_code == 200

    wait_until(healthy, timeout=timeout, what="discovery to answer /health",
               ignore=(httpx.HTTPError,))


@pytest.fixture
def service() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "services.discovery", "--host", "127.0.0.1",
                             "--port", str(port), "--ttl", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_health(url, proc)
        yield url
    finally:
        stopped_cleanly(proc)


def stopped_cleanly(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: uvicorn shuts down gracefully and the process exits 0 (a stop is no failure:
    supervisord would otherwise report "terminated by SIGTERM")."""
    proc.terminate()
    assert proc.wait(10) == 0
    assert proc.stdout is not None
    assert b"Application shutdown complete" in proc.stdout.read()


def test_real_service_expires_and_fills_in_the_source_address(service: str) -> None:
    with httpx.Client(base_url=service, timeout=5) as http:
        r = http.post("/register", json=reg_body(1, endpoint="tcp://0.0.0.0:30001"))
        assert r.status_code == 200, r.text
        assert r.json()["node"]["endpoint"] == "tcp://127.0.0.1:30001"
        assert r.json()["ttl_ms"] == 1000
        http.post("/register", json=reg_body(2))

        def listed() -> list[str]:
            nodes = http.get("/nodes", params={"network_id": 7}).json()["nodes"]
            return [n["node_id"] for n in nodes]

        assert listed() == [node_id(2), node_id(1)]

        def renewing_two() -> list[str] | None:
            http.post("/register", json=reg_body(2))  # node 2 keeps renewing, node 1 does not
            ids = listed()
            return ids if node_id(1) not in ids else None

        ids = wait_until(renewing_two, timeout=5, interval=0.3, what="node 1 to expire")
        assert ids == [node_id(2)]
        # nobody renews now: the background sweep drops node 2 (/health only counts)
        wait_until(lambda: http.get("/health").json()["nodes"] == 0, timeout=5,
                   what="the background sweep to drop node 2")
        r = http.post("/register", content=b"x" * 100_000,
                      headers={"content-type": "application/json"})
        assert r.status_code == 413
        try:  # headers are bounded too: refused, never a 5xx
            r = http.get("/health", headers={"x-pad": "a" * 100_000})
            assert r.status_code < 500
        except httpx.TransportError:
            pass
        assert http.get("/health").status_code == 200


def test_ccoin_discovery_command(tmp_path: Any) -> None:
    port = free_port()
    ccoin = [sys.executable, "-c", "import sys; from tools.cli import main; sys.exit(main())"]
    proc = subprocess.Popen([*ccoin, "discovery", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_health(url, proc)
        assert httpx.get(f"{url}/health").json()["ttl_ms"] == 30_000
        # a second one on the same port: one line, non-zero exit
        again = subprocess.run([*ccoin, "discovery", "--host", "127.0.0.1", "--port",
                                str(port)], cwd=ROOT, capture_output=True, text=True,
                               timeout=30)
        assert again.returncode == 1
        assert again.stderr.startswith("error: cannot listen on 127.0.0.1:")
        assert len(again.stderr.strip().splitlines()) == 1
    finally:
        stopped_cleanly(proc)
    bad = subprocess.run([*ccoin, "discovery", "--port", "0"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 2 and "port" in bad.stderr
