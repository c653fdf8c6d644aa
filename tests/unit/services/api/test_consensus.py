"""`GET /api/v1/consensus` and the chain-health series of `/metrics`, over a real state
service in-process (support.state_node) holding a 2-authority PoA chain: a chain that seals
on time, and one whose head is long past while the in-turn authority is gone; and the
authority votes (`votes`, POST and DELETE /consensus/proposals) on a 3-authority chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import authorities as au
from common.chainhealth import short
from runtime.service import now_ms
from services.api.chainhealth import CONSENSUS_OUT, VOTES_OUT
from tests.framework import rules as rh
from tests.unit.services.api.support import run, state_node

MINUTE = 60_000
FAR_FUTURE = 2**62  # blocks are imported as if now were later than any of them


def two_authority_chain(tmp_path: Path, head_age_ms: int, blocks: int,
                        interval_ms: int) -> tuple[Any, rh.Chain]:
    """The genesis and a chain of `blocks` in-turn blocks, one interval apart, whose head
    was sealed `head_age_ms` ago."""
    start = now_ms() - head_age_ms - blocks * interval_ms
    g = rh.poa_genesis(2, interval_ms=interval_ms, genesis_timestamp=start)
    ref = rh.Chain(g)
    for _ in range(blocks):
        ref.build_and_apply([])
    return g, ref


def metric(text: str, name: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def test_a_chain_on_time_says_whose_turn_it_is(tmp_path: Path) -> None:
    g, ref = two_authority_chain(tmp_path, head_age_ms=1_000, blocks=4, interval_ms=MINUTE)

    async def scenario() -> None:
        async with state_node(tmp_path, genesis=g) as node:
            for block in ref.blocks[1:]:
                node.service.chain.import_block(block, FAR_FUTURE)
            r = await node.http.get("/api/v1/consensus")
            assert r.status_code == 200, r.text
            body = r.json()
            CONSENSUS_OUT.model.model_validate(body)
            turn = g.miners[5 % 2]
            assert body["state"] == "sealing" and body["overdue"] is False
            assert body["summary"] == f"sealing normally: block 5 is {short(turn)}'s turn"
            assert body["in_turn"] == turn.hex() and body["may_seal_next"] == [turn.hex()]
            assert (body["needed_online"], body["tolerates"]) == (2, 0)
            assert body["due_ms"] == ref.tip.timestamp + MINUTE and body["overdue_ms"] == 0
            assert 0 <= body["intervals_since_head"] < 0.5 and body["interval_ms"] == MINUTE
            assert {s["state"] for s in body["signers"]} == {"live"}
            assert all(s["missed"] == 0 and s["sealed"] == 2 for s in body["signers"])
            scrape = (await node.http.get("/metrics")).text
            assert metric(scrape, "ccoin_chain_overdue") == 0
            assert metric(scrape, "ccoin_chain_overdue_seconds") == 0
            assert metric(scrape, "ccoin_authorities_offline") == 0

    run(scenario)


def test_a_stalled_chain_names_the_offline_authority(tmp_path: Path) -> None:
    interval = 1_000
    g, ref = two_authority_chain(tmp_path, head_age_ms=10 * interval, blocks=4,
                                 interval_ms=interval)

    async def scenario() -> None:
        async with state_node(tmp_path, genesis=g) as node:
            for block in ref.blocks[1:]:
                node.service.chain.import_block(block, FAR_FUTURE)
            body = (await node.http.get("/api/v1/consensus", params={"window": 3})).json()
            CONSENSUS_OUT.model.model_validate(body)
            gone, held = g.miners[5 % 2], g.miners[4 % 2]
            assert body["state"] == "waiting" and body["overdue"] is True
            assert body["summary"].startswith(
                f"waiting: authority {short(gone)} is offline; with 2 authorities both must "
                f"be online")
            assert body["intervals_since_head"] >= 10 and body["overdue_ms"] >= 9 * interval
            signers = {s["address"]: s for s in body["signers"]}
            assert signers[gone.hex()]["state"] == "offline"
            assert signers[gone.hex()]["missed_since_head"] >= 4  # every other slot is its
            assert signers[held.hex()]["sealed"] == 2
            assert signers[held.hex()]["state"] == "live"
            assert signers[held.hex()]["may_seal"] is False
            assert body["window"] == 3 and sum(s["sealed"] for s in body["signers"]) == 3
            scrape = (await node.http.get("/metrics")).text
            assert metric(scrape, "ccoin_chain_overdue") == 1
            assert metric(scrape, "ccoin_chain_overdue_seconds") >= 9
            assert metric(scrape, "ccoin_authorities_offline") == 1

    run(scenario)


# --- authority votes: GET /consensus `votes`, POST and DELETE /consensus/proposals -----------


def test_proposals_are_set_shown_voted_and_discarded(tmp_path: Path) -> None:
    g = rh.poa_genesis(3)
    a, b, c = g.miners
    d = rh.address(103)
    ref = rh.Chain(g)
    ref.build_and_apply(vote=au.encode_vote(d, True))  # height 1: B votes D in

    async def scenario() -> None:
        async with state_node(tmp_path, genesis=g) as node:
            node.service.chain.import_block(ref.blocks[-1], FAR_FUTURE)
            node.service.voter = c
            votes = (await node.http.get("/api/v1/consensus")).json()["votes"]
            assert votes["authorities"] == [x.hex() for x in (a, b, c)]
            assert (votes["needed"], votes["epoch"], votes["next_checkpoint"]) == (
                2, 30_000, 30_000)
            assert votes["proposals"] == [{"address": d.hex(), "authorize": True, "votes": 1,
                                           "voters": [b.hex()]}]
            r = await node.http.post("/api/v1/consensus/proposals",
                                     json={"address": d.hex(), "authorize": True})
            assert r.status_code == 200, r.text
            VOTES_OUT.model.model_validate(r.json())
            assert r.json()["own"] == [{"address": d.hex(), "authorize": True, "done": False,
                                        "voted": False}]
            template = node.service.chain.template(c, FAR_FUTURE, b"")
            assert au.decode_vote(template.header.vote) == (d, True)
            # removing A would leave B and C, only B live (A and C sealed nothing yet)
            r = await node.http.post("/api/v1/consensus/proposals",
                                     json={"address": a.hex(), "authorize": False})
            assert [p["address"] for p in r.json()["own"]] == [d.hex(), a.hex()]
            (warning,) = r.json()["warnings"]
            assert warning.startswith(f"removing {short(a)} leaves 2 authorities of which 1 "
                                      "is live; 2 must be online")
            r = await node.http.delete(f"/api/v1/consensus/proposals/{a.hex()}")
            assert r.status_code == 200 and r.json()["warnings"] == []
            assert [p["address"] for p in r.json()["own"]] == [d.hex()]
            r = await node.http.delete(f"/api/v1/consensus/proposals/{a.hex()}")
            assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
            for body in ({"address": d.hex(), "authorize": "yes"}, {"address": "11"},
                         {"address": d.hex()}):
                r = await node.http.post("/api/v1/consensus/proposals", json=body)
                assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed"), body
            r = await node.http.delete("/api/v1/consensus/proposals/xyz")
            assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")

    run(scenario)


def test_a_pow_chain_has_no_proposals(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            votes = (await node.http.get("/api/v1/consensus")).json()["votes"]
            assert votes["authorities"] == [] and votes["next_checkpoint"] == 0
            r = await node.http.post("/api/v1/consensus/proposals",
                                     json={"address": "11" * 20, "authorize": True})
            assert (r.status_code, r.json()["error"]["code"]) == (409, "refused")

    run(scenario)
