"""The state transition: each invalid-transaction class, and blocks applied to accounts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from common import consensus, errors, ledger
from common.consensus import verify_transaction_signature
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import Malformed, TooLarge
from common.merkle import merkle_root
from common.statehash import from_scratch, root_of
from common.types import MAX_AMOUNT, MAX_TX_DATA, Account, Block, Transaction
from tests.framework.rules import (
    CHAIN_ID,
    Chain,
    address,
    key,
    make_genesis,
    signer,
    state_changes,
    transfer,
)

ALICE, BOB, CAROL = address(1), address(2), address(3)


def view_of(accounts: dict[bytes, Account]) -> ledger.AccountView:
    return lambda a: accounts.get(a, Account())


def expect(exc_type: type[errors.CcoinError], code: str, fn: Any, *args: Any) -> None:
    with pytest.raises(exc_type) as info:
        fn(*args)
    assert type(info.value) is exc_type
    assert info.value.code == code


# --- signatures -------------------------------------------------------------------------------


def test_good_signature_verifies() -> None:
    verify_transaction_signature(transfer(1, BOB, 5, nonce=0, fee=1, data=b"x"))


def test_bad_signature_from_another_key() -> None:
    tx = transfer(1, BOB, 5, nonce=0)
    forged = tx.with_signature(key(2).sign(tx.signing_payload()))
    expect(errors.BadSignature, "bad_signature", verify_transaction_signature, forged)


@pytest.mark.parametrize("signature", [b"", bytes(64), b"\x01" * 64, bytes(63)])
def test_bad_signature_bytes(signature: bytes) -> None:
    tx = transfer(1, BOB, 5, nonce=0).with_signature(signature)
    expect(errors.BadSignature, "bad_signature", verify_transaction_signature, tx)


@pytest.mark.parametrize("change", [
    {"chain_id": CHAIN_ID + 1}, {"nonce": 1}, {"to": CAROL}, {"amount": 6}, {"fee": 1},
    {"data": b"x"}, {"public_key": key(2).public_key}, {"key_type": int(KeyType.RSA)},
])
def test_field_changed_after_signing(change: dict[str, Any]) -> None:
    tx = transfer(1, BOB, 5, nonce=0)
    verify_transaction_signature(tx)
    tampered = dataclasses.replace(tx, **change)
    assert tampered.signature == tx.signature and tampered.id != tx.id
    expect(errors.BadSignature, "bad_signature", verify_transaction_signature, tampered)


def test_rsa_transaction_signature() -> None:
    rsa_signer = Signer(PrivateKey.generate(KeyType.RSA))
    tx = Transaction.create(rsa_signer, chain_id=CHAIN_ID, nonce=0, to=BOB, amount=5)
    assert tx.key_type == KeyType.RSA and tx.sender == rsa_signer.address
    verify_transaction_signature(tx)
    verify_transaction_signature(Transaction.decode(tx.raw))
    tampered = dataclasses.replace(tx, amount=6)
    expect(errors.BadSignature, "bad_signature", verify_transaction_signature, tampered)


# --- stateful checks --------------------------------------------------------------------------


def test_check_transaction_accepts_exact_balance() -> None:
    tx = transfer(1, BOB, 90, nonce=4, fee=10)
    ledger.check_transaction(Account(100, 4), tx, CHAIN_ID)


def test_wrong_chain_id() -> None:
    tx = transfer(1, BOB, 5, nonce=0, chain_id=CHAIN_ID + 1)
    verify_transaction_signature(tx)  # correctly signed, for another chain
    expect(errors.WrongChain, "wrong_chain", ledger.check_transaction, Account(100), tx, CHAIN_ID)


def test_nonce_too_low() -> None:
    tx = transfer(1, BOB, 5, nonce=2)
    expect(errors.NonceTooLow, "nonce_too_low", ledger.check_transaction, Account(100, 3), tx,
           CHAIN_ID)


def test_nonce_gap() -> None:
    tx = transfer(1, BOB, 5, nonce=4)
    expect(errors.NonceGap, "nonce_gap", ledger.check_transaction, Account(100, 3), tx, CHAIN_ID)


@pytest.mark.parametrize("balance, amount, fee", [(99, 90, 10), (0, 1, 0), (50, 50, 1),
                                                  (10, 1, 10), (MAX_AMOUNT, MAX_AMOUNT, 1)])
def test_insufficient_funds_for_amount_plus_fee(balance: int, amount: int, fee: int) -> None:
    tx = transfer(1, BOB, amount, nonce=0, fee=fee)
    expect(errors.InsufficientFunds, "insufficient_funds", ledger.check_transaction,
           Account(balance), tx, CHAIN_ID)


@pytest.mark.parametrize("amount", [0, -5, True, 1.0, 5.5, "5", MAX_AMOUNT + 1, 2**63, 2**64])
def test_bad_amount_cannot_even_be_built(amount: Any) -> None:
    with pytest.raises(Malformed) as info:
        Transaction.create(signer(1), chain_id=CHAIN_ID, nonce=0, to=BOB, amount=amount)
    assert type(info.value) is Malformed and info.value.code == "malformed"


def test_oversized_data() -> None:
    with pytest.raises(TooLarge) as info:
        transfer(1, BOB, 5, nonce=0, data=bytes(MAX_TX_DATA + 1))
    assert info.value.code == "too_large"
    ok = transfer(1, BOB, 5, nonce=0, data=bytes(MAX_TX_DATA))
    verify_transaction_signature(ok)


# --- apply_transaction ------------------------------------------------------------------------


def test_apply_transaction_moves_amount_and_holds_fee() -> None:
    state = ledger.Overlay(view_of({ALICE: Account(100, 2), BOB: Account(7, 5)}))
    ledger.apply_transaction(state, transfer(1, BOB, 30, nonce=2, fee=4), CHAIN_ID)
    assert state.get(ALICE) == Account(66, 3)
    assert state.get(BOB) == Account(37, 5)  # the recipient's nonce is untouched
    assert state.before == {ALICE: Account(100, 2), BOB: Account(7, 5)}


def test_apply_transaction_to_self_costs_only_the_fee() -> None:
    state = ledger.Overlay(view_of({ALICE: Account(100)}))
    ledger.apply_transaction(state, transfer(1, ALICE, 60, nonce=0, fee=3), CHAIN_ID)
    assert state.get(ALICE) == Account(97, 1)


def test_apply_transaction_to_a_new_account() -> None:
    state = ledger.Overlay(view_of({ALICE: Account(100)}))
    ledger.apply_transaction(state, transfer(1, CAROL, 1, nonce=0), CHAIN_ID)
    assert state.get(CAROL) == Account(1, 0)
    assert state.before[CAROL] == Account()


@pytest.mark.parametrize("tx, accounts, exc_type, code", [
    (transfer(1, BOB, 5, nonce=0, chain_id=99), {ALICE: Account(100)}, errors.WrongChain,
     "wrong_chain"),
    (transfer(1, BOB, 5, nonce=0), {ALICE: Account(100, 1)}, errors.NonceTooLow,
     "nonce_too_low"),
    (transfer(1, BOB, 5, nonce=2), {ALICE: Account(100, 1)}, errors.NonceGap, "nonce_gap"),
    (transfer(1, BOB, 95, nonce=0, fee=6), {ALICE: Account(100)}, errors.InsufficientFunds,
     "insufficient_funds"),
    (transfer(1, BOB, 5, nonce=0), {}, errors.InsufficientFunds, "insufficient_funds"),
    (transfer(1, BOB, 5, nonce=0), {ALICE: Account(100), BOB: Account(MAX_AMOUNT - 4)},
     errors.InvalidTransaction, "invalid_transaction"),
])
def test_invalid_transaction_changes_nothing(tx: Transaction, accounts: dict[bytes, Account],
                                            exc_type: type[errors.CcoinError], code: str) -> None:
    state = ledger.Overlay(view_of(accounts))
    expect(exc_type, code, ledger.apply_transaction, state, tx, CHAIN_ID)
    for address_, acc in state.after.items():
        assert acc == accounts.get(address_, Account()), "invalid transaction left a trace"


def test_apply_transactions_sums_fees_and_names_the_culprit() -> None:
    state = ledger.Overlay(view_of({ALICE: Account(100)}))
    fees = ledger.apply_transactions(
        state, [transfer(1, BOB, 10, nonce=0, fee=1), transfer(1, BOB, 10, nonce=1, fee=2)],
        CHAIN_ID)
    assert fees == 3
    bad = [transfer(1, BOB, 10, nonce=2), transfer(1, BOB, 10, nonce=9)]
    with pytest.raises(errors.BlockTransactionInvalid, match="transaction 1.*nonce_gap") as info:
        ledger.apply_transactions(state, bad, CHAIN_ID)
    assert info.value.code == "invalid_block_transaction"


# --- apply_block ------------------------------------------------------------------------------


def test_apply_block_pays_reward_and_fees_to_the_coinbase() -> None:
    chain = Chain(make_genesis(reward=100))
    supply = chain.total_supply()
    txs = [transfer(1, BOB, 10, nonce=0, fee=3), transfer(2, CAROL, 20, nonce=0, fee=4)]
    block = chain.build(txs, coinbase=address(9))
    changes = chain.apply(block)
    assert changes.fees == 7
    assert chain.view(address(9)) == Account(107)
    assert chain.view(ALICE) == Account(1_000_000 - 13, 1)
    assert chain.view(BOB) == Account(1_000_000 + 10 - 24, 1)
    assert chain.view(CAROL) == Account(1_000_000 + 20, 0)
    assert chain.total_supply() == supply + 100
    assert changes.state_root == block.header.state_root == chain.scratch_root()
    assert changes.before[address(9)] == Account()


def test_excess_reward_is_a_bad_state_root() -> None:
    chain = Chain(make_genesis(reward=100))
    tx = transfer(1, BOB, 10, nonce=0, fee=3)
    greedy = chain.build([tx], coinbase=address(9), reward=101)  # credits itself 104
    chain.validate(greedy)  # header and body are fine: only the state root tells
    with pytest.raises(errors.BadStateRoot) as info:
        chain.apply(greedy)
    assert info.value.code == "bad_state_root"
    assert chain.view(address(9)) == Account() and len(chain.blocks) == 1
    chain.apply(chain.build([tx], coinbase=address(9)))  # the honest block applies


def test_wrong_state_root_is_rejected() -> None:
    chain = Chain(make_genesis())
    block = chain.build([transfer(1, BOB, 10, nonce=0)], state_root=bytes(32))
    with pytest.raises(errors.BadStateRoot):
        ledger.apply_block(chain.view, chain.state_value, block, CHAIN_ID, 100)
    # and a root computed over the wrong parent state is wrong too
    block = chain.build([transfer(1, BOB, 10, nonce=0)])
    with pytest.raises(errors.BadStateRoot):
        ledger.apply_block(chain.view, from_scratch([]), block, CHAIN_ID, 100)


def test_two_transactions_that_together_overspend() -> None:
    chain = Chain(make_genesis(alloc={ALICE: 100}))
    first = transfer(1, BOB, 60, nonce=0)
    second = transfer(1, CAROL, 60, nonce=1)
    for tx in (first, second):  # each alone is valid
        ledger.check_transaction(Account(100, tx.nonce), tx, CHAIN_ID)
    # the miner's side cannot even compute a state root for the pair...
    with pytest.raises(errors.BlockTransactionInvalid):
        state_changes(chain.view, chain.state_value, [first, second], address(9), CHAIN_ID, 100)
    # ...so take a valid one-transaction block and put both in its body (root fixed up)
    valid = chain.build([first])
    block = Block(valid.header.replace(tx_root=merkle_root([first.id, second.id])),
                  (first, second))
    consensus.validate_body(chain.genesis, block)  # statelessly the body is fine
    with pytest.raises(errors.BlockTransactionInvalid) as info:
        ledger.apply_block(chain.view, chain.state_value, block, CHAIN_ID, 100)
    assert info.value.code == "invalid_block_transaction"
    assert "insufficient_funds" in str(info.value)


def test_duplicate_transaction_applied_twice_fails_on_its_nonce() -> None:
    chain = Chain(make_genesis())
    tx = transfer(1, BOB, 10, nonce=0)
    block = chain.build([tx])
    doubled = Block(block.header, (tx, tx))
    with pytest.raises(errors.BlockTransactionInvalid, match="nonce_too_low"):
        ledger.apply_block(chain.view, chain.state_value, doubled, CHAIN_ID, 100)


def test_coinbase_balance_overflow() -> None:
    chain = Chain(make_genesis(alloc={address(9): MAX_AMOUNT - 50}))
    state = ledger.Overlay(chain.view)
    with pytest.raises(errors.InvalidBlock) as info:
        ledger.credit_coinbase(state, address(9), 51)
    assert info.value.code == "invalid_block"
    ledger.credit_coinbase(state, address(9), 50)
    assert state.get(address(9)).balance == MAX_AMOUNT


def test_zero_reward_empty_block_changes_nothing() -> None:
    chain = Chain(make_genesis(reward=0))
    before = chain.state_root()
    changes = chain.apply(chain.build())
    assert changes.state_root == before and changes.after == {}


def test_state_changes_helper_matches_apply_block() -> None:
    chain = Chain(make_genesis())
    txs = [transfer(1, BOB, 10, nonce=0, fee=2)]
    expected = state_changes(chain.view, chain.state_value, txs, address(9), CHAIN_ID, 100)
    block = chain.build(txs, coinbase=address(9))
    got = ledger.apply_block(chain.view, chain.state_value, block, CHAIN_ID, 100)
    assert got == expected and got.state_root == root_of(expected.state_value)


def test_replay_over_the_accounts_before_gives_the_accounts_after() -> None:
    """What a block changed is derived again from its undo record (`before`): the same
    `after`, the same state root; a `before` missing an account or holding another value
    does not pass for the block's."""
    g = make_genesis(difficulty=0)
    chain = Chain(g)
    parent_value = chain.state_value
    block = chain.build_and_apply([transfer(1, BOB, 40, nonce=0, fee=2),
                                   transfer(2, CAROL, 5, nonce=0)], coinbase=address(20))
    done = chain.changes[-1]
    again = ledger.replay_block(done.before, parent_value, block, CHAIN_ID, g.reward)
    assert again.after == done.after and again.state_root == block.header.state_root
    short = {a: acc for a, acc in done.before.items() if a != BOB}
    expect(errors.InvalidBlock, "invalid_block", ledger.replay_block, short, parent_value,
           block, CHAIN_ID, g.reward)
    richer = {**done.before, BOB: Account(done.before[BOB].balance + 1)}
    expect(errors.BadStateRoot, "bad_state_root", ledger.replay_block, richer, parent_value,
           block, CHAIN_ID, g.reward)
