"""A batch's signatures checked across threads (`services.api.signatures`): every
outcome in its transaction's place, however the batch is cut."""

from __future__ import annotations

import asyncio

import pytest

from common.signed import SignedTx
from services.api.signatures import PARALLEL_MIN, SignatureChecker
from tests.unit.services.api.support import signed


def batch(n: int, bad: set[int]) -> list[SignedTx]:
    txs = [signed(nonce=i) for i in range(n)]
    return [SignedTx.of(tx.with_signature(bytes(64)) if i in bad else tx)
            for i, tx in enumerate(txs)]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 5, PARALLEL_MIN, PARALLEL_MIN * 3 + 1])
def test_each_outcome_lands_on_its_transaction(threads: int, n: int) -> None:
    bad = {i for i in range(n) if i % 7 == 3} | ({n - 1} if n else set())
    checker = SignatureChecker(threads)
    try:
        outcomes = asyncio.run(checker.verify(batch(n, bad)))
    finally:
        checker.close()
    assert outcomes == [i not in bad for i in range(n)]
