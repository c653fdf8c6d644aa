"""The bench's step profile (`tools/bench/profile.py`): every transfer goes through the
gateway's parsing and state's handlers, into blocks, and each step is timed."""

from __future__ import annotations

import gc

import pytest

from runtime.service import GC_THRESHOLDS
from tools.bench import profile
from tools.bench.workload import accounts, presign


def test_every_transfer_is_admitted_and_sealed_and_each_step_is_timed() -> None:
    signers = accounts(10)
    txs = presign(60, signers)
    steps = profile.Steps()
    profile.gateway_steps(txs, steps)
    blocks = profile.state_steps(txs, [s.address for s in signers], steps)
    assert blocks == 1  # 60 transfers fit one block of MAX_BOUND
    assert list(steps.seconds) == [
        "api: read the body (msgpack)", "api: read for the signature check",
        "api: signature check",
        "state: admit (decode, pool, synced journal)", "state: template (apply, state root)",
        "state: import (checks, indexes, commit)"]
    assert all(seconds > 0 for seconds in steps.seconds.values())


def test_many_blocks_are_sealed_with_timestamps_the_chain_accepts() -> None:
    signers = accounts(4)
    txs = presign(40, signers)
    # one block per 4 transfers: ten blocks, more than MAX_FUTURE_MS allows at 1 s apiece
    assert profile.state_steps(txs, [s.address for s in signers], profile.Steps(),
                               max_bound=4) == 10


def test_a_transfer_state_refuses_stops_the_profile() -> None:
    signers = accounts(4)
    txs = presign(8, signers)
    unfunded = [s.address for s in signers[:2]]  # the others' transfers are refused
    with pytest.raises(SystemExit, match="refused"):
        profile.state_steps(txs, unfunded, profile.Steps())


def test_the_profile_collects_garbage_as_the_services_do_and_then_as_before() -> None:
    before = gc.get_threshold()
    with profile.collected_as_a_service():
        assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
