"""Readiness (services/api/readiness.py): each check as a pure function of what the services
answered, and `GET /api/v1/ready` and its metrics against a real state service in-process
(state silenced; a stand-in miner whose rounds keep failing)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from common import messages as m
from common.status import PeerDirection
from services.api.readiness import (
    CHECKS,
    FAIL,
    MIN_STALE_MS,
    OK,
    SKIP,
    STALE_INTERVALS,
    Facts,
    assess,
    stale_after_ms,
)
from tests.unit.services.api.support import bus_server, run, state_node

NOW = 1_800_000_000_000
INTERVAL = 2_000
LIMIT = stale_after_ms(INTERVAL)  # 10 s: the floor, over 5 intervals of 2 s
ME = b"\x3f" * 20


def status(height: int = 42, age_ms: int = 1_000, ready_count: int = 0,
           storage: str = "") -> m.StatusReply:
    return m.StatusReply(1337, bytes(32), height, b"\x5e" * 32, NOW - age_ms, 84, bytes(32),
                         ready_count, 0, ready_count, True, (ME,), (), 4, storage,
                         3 * 2**30, 100 * 2**20)


def mining(enabled: bool = True, round_age_ms: int = 100, failing_for_ms: int = 0,
           error: str = "") -> m.MiningReply:
    return m.MiningReply(enabled, ME, 7, b"\x5e" * 32, NOW - 5_000, NOW - round_age_ms,
                         NOW - failing_for_ms if failing_for_ms else 0, error)


def peer(height: int) -> m.PeerEntry:
    return m.PeerEntry(b"\x01" * 32, "tcp://10.0.0.2:30333", PeerDirection.OUTBOUND,
                       height, b"\x77" * 32, height * 2, 0, 5, NOW - 60_000)


def peers(*heights: int) -> m.PeersReply:
    return m.PeersReply(tuple(peer(h) for h in heights), False, 0, b"\x02" * 32, 0,
                        "tcp://10.0.0.1:30333")


def facts(**changes: Any) -> Facts:
    """A healthy validator with one peer at its height; `changes` alter it."""
    base = Facts(now_ms=NOW, state=status(), state_error="", has_miner=True,
                 miner=mining(), has_p2p=True, peers=peers(42), outbound_only=False,
                 interval_ms=INTERVAL, allow_empty=True)
    return dataclasses.replace(base, **changes)


def statuses(f: Facts) -> dict[str, str]:
    checks = assess(f).checks
    return {name: getattr(checks, name).status for name in CHECKS}


def detail(f: Facts, name: str) -> str:
    return str(getattr(assess(f).checks, name).detail)


# --- the checks, from the facts -----------------------------------------------------------------


def test_a_healthy_validator_is_ready() -> None:
    answer = assess(facts())
    assert answer.ready and answer.reasons == [] and answer.line() == "ready"
    assert statuses(facts()) == dict.fromkeys(CHECKS, OK)
    assert detail(facts(), "head") == "head 42 is 1 s old"
    assert detail(facts(), "p2p") == "listening, 1 peer(s)"


def test_state_silent_fails_state_alone() -> None:
    f = facts(state=None, state_error="no reply within 3 s")
    assert statuses(f) == {"state": FAIL, "storage": SKIP, "head": SKIP, "miner": OK,
                           "p2p": OK}
    assert assess(f).line() == "not ready: state: state did not answer: no reply within 3 s"


def test_a_gateway_names_the_chain_host_it_is_attached_to() -> None:
    host = "tcp://10.0.0.1:7101 (CurveZMQ)"
    assert assess(facts(attached=host)).checks.state.detail == f"height 42 (chain host {host})"
    assert assess(facts(state=None, state_error="no reply", attached=host)).line() == (
        f"not ready: state: state did not answer (chain host {host}): no reply")


def test_storage_reports_why_state_may_not_write() -> None:
    f = facts(state=status(storage="disk space low: 3.0 MB free"))
    assert assess(f).reasons == ["storage: disk space low: 3.0 MB free"]
    assert detail(facts(), "storage") == "state reads and writes; 3072 MB free (keeps 100 MB)"


def test_the_head_must_advance_while_this_node_seals_or_a_peer_is_ahead() -> None:
    assert stale_after_ms(INTERVAL) == MIN_STALE_MS
    assert stale_after_ms(10_000) == STALE_INTERVALS * 10_000
    old = status(age_ms=LIMIT + 1)
    assert statuses(facts(state=status(age_ms=LIMIT)))["head"] == OK  # at the limit: fine
    sealing = facts(state=old)
    assert assess(sealing).reasons == [
        "head: head 42 is 10 s old (over 5 intervals of 2 s) while this node seals"]
    # mining switched off: nothing is due from this node...
    idle = facts(state=old, miner=mining(enabled=False))
    assert statuses(idle)["head"] == OK
    assert detail(idle, "head").endswith("this node does not seal and no peer is ahead")
    # ...unless a peer is ahead: then this node is behind and not catching up
    behind = facts(state=old, miner=mining(enabled=False), peers=peers(41, 50))
    assert assess(behind).reasons == ["head: head 42 is 10 s old while a peer is at height 50"]
    # nothing to seal: empty blocks off and no transaction ready
    quiet = facts(state=old, allow_empty=False)
    assert statuses(quiet)["head"] == OK and "nothing to seal" in detail(quiet, "head")
    assert statuses(facts(state=status(age_ms=LIMIT + 1, ready_count=3),
                          allow_empty=False))["head"] == FAIL


def test_a_stuck_miner_is_not_ready_a_stopped_one_is_a_choice() -> None:
    assert statuses(facts(has_miner=False, miner=None))["miner"] == SKIP
    assert assess(facts(miner=None)).reasons == ["miner: the miner did not answer"]
    assert statuses(facts(miner=mining(enabled=False)))["miner"] == SKIP
    # a failure that is being retried is fine for a while...
    retrying = facts(miner=mining(failing_for_ms=LIMIT, error="state unavailable: timeout"))
    assert statuses(retrying)["miner"] == OK
    assert detail(retrying, "miner") == "retrying after: state unavailable: timeout"
    # ...not when it goes on
    stuck = facts(miner=mining(failing_for_ms=LIMIT + 1_000,
                               error="rejected by state: bad_state_root: mismatch"))
    assert assess(stuck).reasons == [
        "miner: its rounds have failed for 11 s: rejected by state: bad_state_root: mismatch"]
    wedged = facts(miner=mining(round_age_ms=LIMIT + 1_000))
    assert assess(wedged).reasons == ["miner: no sealing round for 11 s"]


def test_p2p_answers_listening_or_outbound_only() -> None:
    assert statuses(facts(has_p2p=False, peers=None))["p2p"] == SKIP
    assert assess(facts(peers=None)).reasons == ["p2p: p2p did not answer"]
    assert detail(facts(outbound_only=True, peers=peers()), "p2p") == \
        "outbound only (p2p.outbound_only), 0 peer(s)"


@given(state_up=st.booleans(), miner=st.sampled_from(["none", "silent", "off", "ok", "stuck"]),
       p2p=st.sampled_from(["none", "silent", "ok"]), age=st.integers(0, 10 * LIMIT),
       ahead=st.integers(-5, 5))
def test_ready_exactly_when_no_check_fails(state_up: bool, miner: str, p2p: str, age: int,
                                           ahead: int) -> None:
    f = facts(state=status(age_ms=age) if state_up else None, state_error="down",
              has_miner=miner != "none",
              miner={"none": None, "silent": None, "off": mining(enabled=False),
                     "ok": mining(), "stuck": mining(failing_for_ms=2 * LIMIT, error="x")
                     }[miner],
              has_p2p=p2p != "none", peers=peers(42 + ahead) if p2p == "ok" else None)
    answer = assess(f)
    failing = [name for name, s in statuses(f).items() if s == FAIL]
    assert answer.ready == (not failing)
    assert [r.split(":", 1)[0] for r in answer.reasons] == failing
    assert all("\n" not in r for r in answer.reasons)  # one line each


# --- the route, against a real state service ----------------------------------------------------


def test_ready_turns_503_when_state_goes_silent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            ok = await node.http.get("/api/v1/ready")
            assert ok.status_code == 200, ok.text
            body = ok.json()
            # a single node: no miner, no p2p; its genesis head is old, but nothing is due
            assert (body["ready"], body["reasons"]) == (True, [])
            assert {n: c["status"] for n, c in body["checks"].items()} == {
                "state": OK, "storage": OK, "head": OK, "miner": SKIP, "p2p": SKIP}
            metrics = (await node.http.get("/metrics")).text
            assert "ccoin_ready 1.0" in metrics
            assert 'ccoin_ready_check{check="state"} 1.0' in metrics

            node.serving.cancel()  # state stops answering (as when SIGSTOPped)
            await asyncio.gather(node.serving, return_exceptions=True)
            t0 = time.monotonic()
            down = await node.http.get("/api/v1/ready")
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            assert time.monotonic() - t0 < 10  # one attempt, its timeout
            body = down.json()
            assert body["ready"] is False
            assert body["reasons"] == [f"state: {body['checks']['state']['detail']}"]
            assert body["checks"]["state"]["detail"].startswith("state did not answer")
            metrics = (await node.http.get("/metrics")).text
            assert "ccoin_ready 0.0" in metrics
            assert 'ccoin_ready_check{check="state"} 0.0' in metrics
            assert 'ccoin_ready_check{check="p2p"} 1.0' in metrics

    run(scenario)


def test_a_miner_whose_rounds_keep_failing_makes_the_node_not_ready(tmp_path: Path) -> None:
    endpoint = f"inproc://miner-{tmp_path.name}"

    def stuck(_: m.GetMining) -> m.MiningReply:
        now = int(time.time() * 1000)
        return m.MiningReply(True, ME, 3, b"", now - 60_000, now, now - 60_000,
                             "rejected by state: bad_state_root: state root mismatch")

    async def scenario() -> None:
        async with state_node(tmp_path, config={"endpoints": {"miner": endpoint}}) as node:
            ctx = node.app.state.gateway.ctx
            async with bus_server(ctx, endpoint, {m.GetMining: stuck}):
                reply = await node.http.get("/api/v1/ready")
                assert reply.status_code == 503
                # and its chain stands still (the genesis is its head) while it "seals"
                head, miner = reply.json()["reasons"]
                assert head.startswith("head: head 0 is ") and head.endswith("this node seals")
                assert miner == ("miner: its rounds have failed for 60 s: rejected by state: "
                                 "bad_state_root: state root mismatch")

    run(scenario)
