"""The gateway's live events as pure code (services/api/events.py): numbering, the replay
ring and its bounds, loss and restart detection turned into `resync`, filtering and
heartbeats, and the SSE framing the client library parses."""

from __future__ import annotations

import asyncio
import json

from client.events import parse_sse
from common import messages as m
from common.status import RemovalReason
from services.api import events
from services.api.events import EventHub


def head(height: int) -> m.HeadEvent:
    return m.HeadEvent(height, bytes([height % 256]) * 32, 2 * height, 0, 1000 * height,
                       height % 7)


def test_hub_numbers_every_event_and_converts_each_kind() -> None:
    hub = EventHub()
    hub.on_bus(b"head", 1, head(1))
    hub.on_bus(b"txs", 1, m.TxsEvent((b"\x01" * 32,)))
    hub.on_bus(b"reorg", 1, m.ReorgEvent((b"\x02" * 32,), (b"\x03" * 32, b"\x04" * 32)))
    hub.on_bus(b"txs_removed", 1, m.TxsRemovedEvent((b"\x05" * 32,), (RemovalReason.EVICTED,)))
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


def test_a_batch_s_ids_weigh_in_the_ring_as_their_json_does_and_read_as_json() -> None:
    for count in (0, 1, 1000):
        hub = EventHub()
        ids = tuple(i.to_bytes(32, "big") for i in range(count))
        hub.on_bus(b"txs", 1, m.TxsEvent(ids))
        hub.on_bus(b"head", 1, head(1))
        counted = hub.ring_bytes
        # a follower of heads alone gets the head, not the ids
        assert [t for _, t, _ in hub.read(0, frozenset({"head"}))[0]] == ["head"]
        (_, _, added), (_, _, first_head) = hub.read(0)[0]
        assert json.loads(added) == {"seq": 1, "type": "txs_added", "ids": [i.hex() for i in ids]}
        assert hub.read(0)[0][0][2] is added  # rendered once
        # the count the ring's byte bound uses is never below the rendered JSON
        assert len(added) + len(first_head) <= counted == hub.ring_bytes
        assert counted - len(added) - len(first_head) <= 64


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


def test_hub_says_resync_when_its_link_to_state_comes_back_not_when_it_first_comes_up() -> None:
    hub = EventHub()
    hub.on_connected()  # the gateway's first link: nothing was followed, nothing missed
    hub.on_bus(b"head", 1, head(1))
    hub.on_bus(b"head", 2, head(2))
    hub.on_connected()  # state restarted: what it published before the link was back is gone
    hub.on_bus(b"head", 1, head(3))  # its numbering begins again: not a second resync
    types = [json.loads(data)["type"] for _, _, data in hub.read(0)[0]]
    assert types == ["head", "head", "resync", "head"]


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


def test_another_gateways_number_is_a_resync_never_a_replay() -> None:
    """Two gateway processes (hosts B and C) number their streams from random starts: a
    client that brings B's last number to C is told to resync (C's own later events follow),
    whichever side of C's numbers it falls on."""
    b_hub, c_hub = EventHub(start=events.fresh_start()), EventHub(start=events.fresh_start())
    assert 0 <= b_hub.start < events.FIRST_SEQ_SPAN and b_hub.start != c_hub.start
    for h in range(1, 6):
        for hub in (b_hub, c_hub):
            hub.on_bus(b"head", h, head(h))
    assert b_hub.read(b_hub.seq - 2)[0][0][0] == b_hub.seq - 1  # at home: a replay
    for foreign in (c_hub.start - 1, c_hub.seq + 1):  # below C's first, above its last
        kept, cursor, reason = c_hub.read(foreign)
        assert (kept, cursor) == ([], c_hub.seq) and "not issued" in reason
    small = EventHub(start=10**9)
    small.on_bus(b"head", 1, head(1))
    assert small.read(10**9)[0][0][0] == 10**9 + 1  # a client from the first event on
    assert "not issued" in small.read(3)[2]
    assert [s for s, _, _ in small.read(0)[0]] == [10**9 + 1]  # since=0: every kept event


def test_resume_point_and_sse_parsing() -> None:
    assert events.parse_since("12", 3) == 12
    assert events.parse_since(None, 3) == 3
    assert events.parse_since("junk", None) is None
    assert events.sse_frame(5, b'{"seq":5}') == b'id: 5\ndata: {"seq":5}\n\n'
    text = 'retry: 2000\n\n: keep-alive\n\nid: 5\ndata: {"seq":5,\ndata: "type":"head"}\n\n'
    assert list(parse_sse(iter(text.split("\n")))) == [("5", '{"seq":5,\n"type":"head"}')]
