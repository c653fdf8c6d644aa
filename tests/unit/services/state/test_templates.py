"""Block templates on a real LevelDB: a template is a valid block once sealed, skips (and
drops) what no longer applies, and its state changes are remembered for the sealed copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import errors
from common.encoding import pack
from common.types import Block
from services.state.chain import Chain
from services.state.store import Store
from services.state.templates import TemplateCache
from tests.framework import rules as rh

NOW = 2**62  # far future: timestamps of the built blocks are never "in the future"


def test_template_is_a_valid_block_and_skips_stale_transactions(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    chain = Chain(Store(tmp_path), g)
    poor = rh.transfer(30, rh.address(9), 1, nonce=0)  # address(30) has no funds
    chain.mempool.add(poor, chain.account(rh.address(1)))  # slipped in: sender looked rich
    chain.add_transactions([rh.transfer(1, rh.address(9), 1, nonce=0)])
    tpl = chain.template(rh.address(100), rh.GENESIS_TIME + 5, b"")
    assert len(tpl.txs) == 1 and poor.id not in chain.mempool
    assert chain.fates[poor.id].reason == "stale"
    sealed = Block(rh.seal(g, tpl.header, rh.signer(100)), tpl.txs)
    assert chain.import_block(sealed, NOW).status == "head"
    assert len(chain.mempool) == 0
    assert chain.account(rh.address(9)).balance == 1


def test_the_cache_answers_for_a_sealed_copy_of_its_own_template_once(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    chain = Chain(Store(tmp_path), g)
    chain.add_transactions([rh.transfer(1, rh.address(9), 3, nonce=0)])
    tpl = chain.template(rh.address(100), rh.GENESIS_TIME + 5, b"")
    sealed = rh.seal(g, tpl.header, rh.signer(100))
    assert sealed.hash != tpl.header.hash  # sealing changed the proof fields only
    cache = TemplateCache()
    ref = rh.Chain(g)
    changes = ref.apply(ref.build(tpl.txs, timestamp=tpl.header.timestamp), validate=False)
    assert changes.state_root == tpl.header.state_root
    own = Block(sealed, tpl.txs)
    cache.put(tpl, changes)
    assert cache.body(sealed) is tpl
    # another state root under the same parent, coinbase and transactions is not ours
    assert cache.take(Block(sealed.replace(state_root=b"\x00" * 32), tpl.txs)) is None
    cache.put(tpl, changes)
    # nor are equal transactions decoded anew: only the template's own were checked
    assert cache.take(Block.decode(own.raw)) is None
    cache.put(tpl, changes)
    assert cache.take(own) is changes
    assert cache.take(own) is None  # taken: a second copy is applied the normal way
    cache.put(tpl, changes)
    cache.clear()
    assert cache.take(own) is None and cache.body(sealed) is None


def test_a_sealed_template_decodes_to_the_template_s_transactions(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    chain = Chain(Store(tmp_path), g)
    chain.add_transactions([rh.transfer(1, rh.address(9), 3, nonce=n) for n in range(3)])
    tpl = chain.template(rh.address(100), rh.GENESIS_TIME + 5, b"")
    sealed = Block(rh.seal(g, tpl.header, rh.signer(100)), tpl.txs)
    decoded = Block.decode(sealed.raw, body=chain.templates.body)
    assert decoded == sealed and decoded.txs is tpl.txs
    # a body that is not the template's (here one transaction short, under the template's
    # header) is decoded the normal way, and import refuses it for its tx_root
    short = pack([sealed.header.fields(), [tx.raw for tx in tpl.txs[:2]]])
    mutated = Block.decode(short, body=chain.templates.body)
    assert mutated.txs == tpl.txs[:2] and mutated.txs is not tpl.txs
    with pytest.raises(errors.BadTxRoot):
        chain.import_block(mutated, NOW)
    assert chain.import_block(decoded, NOW).status == "head"
    assert chain.account(rh.address(9)).balance == 9
