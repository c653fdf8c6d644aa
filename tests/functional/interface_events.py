"""interface_events: a real node's live event stream (SSE and WebSocket): every head in order
without gaps, a resumed stream that loses nothing, the WebSocket twin, pool removals with
their reason, and a client that survives a gateway restart and is told to resync. The
gateway's numbering, replay ring and loss detection as pure code are unit tests
(tests/unit/services/api/test_events.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from client.events import Event, parse_sse
from common.crypto import KeyType, PrivateKey, Signer
from common.types import Transaction
from services.api import events
from tests.framework.node import TestNode
from tests.framework.util import wait_until

CHAIN = 1337
SENDER = Signer(PrivateKey.generate(KeyType.ED25519))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("events"), interval_ms=300,
                         extra_alloc={SENDER.address: 10**9}) as n:
        yield n.start("state", "miner", "api")


def read_events(url: str, n: int, *, headers: dict[str, str] | None = None,
                params: dict[str, str] | None = None, timeout: float = 20.0,
                until: Callable[[list[Event]], bool] | None = None) -> list[Event]:
    """The next `n` events of a fresh SSE connection, or fewer once `until` holds (then
    the connection is closed)."""
    out: list[Event] = []
    with httpx.stream("GET", f"{url}/api/v1/events", headers=headers, params=params,
                      timeout=httpx.Timeout(5.0, read=timeout)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "text/event-stream")
        for event_id, data in parse_sse(r.iter_lines()):
            doc = json.loads(data)
            assert event_id == str(doc["seq"])
            out.append(Event(doc["seq"], doc["type"], doc))
            if len(out) >= n or until is not None and until(out):
                break
    return out


def assert_gap_free(evs: list[Event]) -> None:
    seqs = [e.seq for e in evs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    heights = [e.data["height"] for e in evs if e.type == "head"]
    assert heights == list(range(heights[0], heights[0] + len(heights))), heights


def test_every_head_in_order_and_a_resume_loses_nothing(node: TestNode) -> None:
    first = read_events(node.url, 6)
    assert_gap_free(first)
    last = first[-1]
    away = node.client.status().height
    wait_until(lambda: node.client.status().height >= away + 4, timeout=20,
               what="four blocks while no stream is open")
    resumed = read_events(node.url, 8, headers={"Last-Event-ID": str(last.seq)})
    assert resumed[0].seq == last.seq + 1
    assert_gap_free(first + resumed)
    # ?since= does the same (the header wins when both are given)
    again = read_events(node.url, 3, params={"since": str(last.seq)},
                        headers={"Last-Event-ID": str(resumed[0].seq)})
    assert again[0].seq == resumed[1].seq
    replay = read_events(node.url, 4, params={"since": "0", "types": "head"})
    assert replay[0].type == "head" and all(e.type == "head" for e in replay)


def test_pool_events_carry_their_reason(node: TestNode) -> None:
    nonce = node.client.account(SENDER.address).pending_nonce
    to = os.urandom(20)
    # a nonce gap keeps both out of blocks, so the replacement is certain to happen
    cheap = Transaction.create(SENDER, chain_id=CHAIN, nonce=nonce + 1, to=to, amount=1, fee=1)
    dear = Transaction.create(SENDER, chain_id=CHAIN, nonce=nonce + 1, to=to, amount=1, fee=9)
    start = read_events(node.url, 1)[0].seq
    assert node.client.submit_tx(cheap) == cheap.id.hex()
    assert node.client.submit_tx(dear) == dear.id.hex()
    def cheap_removed(evs: list[Event]) -> bool:
        return any(cheap.id.hex() in e.data.get("ids", ()) for e in evs
                   if e.type == "txs_removed")

    seen = read_events(node.url, 100, params={"since": str(start - 1),
                                              "types": "txs_added,txs_removed"},
                       until=cheap_removed)
    added = [i for e in seen if e.type == "txs_added" for i in e.data["ids"]]
    assert cheap.id.hex() in added and dear.id.hex() in added
    removed = {i: r for e in seen if e.type == "txs_removed"
               for i, r in zip(e.data["ids"], e.data["reasons"])}
    assert removed.get(cheap.id.hex()) == "replaced"
    # fill the gap: the head that mines them says so
    fill = Transaction.create(SENDER, chain_id=CHAIN, nonce=nonce, to=to, amount=1, fee=1)
    node.client.submit_tx(fill)
    node.client.wait_confirmed(dear.id.hex(), timeout=20, poll=0.1)


def test_unknown_sequence_gets_a_resync(node: TestNode) -> None:
    evs = read_events(node.url, 2, headers={"Last-Event-ID": str(10**12)})
    assert evs[0].type == "resync" and "not issued" in evs[0].data["reason"]
    assert evs[1].seq == evs[0].seq + 1


def test_websocket_carries_the_same_events(node: TestNode) -> None:
    port = node.url.rsplit(":", 1)[1]
    start = read_events(node.url, 1)[0].seq
    with connect(f"ws://127.0.0.1:{port}/api/v1/ws?since={start}&types=head",
                 open_timeout=5) as ws:
        docs = [json.loads(ws.recv(timeout=10)) for _ in range(4)]
    assert [d["seq"] for d in docs][0] > start and all(d["type"] == "head" for d in docs)
    heights = [d["height"] for d in docs]
    assert heights == list(range(heights[0], heights[0] + 4))
    with pytest.raises(InvalidStatus):  # refused at the handshake: unknown event type
        connect(f"ws://127.0.0.1:{port}/api/v1/ws?types=nope", open_timeout=5)


def test_client_reconnects_and_is_told_to_resync(node: TestNode) -> None:
    notes: list[str] = []
    stream = node.client.events(retry_delay=0.2, on_reconnect=notes.append)
    before = [next(stream) for _ in range(2)]
    assert before[1].seq == before[0].seq + 1
    # killed rather than stopped: a SIGTERM waits out uvicorn's graceful shutdown (5 s) for
    # this very stream, and the client sees the same thing either way, a dropped connection
    node.kill("api")
    node.restart("api")
    # what was already received comes first; then the restarted gateway, numbering from
    # 1 again, says that it cannot replay
    after = wait_until(lambda: next(stream).type == "resync", timeout=20, interval=0,
                       what="a resync")
    assert after and notes
    wait_until(lambda: next(stream).type == "head", timeout=10, interval=0,
               what="a head after the restart")
    stream.close()


def test_heads_carry_the_pool_size_and_the_gateway_keeps_the_last_ones(node: TestNode,
                                                                       ) -> None:
    """What the dashboard's pool chart starts from: each head says how big the pool was
    right after it, and GET /mempool/history returns those samples, ordered by height."""
    nonce = node.client.account(SENDER.address).pending_nonce
    to = os.urandom(20)
    # a nonce gap keeps these in the pool across blocks
    queued = [Transaction.create(SENDER, chain_id=CHAIN, nonce=nonce + 1 + i, to=to, amount=1)
              for i in range(3)]
    start = read_events(node.url, 1)[0].seq
    for tx in queued:
        node.client.submit_tx(tx)
    heads = read_events(node.url, 50, params={"since": str(start), "types": "head"},
                        until=lambda evs: sum(e.data["pool_count"] >= 3 for e in evs) >= 2)
    full = [e for e in heads if e.data["pool_count"] >= 3]
    assert len(full) >= 2
    samples = node.http.get("/api/v1/mempool/history").json()["samples"]
    heights = [s["height"] for s in samples]
    assert heights == sorted(set(heights)) and len(samples) <= events.POOL_SAMPLES
    by_height = {s["height"]: s["count"] for s in samples}
    for e in full:  # the same numbers as the events said
        assert by_height[e.data["height"]] == e.data["pool_count"]
    assert min(heights) < full[0].data["height"]  # heads from before the submission, too
    # fill the gap: every queued one is mined, and the samples show the pool draining
    node.client.submit_tx(Transaction.create(SENDER, chain_id=CHAIN, nonce=nonce, to=to,
                                             amount=1))
    node.client.wait_confirmed(queued[-1].id.hex(), timeout=20, poll=0.1)
    wait_until(lambda: node.http.get("/api/v1/mempool/history").json()["samples"][-1][
        "count"] == 0, timeout=10, what="a head with the pool empty again")
