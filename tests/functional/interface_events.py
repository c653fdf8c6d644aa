"""interface_events: live events. The gateway's numbering, replay ring and loss detection
as pure code, then a real node's stream: every head in order without gaps, a resumed
stream that loses nothing, the WebSocket twin, pool removals with their reason, and a
client that survives a gateway restart and is told to resync."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from client.events import Event, parse_sse
from common import messages as m
from common.crypto import KeyType, PrivateKey, Signer
from common.types import Transaction
from services.api import events
from services.api.events import EventHub
from tests.framework.apinode import RunningNode, running_node, start_api, wait_for

CHAIN = 1337
SENDER = Signer(PrivateKey.generate(KeyType.ED25519))


# --- the hub, pure ---------------------------------------------------------------------------


def head(height: int) -> m.HeadEvent:
    return m.HeadEvent(height, bytes([height % 256]) * 32, 2 * height, 0, 1000 * height,
                       height % 7)


def test_hub_numbers_every_event_and_converts_each_kind() -> None:
    hub = EventHub()
    hub.on_bus(b"head", 1, head(1))
    hub.on_bus(b"txs", 1, m.TxsEvent((b"\x01" * 32,)))
    hub.on_bus(b"reorg", 1, m.ReorgEvent((b"\x02" * 32,), (b"\x03" * 32, b"\x04" * 32)))
    hub.on_bus(b"txs_removed", 1, m.TxsRemovedEvent((b"\x05" * 32,), ("evicted",)))
    hub.on_bus(b"other", 1, m.Ok())  # a topic the gateway does not know is not numbered
    got, cursor, reason = hub.read(0)
    assert cursor == 4 and reason == ""
    docs = [json.loads(data) for _, _, data in got]
    assert [d["seq"] for d in docs] == [1, 2, 3, 4]
    assert docs[0] == {"seq": 1, "type": "head", "height": 1, "hash": "01" * 32,
                       "total_weight": 2, "tx_count": 0, "timestamp": 1000, "pool_count": 1}
    assert docs[1] == {"seq": 2, "type": "txs_added", "ids": ["01" * 32]}
    assert docs[2] == {"seq": 3, "type": "reorg", "disconnected": ["02" * 32],
                       "connected": ["03" * 32, "04" * 32], "depth": 1}
    assert docs[3] == {"seq": 4, "type": "txs_removed", "ids": ["05" * 32],
                       "reasons": ["evicted"]}


def test_hub_turns_a_gap_or_a_restart_of_state_into_resync() -> None:
    hub = EventHub()
    hub.on_bus(b"head", 7, head(1))  # the first seen: no baseline, no gap
    hub.on_bus(b"head", 8, head(2))
    hub.on_bus(b"head", 11, head(5))  # 9 and 10 were dropped at the PUB's high-water mark
    hub.on_bus(b"head", 1, head(6))  # state restarted
    types = [(json.loads(d)["type"], json.loads(d).get("reason", "")) for _, _, d in
             hub.read(0)[0]]
    assert [t for t, _ in types] == ["head", "head", "resync", "head", "resync", "head"]
    assert "lost 2 head event(s)" in types[2][1] and "restarted" in types[4][1]
    assert hub.lost == 2


def test_hub_ring_is_bounded_and_says_what_it_cannot_replay() -> None:
    hub = EventHub(keep_events=5, keep_bytes=10**6)
    for h in range(1, 13):
        hub.on_bus(b"head", h, head(h))
    assert (hub.seq, hub.oldest, len(hub.ring)) == (12, 8, 5)
    got, cursor, reason = hub.read(3)
    assert [s for s, _, _ in got] == [8, 9, 10, 11, 12] and cursor == 12
    assert "4..7 are no longer kept" in reason
    got, _, reason = hub.read(10)
    assert [s for s, _, _ in got] == [11, 12] and reason == ""
    got, cursor, reason = hub.read(99)
    assert got == [] and cursor == 12 and "not issued" in reason
    small = EventHub(keep_events=1000, keep_bytes=600)
    for h in range(1, 30):
        small.on_bus(b"head", h, head(h))
    assert small.ring_bytes <= 600 and len(small.ring) >= 1 and small.seq == 29


def test_follow_replays_filters_notifies_and_beats() -> None:
    async def go() -> list[tuple[int, dict[str, object]] | None]:
        hub = EventHub(keep_events=3)
        for h in range(1, 6):
            hub.on_bus(b"head", h, head(h))
        hub.on_bus(b"txs", 1, m.TxsEvent((b"\x09" * 32,)))
        out: list[tuple[int, dict[str, object]] | None] = []
        stream = hub.follow(1, frozenset({"head"}), heartbeat=0.05)
        async for item in stream:
            out.append(None if item is None else (item[0], json.loads(item[1])))
            if len(out) == 4:
                hub.on_bus(b"head", 6, head(6))
            if len(out) == 5:
                break
        await stream.aclose()
        return out

    out = asyncio.run(go())
    assert out[0] is not None and out[0][1]["type"] == "resync" and out[0][0] == 3
    assert [(o[0], o[1]["type"]) for o in out[1:3] if o] == [(4, "head"), (5, "head")]
    assert out[3] is None  # a heartbeat: seq 6 (txs_added) was filtered out
    assert out[4] is not None and out[4][0] == 7 and out[4][1]["height"] == 6


def test_resume_point_and_sse_parsing() -> None:
    assert events.parse_since("12", 3) == 12
    assert events.parse_since(None, 3) == 3
    assert events.parse_since("junk", None) is None
    assert events.sse_frame(5, b'{"seq":5}') == b'id: 5\ndata: {"seq":5}\n\n'
    text = 'retry: 2000\n\n: keep-alive\n\nid: 5\ndata: {"seq":5,\ndata: "type":"head"}\n\n'
    assert list(parse_sse(iter(text.split("\n")))) == [("5", '{"seq":5,\n"type":"head"}')]


# --- a real node -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("events"), interval_ms=300,
                      extra_alloc={SENDER.address: 10**9}) as n:
        yield n


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


def test_every_head_in_order_and_a_resume_loses_nothing(node: RunningNode) -> None:
    first = read_events(node.url, 6)
    assert_gap_free(first)
    last = first[-1]
    time.sleep(1.2)  # about four blocks happen while we are away
    resumed = read_events(node.url, 8, headers={"Last-Event-ID": str(last.seq)})
    assert resumed[0].seq == last.seq + 1
    assert_gap_free(first + resumed)
    # ?since= does the same (the header wins when both are given)
    again = read_events(node.url, 3, params={"since": str(last.seq)},
                        headers={"Last-Event-ID": str(resumed[0].seq)})
    assert again[0].seq == resumed[1].seq
    replay = read_events(node.url, 4, params={"since": "0", "types": "head"})
    assert replay[0].type == "head" and all(e.type == "head" for e in replay)


def test_pool_events_carry_their_reason(node: RunningNode) -> None:
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


def test_unknown_sequence_gets_a_resync(node: RunningNode) -> None:
    evs = read_events(node.url, 2, headers={"Last-Event-ID": str(10**12)})
    assert evs[0].type == "resync" and "not issued" in evs[0].data["reason"]
    assert evs[1].seq == evs[0].seq + 1


def test_websocket_carries_the_same_events(node: RunningNode) -> None:
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


def test_client_reconnects_and_is_told_to_resync(node: RunningNode) -> None:
    notes: list[str] = []
    stream = node.client.events(retry_delay=0.2, on_reconnect=notes.append)
    before = [next(stream) for _ in range(2)]
    assert before[1].seq == before[0].seq + 1
    api = node.processes["api"]
    api.stop()
    node.processes["api"] = start_api(node.chain.config_path, node.url)
    # what was already received comes first; then the restarted gateway, numbering from
    # 1 again, says that it cannot replay
    after = wait_for("a resync", lambda: next(stream).type == "resync", timeout=20, every=0)
    assert after and notes
    wait_for("a head after the restart", lambda: next(stream).type == "head", timeout=10)
    stream.close()


def test_heads_carry_the_pool_size_and_the_gateway_keeps_the_last_ones(node: RunningNode,
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
    wait_for("a head with the pool empty again", lambda: node.http.get(
        "/api/v1/mempool/history").json()["samples"][-1]["count"] == 0, 10)
