"""The state transition: transactions and blocks applied to accounts.

Pure functions over a read-only `AccountView` (a callable from address to Account); results
are returned as `StateChanges`, never written anywhere. The state service commits them,
the miner's template and the tests compute them with the very same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from common import errors
from common.statehash import MuHash, root_of
from common.types import MAX_AMOUNT, Account, Block, Transaction

AccountView = Callable[[bytes], Account]


@dataclass(frozen=True, slots=True)
class StateChanges:
    """Accounts a block touched: their values before and after, and the new set hash."""

    before: dict[bytes, Account]
    after: dict[bytes, Account]
    fees: int
    state_value: int

    @property
    def state_root(self) -> bytes:
        return root_of(self.state_value)


class Overlay:
    """Account writes on top of a base view; remembers what each touched account was."""

    __slots__ = ("base", "before", "after")

    def __init__(self, base: AccountView) -> None:
        self.base = base
        self.before: dict[bytes, Account] = {}
        self.after: dict[bytes, Account] = {}

    def get(self, address: bytes) -> Account:
        acc = self.after.get(address)
        if acc is None:
            acc = self.base(address)
            self.before[address] = acc
            self.after[address] = acc
        return acc

    def set(self, address: bytes, account: Account) -> None:
        if address not in self.before:
            self.before[address] = self.base(address)
        self.after[address] = account


def check_transaction(sender: Account, tx: Transaction, chain_id: int) -> None:
    """Stateful validity of `tx` against its sender's account (signature is checked apart)."""
    if tx.chain_id != chain_id:
        raise errors.WrongChain(f"transaction is for chain {tx.chain_id}, not {chain_id}")
    if tx.nonce < sender.nonce:
        raise errors.NonceTooLow(f"nonce {tx.nonce} is below the account nonce {sender.nonce}")
    if tx.nonce > sender.nonce:
        raise errors.NonceGap(f"nonce {tx.nonce} is ahead of the account nonce {sender.nonce}")
    if sender.balance < tx.amount + tx.fee:
        raise errors.InsufficientFunds(
            f"balance {sender.balance} < amount {tx.amount} + fee {tx.fee}")


def apply_transaction(state: Overlay, tx: Transaction, chain_id: int) -> None:
    """Move `amount` to the recipient, bump the sender's nonce, hold back `fee` for the
    coinbase. Raises an `InvalidTransaction` and changes nothing if `tx` does not apply."""
    sender = state.get(tx.sender)
    check_transaction(sender, tx, chain_id)
    state.set(tx.sender, Account(sender.balance - tx.amount - tx.fee, sender.nonce + 1))
    recipient = state.get(tx.to)
    if recipient.balance + tx.amount > MAX_AMOUNT:
        # restore the sender: an invalid transaction leaves no trace
        state.set(tx.sender, sender)
        raise errors.InvalidTransaction("recipient balance would overflow")
    state.set(tx.to, Account(recipient.balance + tx.amount, recipient.nonce))


def apply_transactions(state: Overlay, txs: Iterable[Transaction], chain_id: int) -> int:
    """Apply in order; returns the fees. The first invalid transaction aborts the block."""
    fees = 0
    for index, tx in enumerate(txs):
        try:
            apply_transaction(state, tx, chain_id)
        except errors.InvalidTransaction as exc:
            raise errors.BlockTransactionInvalid(
                f"transaction {index} ({tx.id.hex()[:16]}): {exc.code}: {exc}") from None
        fees += tx.fee
    return fees


def credit_coinbase(state: Overlay, coinbase: bytes, amount: int) -> None:
    if amount:
        acc = state.get(coinbase)
        if acc.balance + amount > MAX_AMOUNT:
            raise errors.InvalidBlock("coinbase balance would overflow")
        state.set(coinbase, Account(acc.balance + amount, acc.nonce))


def finish(state: Overlay, fees: int, parent_state_value: int) -> StateChanges:
    """Fold the touched accounts into the set hash."""
    acc = MuHash(parent_state_value)
    before, after = state.before, state.after
    for address, new in after.items():
        old = before[address]
        if old != new:
            acc.remove(address, old)
            acc.add(address, new)
    return StateChanges(before, after, fees, acc.value())


def apply_block(view: AccountView, parent_state_value: int, block: Block, chain_id: int,
                reward: int) -> StateChanges:
    """The state after `block`: its transactions in order, then `reward` plus the fees to
    the coinbase. Raises `InvalidBlock` (state root included) if the block does not apply."""
    state = Overlay(view)
    fees = apply_transactions(state, block.txs, chain_id)
    credit_coinbase(state, block.header.coinbase, reward + fees)
    changes = finish(state, fees, parent_state_value)
    if changes.state_root != block.header.state_root:
        raise errors.BadStateRoot(
            f"state root {block.header.state_root.hex()[:16]} != computed "
            f"{changes.state_root.hex()[:16]}")
    return changes


def replay_block(before: Mapping[bytes, Account], parent_state_value: int, block: Block,
                 chain_id: int, reward: int) -> StateChanges:
    """`block` applied again over `before`, the accounts it touched as they were before it
    (what the state service keeps as its undo record): the accounts after it, with the very
    rules that applied it. The state root check proves the pair is the block's own; an
    account the block touches missing from `before` is `InvalidBlock` too."""
    def view(address: bytes) -> Account:
        account = before.get(address)
        if account is None:
            raise errors.InvalidBlock(f"account {address.hex()} is touched by the block but "
                                      "missing from the accounts before it")
        return account

    return apply_block(view, parent_state_value, block, chain_id, reward)
