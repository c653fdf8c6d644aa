"""A node split across hosts (issue 15): the chain on host A, a REST gateway on each of hosts
B and C, the bus between them over tcp:// with CurveZMQ.

Network namespaces stand in for the hosts (tests/framework/netns.py: root only, skipped with
the reason otherwise):

    namespace 1 (A): state, miner and p2p, `ccoin node start --services state,miner,p2p`,
                     its bus on tcp://A:port, admitting B's and C's bus keys (`bus.allow`)
    namespace 2 (B): `ccoin node start --services api` with one node.json: A's endpoints
                     and A's bus key (`bus.server_key`)
    namespace 3 (C): the same; and a stranger: a plaintext client and a client whose key A
                     does not admit
    namespace 4 (D): HAProxy in front of B and C, with deploy/multihost/haproxy.cfg (its
                     addresses replaced by the lab's; checked by `haproxy -c` first)

The test process reaches each gateway and the proxy through a unix socket forwarded into
its namespace, and runs `ccoin node status` and the stranger inside theirs. Without
`haproxy` (Debian's package; `make test` installs it as root) the proxy's test skips.

Event streams: each gateway numbers its own (services/api/events.py), so a client that
brings B's `Last-Event-ID` to C is told `resync` by C, then gets C's events gap-free.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.events import parse_sse
from common.crypto import KeyType, PrivateKey, Signer
from common.types import Transaction
from tests.framework import netns
from tests.framework.node import TestNode, stop_together
from tests.framework.ports import free_port
from tests.framework.rest import RestApi
from tests.framework.util import ROOT, ccoin, ccoin_argv, wait_until

log = logging.getLogger("test_feature_multihost")

CHAIN = 1337
SENDER = Signer(PrivateKey.generate(KeyType.ED25519))
A, B, C, D = 1, 2, 3, 4  # the hosts' namespaces
PROXY_CONFIG = ROOT / "deploy" / "multihost" / "haproxy.cfg"


def proxy_config(lab: netns.Lab, port: int, gateways: list[TestNode]) -> str:
    """deploy/multihost/haproxy.cfg with the lab's addresses: it listens on `port`, and its
    two servers are the gateways."""
    text = PROXY_CONFIG.read_text().replace("bind :8080", f"bind {lab.addr(D)}:{port}")
    for name, ns, gateway in zip(("b", "c"), (B, C), gateways, strict=True):
        line = re.search(rf"server gw-{name} (\S+) ", text)
        assert line is not None, f"{PROXY_CONFIG} names no server gw-{name}"
        text = text.replace(line.group(1), f"{lab.addr(ns)}:{gateway.config.api_port}")
    return text

# The stranger, run inside a namespace: a plaintext request, a request under a key A does
# not admit, and a plaintext subscription to the events. Prints what answered.
STRANGER = """
import json, os, sys, zmq
from zmq.utils import z85
from common import messages as m
state, events, server_key = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
ctx = zmq.Context()
def ask(keys):
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if keys:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = keys
    sock.connect(state)
    sock.send_multipart([os.urandom(12), m.encode(m.ServicePing())])
    answered = bool(sock.poll(1000))
    sock.close()
    return answered
public, secret = zmq.curve_keypair()
sub = ctx.socket(zmq.SUB)
sub.linger = 0
sub.subscribe(b"")
sub.connect(events)
report = {"plaintext": ask(None), "stranger": ask((server_key, public, secret)),
          "stranger_key": z85.decode(public).hex(), "events": bool(sub.poll(1000))}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, Any]]:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"the multi-host test needs network namespaces: {reason}")
    netns.sweep_stale()
    short = Path(tempfile.mkdtemp(prefix="ccmh-", dir="/tmp"))  # short socket paths
    lab = netns.Lab(4)
    a = TestNode.create(short / "a", name="A", interval_ms=300,
                        extra_alloc={SENDER.address: 10**9})
    ports = {name: free_port() for name in ("state", "events", "miner", "p2p")}
    endpoints = {name: f"tcp://{lab.addr(A)}:{port}" for name, port in ports.items()}
    gateways = [TestNode.sharing_chain(a, short / name.lower(), name=name,
                                       config={"endpoints": endpoints})
                for name in ("B", "C")]
    for g in gateways:  # reachable by the proxy on the lab's network
        g.edit_config(api={"host": "0.0.0.0"})
    # what operators copy between hosts: each host's `ccoin node keys`
    a_key = json.loads(ccoin("node", "keys", "--config", str(a.config_path), "--json").stdout)
    g_keys = [json.loads(ccoin("node", "keys", "--config", str(g.config_path),
                               "--json").stdout)["bus_key"] for g in gateways]
    a.edit_config(endpoints=endpoints, bus={"allow": g_keys})
    for g in gateways:
        g.edit_config(bus={"server_key": a_key["bus_key"]})
    forwarders: list[subprocess.Popen[bytes]] = []  # and the proxy
    proxy: TestNode | None = None
    try:
        lab.setup()
        a.start_supervised("validator", prefix=lab.argv(A, []),
                           services=("state", "miner", "p2p"), wait=False)
        for g, ns in zip(gateways, (B, C), strict=True):
            g.uds = str(short / f"{g.name}.sock")
            forwarders.append(subprocess.Popen(
                lab.argv(ns, [sys.executable, "-m", "tests.framework.netns", "forward", g.uds,
                              f"127.0.0.1:{g.config.api_port}"]), cwd=ROOT))
        b, c = gateways
        for g, ns in zip(gateways, (B, C), strict=True):
            g.start_supervised("basic", prefix=lab.argv(ns, []), services=("api",), wait=False)
        if shutil.which("haproxy"):
            cfg, port = short / "haproxy.cfg", free_port()
            cfg.write_text(proxy_config(lab, port, gateways))
            check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                                   text=True, timeout=30)
            assert check.returncode == 0, check.stdout + check.stderr
            with open(short / "haproxy.log", "wb") as out:
                forwarders.append(subprocess.Popen(lab.argv(D, ["haproxy", "-db", "-f",
                                                                str(cfg)]), stdout=out,
                                                   stderr=subprocess.STDOUT))
            proxy = TestNode.at(b.config_path, name="proxy", uds=str(short / "proxy.sock"))
            forwarders.append(subprocess.Popen(
                lab.argv(D, [sys.executable, "-m", "tests.framework.netns", "forward",
                             str(proxy.uds), f"{lab.addr(D)}:{port}"]), cwd=ROOT))
        for g in gateways:
            g.wait_api(timeout=60)
        yield {"lab": lab, "a": a, "b": b, "c": c, "endpoints": endpoints,
               "a_key": a_key["bus_key"], "proxy": proxy}
    except BaseException:
        for node in (a, *gateways):
            print(node.tail())
        raise
    finally:
        if proxy is not None:
            proxy.close_clients()
        stop_together([*gateways, a], check=False)
        for proc in forwarders:
            proc.terminate()
            proc.wait(10)
        lab.teardown()
        shutil.rmtree(short, ignore_errors=True)


def _transfers(api: RestApi, to: bytes, count: int) -> list[Transaction]:
    """SENDER's next `count` transfers (from its pending nonce, as a wallet asks it)."""
    first = api.pending_nonce(SENDER.address)
    return [Transaction.create(SENDER, chain_id=CHAIN, nonce=n, to=to, amount=1, fee=1)
            for n in range(first, first + count)]


def test_transfers_through_either_gateway_are_all_confirmed(hosts: dict[str, Any]) -> None:
    b, c = hosts["b"].api, hosts["c"].api
    to = PrivateKey.generate(KeyType.ED25519).address
    txs = _transfers(b, to, 10)
    b.submit_all(txs[:5])
    c.submit_all(txs[5:])
    ids = [tx.id.hex() for tx in txs]
    wait_until(lambda: all(c.confirmed(i) for i in ids[:5]) and
               all(b.confirmed(i) for i in ids[5:]), timeout=20,
               what="every transfer confirmed, seen through the other gateway")
    assert b.balance(to) == c.balance(to) == 10
    # each gateway says which chain host it is attached to, and that it reaches it
    attached = f"{hosts['endpoints']['state']} (CurveZMQ)"
    assert b.status()["chain_host"] == c.status()["chain_host"] == attached
    status = b.status()
    assert status["validator"] and status["p2p"]  # A's miner and p2p over tcp:// too
    ready = b.get("/api/v1/ready")
    assert ready["ready"] and attached in ready["checks"]["state"]["detail"]
    lab, gw = hosts["lab"], hosts["b"]
    out = subprocess.run(lab.argv(B, ccoin_argv("node", "status", "--config",
                                                str(gw.config_path))),
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"chain host: {attached}" in out.stdout and "readiness: ready" in out.stdout


def test_a_stranger_gets_nothing_and_is_logged_once(hosts: dict[str, Any]) -> None:
    lab, endpoints = hosts["lab"], hosts["endpoints"]
    proc = subprocess.run(lab.argv(C, [sys.executable, "-c", STRANGER, endpoints["state"],
                                       endpoints["events"], hosts["a_key"]]),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    log.info("the stranger: %s", report)
    assert not report["plaintext"] and not report["stranger"] and not report["events"]
    a = hosts["a"]

    def refusals() -> list[str]:
        return [line for line in a.log("state").splitlines() if "refused a" in line]

    wait_until(lambda: len(refusals()) >= 2, timeout=5, what="A to log the refusals")
    lines = refusals()
    log.info("refusals: %s", lines)
    keyed = [ln for ln in lines if report["stranger_key"] in ln]
    assert len(keyed) == 1 and f"from {lab.addr(C)}" in keyed[0], lines
    # the plaintext request and subscription failed their handshakes: once per endpoint
    for endpoint in (endpoints["state"], endpoints["events"]):
        assert len([ln for ln in lines if f"connection to {endpoint}" in ln]) == 1, lines
    # the gateways, admitted, still serve
    assert hosts["b"].api.up() and hosts["c"].api.up()


def _acknowledged(node: TestNode, tx: Transaction) -> bool:
    """Whether a batch of `tx` alone, posted to `node`, comes back acknowledged (accepted,
    or a duplicate of what the pool has: a send whose answer was lost went through)."""
    r = node.http.post("/api/v1/txs/batch", json={"txs": [{"raw": tx.raw.hex()}]},
                       timeout=60)
    if r.status_code != 200:
        return False
    result = r.json()["results"][0]
    return bool(result.get("status") == "accepted"
                or (result.get("error") or {}).get("code") == "duplicate")


def test_a_gateway_cut_from_the_chain_host_says_why_and_serves_again_when_it_is_back(
        hosts: dict[str, Any]) -> None:
    """C's link to A cut (C plugged into the other bridge, the bridges apart), the bus's
    tcp connections left half open as a cable pulled leaves them: C answers 503 and says
    why (liveness and readiness name state; a submission is `unavailable`, acknowledged
    never), while B goes on. With the link back C serves again by itself, and every
    transfer acknowledged through either gateway is confirmed."""
    lab, b, c = hosts["lab"], hosts["b"], hosts["c"]
    to = PrivateKey.generate(KeyType.ED25519).address
    txs = _transfers(b.api, to, 3)
    assert _acknowledged(c, txs[0])
    seen = _events(c, 1)[-1]["seq"]  # where a client following C's events stands
    lab.assign(C, 1)
    lab.partition()
    try:
        assert not lab.can_reach(C, A) and lab.can_reach(B, A)
        health = c.http.get("/health", timeout=30)
        assert health.status_code == 503 and health.json()["state"] == "unavailable"
        ready = c.http.get("/api/v1/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["state"]["status"] == "fail", ready.json()
        # not acknowledged: whether state got it is not known here (the request may still
        # be in a half-open connection), so the client sends it again later
        cut = c.http.post("/api/v1/txs/batch", json={"txs": [{"raw": txs[1].raw.hex()}]},
                          timeout=60)
        assert cut.status_code == 503, cut.text
        assert cut.json()["error"]["code"] == "unavailable"
        assert _acknowledged(b, txs[2])  # the other gateway's link is whole
    finally:
        lab.heal()
        lab.assign(C, 0)
    assert lab.can_reach(C, A)
    wait_until(lambda: _acknowledged(c, txs[1]), timeout=60, interval=0.5,
               what="C acknowledging again once its link is back", ignore=(httpx.HTTPError,))
    wait_until(lambda: c.http.get("/api/v1/ready", timeout=10).status_code == 200,
               timeout=30, what="C ready again", ignore=(httpx.HTTPError,))
    # that client, back: told the events of the cut may be missing, then new heads again
    # (a stream that stalls after the link is back fails the read's timeout)
    after = _events(c, 1, last_event_id=str(seen), until="head", after_type="resync")
    assert any(e["type"] == "resync" and "link to state came back" in e["reason"]
               for e in after), after
    ids = [tx.id.hex() for tx in txs]
    wait_until(lambda: all(c.api.confirmed(i) and b.api.confirmed(i) for i in ids),
               timeout=30, what="every acknowledged transfer confirmed")
    assert b.api.balance(to) == c.api.balance(to) == 3


def _events(node: TestNode, n: int, last_event_id: str | None = None, *,
            until: str = "", after_type: str = "") -> list[dict[str, Any]]:
    """The next `n` events of `node`'s stream (after `last_event_id`, when given); with
    `until`, read on until the first event of that type that comes after one of
    `after_type` (10 s at most between two events)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    out: list[dict[str, Any]] = []
    armed = not after_type
    with node.http.stream("GET", "/api/v1/events", headers=headers,
                          timeout=10.0) as r:
        assert r.status_code == 200
        for event_id, data in parse_sse(r.iter_lines()):
            doc = json.loads(data)
            assert event_id == str(doc["seq"])
            out.append(doc)
            armed = armed or doc["type"] == after_type
            if len(out) >= n and (not until or (armed and doc["type"] == until)):
                break
    return out


def test_an_event_client_moved_to_another_gateway_gets_resync(hosts: dict[str, Any]) -> None:
    b, c = hosts["b"], hosts["c"]
    seen = _events(b, 2)
    moved = _events(c, 3, str(seen[-1]["seq"]))
    assert moved[0]["type"] == "resync" and "not issued" in moved[0]["reason"], moved[0]
    # then C's own events, gap-free from where the resync said it resumes
    assert [e["seq"] for e in moved] == [moved[0]["seq"], moved[0]["seq"] + 1,
                                         moved[0]["seq"] + 2]


def _proxy(hosts: dict[str, Any]) -> TestNode:
    if hosts["proxy"] is None:
        pytest.skip("the proxy tests need haproxy (Debian's package; `make test` installs it "
                    "as root)")
    proxy: TestNode = hosts["proxy"]
    return proxy


def test_transfers_through_the_proxy_are_all_confirmed(hosts: dict[str, Any]) -> None:
    proxy = _proxy(hosts)
    to = PrivateKey.generate(KeyType.ED25519).address
    txs = _transfers(proxy.api, to, 12)
    for i in range(0, 12, 3):  # four requests: both gateways take some (leastconn)
        proxy.api.submit_all(txs[i:i + 3])
    ids = [tx.id.hex() for tx in txs]
    wait_until(lambda: all(proxy.api.confirmed(i) for i in ids), timeout=20,
               what="every transfer through the proxy confirmed")
    assert proxy.api.balance(to) == hosts["b"].api.balance(to) == 12


def test_a_gateway_or_state_killed_loses_no_acknowledged_transfer(
        hosts: dict[str, Any]) -> None:
    """Through the proxy: B's gateway killed (the proxy sends on to C), then C's (the proxy
    sends on to B, back by then), then A's state killed
    right after a transfer was acknowledged (the gateways answer 503 until supervisord has
    it back). Every acknowledged transfer is confirmed, and both gateways serve again by
    themselves."""
    proxy, a, b, c = _proxy(hosts), hosts["a"], hosts["b"], hosts["c"]
    to = PrivateKey.generate(KeyType.ED25519).address
    txs = iter(_transfers(proxy.api, to, 7))
    acked: list[str] = []

    def acknowledge() -> None:
        tx = next(txs)

        def taken() -> bool:  # the same transaction again until one answer acknowledges it
            r = proxy.http.post("/api/v1/txs/batch", json={"txs": [{"raw": tx.raw.hex()}]})
            if r.status_code != 200:
                return False
            result = r.json()["results"][0]
            return bool(result.get("status") == "accepted"
                        or (result.get("error") or {}).get("code") == "duplicate")

        wait_until(taken, timeout=30, what="a transfer acknowledged through the proxy",
                   interval=0.2, ignore=(httpx.HTTPError,))
        acked.append(tx.id.hex())

    acknowledge()
    for node, service in ((b, "api"), (c, "api"), (a, "state")):
        before = node.supervised_status()[service]["pid"]
        acknowledge()
        os.kill(before, signal.SIGKILL)
        log.info("killed %s's %s (pid %d)", node.name, service, before)
        acknowledge()

        def back() -> bool:
            now = node.supervised_status()[service]  # noqa: B023 - used at once
            return bool(now["state"] == "RUNNING" and now["pid"] != before)  # noqa: B023

        wait_until(back, timeout=30, what=f"{node.name}'s {service} restarted by supervisord")
    wait_until(lambda: b.api.up() and c.api.up(), timeout=30, what="both gateways serving")
    wait_until(lambda: all(c.api.confirmed(i) and b.api.confirmed(i) for i in acked),
               timeout=30, what="every acknowledged transfer confirmed")
    assert proxy.api.balance(to) == len(acked) == 7
