"""The discovery service's HTTP contract (services/discovery/app.py), in process: requests
reach the ASGI app through httpx's ASGI transport from 127.0.0.1, and the registry runs on a
fake clock, so expiry needs no sleeping: register, renew, list, expire, bounds, every kind
of bad input refused as 400 `malformed`, and no input at all (hypothesis) giving a 5xx.
(The real service as a process: functional/interface_discovery.py.)"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.discovery.app import MAX_BODY, create_app
from services.discovery.registry import Registry

G1 = "aa" * 32
G2 = "bb" * 32


def node_id(i: int) -> str:
    return f"{i:064x}"


def reg_body(i: int = 1, *, network_id: Any = 7, genesis: str = G1, port: int | None = None,
             **over: Any) -> dict[str, Any]:
    body = {"network_id": network_id, "genesis": genesis, "node_id": node_id(i),
            "endpoint": f"tcp://127.0.0.1:{port or 30000 + i}", "curve_key": ""}
    body.update(over)
    return body


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> Registry:
    return Registry(ttl_ms=30_000, max_nodes=5, max_networks=3, monotonic=clock,
                    wall_ms=lambda: int(clock.now * 1000))


class AsgiClient:
    """A synchronous face on httpx's ASGI transport: requests reach the app in-process,
    from the client address 127.0.0.1."""

    def __init__(self, registry: Registry) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=create_app(registry), raise_app_exceptions=False,
                                        client=("127.0.0.1", 4242))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://discovery")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def client(registry: Registry) -> Iterator[AsgiClient]:
    c = AsgiClient(registry)
    try:
        yield c
    finally:
        c.close()


def listed(client: AsgiClient, network_id: int = 7, genesis: str | None = G1) -> list[str]:
    params: dict[str, Any] = {"network_id": network_id}
    if genesis is not None:
        params["genesis"] = genesis
    r = client.get("/nodes", params=params)
    assert r.status_code == 200, r.text
    return [n["node_id"] for n in r.json()["nodes"]]


# --- register, renew, list, expire ---------------------------------------------------------


def test_register_then_list(client: AsgiClient) -> None:
    r = client.post("/register", json=reg_body(1, curve_key="CD" * 32))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["renewed"] is False and doc["ttl_ms"] == 30_000
    assert doc["node"] == {"network_id": 7, "genesis": G1, "node_id": node_id(1),
                           "endpoint": "tcp://127.0.0.1:30001", "curve_key": "cd" * 32,
                           "last_seen": 1_000_000}
    nodes = client.get("/nodes", params={"network_id": 7, "genesis": G1}).json()["nodes"]
    assert nodes == [doc["node"]]
    health = client.get("/health").json()
    assert health == {"status": "ok", "networks": 1, "nodes": 1, "ttl_ms": 30_000}


def test_renew_updates_last_seen_endpoint_and_order(client: AsgiClient, clock: FakeClock,
                                                    ) -> None:
    client.post("/register", json=reg_body(1))
    clock.now += 5
    client.post("/register", json=reg_body(2))
    assert listed(client) == [node_id(2), node_id(1)]  # most recently seen first
    clock.now += 5
    r = client.post("/register", json=reg_body(1, port=40000))
    assert r.json()["renewed"] is True
    assert r.json()["node"]["last_seen"] == 1_010_000
    assert listed(client) == [node_id(1), node_id(2)]
    nodes = client.get("/nodes", params={"network_id": 7}).json()["nodes"]
    assert nodes[0]["endpoint"] == "tcp://127.0.0.1:40000"
    assert len(nodes) == 2


def test_entries_expire_after_the_ttl_unless_renewed(client: AsgiClient,
                                                     clock: FakeClock) -> None:
    client.post("/register", json=reg_body(1))
    client.post("/register", json=reg_body(2))
    clock.now += 20
    client.post("/register", json=reg_body(2))  # heartbeat
    clock.now += 15  # node 1: 35 s since its registration; node 2: 15 s
    assert listed(client) == [node_id(2)]
    clock.now += 16
    assert listed(client) == []
    assert client.get("/health").json()["nodes"] == 0
    r = client.post("/register", json=reg_body(1))
    assert r.json()["renewed"] is False  # expired entries come back as new


def test_networks_are_separate(client: AsgiClient) -> None:
    client.post("/register", json=reg_body(1, network_id=7, genesis=G1))
    client.post("/register", json=reg_body(2, network_id=7, genesis=G2))
    client.post("/register", json=reg_body(3, network_id=8, genesis=G1))
    assert listed(client, 7, G1) == [node_id(1)]
    assert listed(client, 7, G2) == [node_id(2)]
    assert listed(client, 8, G1) == [node_id(3)]
    assert sorted(listed(client, 7, None)) == [node_id(1), node_id(2)]
    assert listed(client, 9, None) == []
    # the same node id in two networks is two entries
    client.post("/register", json=reg_body(1, network_id=8, genesis=G1))
    assert sorted(listed(client, 8, G1)) == [node_id(1), node_id(3)]
    assert listed(client, 7, G1) == [node_id(1)]


def test_an_endpoint_belongs_to_its_last_registrant(client: AsgiClient) -> None:
    client.post("/register", json=reg_body(1, port=31000))
    client.post("/register", json=reg_body(2, port=31000))  # node restarted, new identity
    assert listed(client) == [node_id(2)]


def test_hex_and_hosts_are_normalised(client: AsgiClient) -> None:
    r = client.post("/register", json=reg_body(1, genesis=G1.upper(),
                                               endpoint="tcp://[0:0::1]:30001"))
    assert r.status_code == 200, r.text
    assert r.json()["node"]["genesis"] == G1
    assert r.json()["node"]["endpoint"] == "tcp://[::1]:30001"
    r = client.post("/register", json=reg_body(2, endpoint="tcp://Node-2.Example.org:30002"))
    assert r.json()["node"]["endpoint"] == "tcp://node-2.example.org:30002"
    r = client.post("/register", json={k: v for k, v in reg_body(3).items() if k != "curve_key"})
    assert r.status_code == 200 and r.json()["node"]["curve_key"] == ""
    r = client.post("/register", json=reg_body(4, endpoint="tcp://0.0.0.0:30004"))
    assert r.json()["node"]["endpoint"] == "tcp://127.0.0.1:30004"  # the request's source


# --- bounds --------------------------------------------------------------------------------


def test_a_full_network_refuses_new_nodes_but_renews_old_ones(client: AsgiClient,
                                                              clock: FakeClock) -> None:
    for i in range(5):
        assert client.post("/register", json=reg_body(i)).status_code == 200
    r = client.post("/register", json=reg_body(5))
    assert r.status_code == 429 and r.json()["error"]["code"] == "full"
    assert r.headers["retry-after"]
    assert client.post("/register", json=reg_body(0)).json()["renewed"] is True
    assert client.post("/register", json=reg_body(5, network_id=8)).status_code == 200
    clock.now += 31
    assert client.post("/register", json=reg_body(5)).status_code == 200  # room again


def test_the_number_of_networks_is_bounded(client: AsgiClient, clock: FakeClock) -> None:
    for n in range(3):
        assert client.post("/register", json=reg_body(1, network_id=n)).status_code == 200
    r = client.post("/register", json=reg_body(1, network_id=3))
    assert r.status_code == 429 and r.json()["error"]["code"] == "full"
    clock.now += 31
    assert client.post("/register", json=reg_body(1, network_id=3)).status_code == 200


def test_body_size_is_bounded(client: AsgiClient) -> None:
    big = reg_body(1)
    big["pad"] = "x" * MAX_BODY
    r = client.post("/register", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/register", content=chunks())
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


# --- bad input -----------------------------------------------------------------------------

BAD_REGISTRATIONS: list[tuple[str, Any]] = [
    ("not json", b"{nope"),
    ("array", [1, 2]),
    ("empty object", {}),
    ("missing endpoint", {k: v for k, v in reg_body().items() if k != "endpoint"}),
    ("unknown field", reg_body(extra=1)),
    ("bool network id", reg_body(network_id=True)),
    ("negative network id", reg_body(network_id=-1)),
    ("huge network id", reg_body(network_id=2**32)),
    ("float network id", reg_body(network_id=7.0)),
    ("string network id", reg_body(network_id="7")),
    ("short genesis", reg_body(genesis="ab" * 31)),
    ("non-hex genesis", reg_body(genesis="zz" * 32)),
    ("0x genesis", reg_body(genesis="0x" + "ab" * 31)),
    ("node id number", reg_body(node_id=5)),
    ("long node id", reg_body(node_id="ab" * 33)),
    ("endpoint without scheme", reg_body(endpoint="127.0.0.1:30000")),
    ("http endpoint", reg_body(endpoint="http://127.0.0.1:30000")),
    ("endpoint without port", reg_body(endpoint="tcp://127.0.0.1")),
    ("port 0", reg_body(endpoint="tcp://127.0.0.1:0")),
    ("port too big", reg_body(endpoint="tcp://127.0.0.1:70000")),
    ("port leading zero", reg_body(endpoint="tcp://127.0.0.1:030000")),
    ("bad ipv4", reg_body(endpoint="tcp://300.1.1.1:30000")),
    ("bad ipv6", reg_body(endpoint="tcp://[::zz]:30000")),
    ("bad host", reg_body(endpoint="tcp://-bad-.host:30000")),
    ("wildcard", reg_body(endpoint="tcp://*:30000")),
    ("trailing path", reg_body(endpoint="tcp://127.0.0.1:30000/x")),
    ("newline", reg_body(endpoint="tcp://127.0.0.1:30000\n")),
    ("long endpoint", reg_body(endpoint="tcp://" + "a" * 250 + ".b:1")),
    ("short curve key", reg_body(curve_key="ab")),
    ("z85 curve key", reg_body(curve_key="rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")),
    ("null curve key", reg_body(curve_key=None)),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_REGISTRATIONS],
                         ids=[n for n, _ in BAD_REGISTRATIONS])
def test_bad_registrations_are_400_malformed(client: AsgiClient, body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/register", content=content)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed"
    assert r.json()["error"]["message"]
    assert client.get("/health").json()["nodes"] == 0


@pytest.mark.parametrize("query", [
    "", "network_id=", "network_id=x", "network_id=-1", "network_id=07", "network_id=4294967296",
    "network_id=1&genesis=ab", "network_id=1&other=2", "network_id=1&network_id=2",
    "genesis=" + G1, "network_id=1e3",
])
def test_bad_queries_are_400_malformed(client: AsgiClient, query: str) -> None:
    r = client.get(f"/nodes?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed"


def test_unknown_routes_and_methods(client: AsgiClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/register")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in r.headers["allow"]
    r = client.delete("/nodes")
    assert r.status_code == 405


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                  max_size=6),
    max_leaves=12)
FIELD_VALUES = st.one_of(JSON, st.sampled_from([G1, "tcp://1.2.3.4:5", "tcp://[::]:9", 7]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    JSON,
    st.binary(max_size=300),
    st.fixed_dictionaries({}, optional={k: FIELD_VALUES for k in reg_body()}),
))
def test_no_input_gives_a_5xx(client: AsgiClient, body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/register", content=content)
    assert r.status_code in (200, 400, 413, 429), r.text
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"code", "message"}


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=60))
def test_no_query_gives_a_5xx(client: AsgiClient, query: str) -> None:
    r = client.get("/nodes", params={"network_id": query, "genesis": query})
    assert r.status_code in (200, 400), r.text
    r = client.get(f"/nodes?{urllib.parse.quote(query, safe='=&')}")
    assert r.status_code in (200, 400), r.text
