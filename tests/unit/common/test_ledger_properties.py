"""Property tests: random transfers (valid and invalid) among a few keys, in blocks built with
`tests.framework.rules` and applied with `common.ledger.apply_block` over a dict-backed state.

After every block: total supply is the genesis alloc plus the rewards, no balance is
negative, each sender's nonce counts its included transactions, and the incrementally
updated state root equals MuHash from scratch. Undoing every block (restoring
`changes.before`) gives back the genesis state, and re-applying gives the same roots.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import crypto, errors, fields, ledger
from common.encoding import pack
from common.merkle import merkle_proof, merkle_root, verify_proof
from common.statehash import from_scratch, update
from common.types import Account, Block, Transaction
from tests.framework.rules import CHAIN_ID, Chain, address, make_genesis, signer, transfer

SENDERS = 4
RECIPIENTS = [address(i) for i in range(1, SENDERS + 1)] + [address(9)]
SIGNERS = [signer(i) for i in range(1, SENDERS + 1)]
ALLOC = {address(1): 1000, address(2): 500, address(3): 50}  # address(4) starts empty
REWARD = 25
GENESIS = make_genesis(alloc=ALLOC, reward=REWARD)

op = st.tuples(
    st.integers(0, SENDERS - 1),                 # sender
    st.integers(0, len(RECIPIENTS) - 1),         # recipient
    st.integers(1, 700),                         # amount
    st.integers(0, 30),                          # fee
    st.sampled_from([0, 0, 0, 0, -1, 1, 2]),     # nonce offset: mostly right
)
block_plan = st.tuples(
    st.lists(op, max_size=8),
    st.integers(0, len(RECIPIENTS) - 1),         # coinbase
    st.booleans(),                               # also try a block with a bad transaction
)

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def expected_error(account: Account, tx: Transaction) -> type[errors.InvalidTransaction] | None:
    if tx.nonce < account.nonce:
        return errors.NonceTooLow
    if tx.nonce > account.nonce:
        return errors.NonceGap
    if account.balance < tx.amount + tx.fee:
        return errors.InsufficientFunds
    return None


def check_invariants(chain: Chain, included: Counter[bytes]) -> None:
    assert chain.total_supply() == sum(ALLOC.values()) + REWARD * (len(chain.blocks) - 1)
    for addr, acc in chain.accounts.items():
        assert acc.balance >= 0 and acc.nonce >= 0
        assert not acc.is_empty()
        assert acc.nonce == included[addr], addr.hex()
    for addr, n in included.items():
        assert chain.view(addr).nonce == n
    assert chain.state_root() == chain.scratch_root()
    assert chain.state_root() == chain.tip.state_root


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(block_plan, min_size=1, max_size=5))
def test_random_transfers_keep_the_ledger_sound(plans: list) -> None:
    chain = Chain(GENESIS)
    included: Counter[bytes] = Counter()
    genesis_accounts = dict(chain.accounts)
    check_invariants(chain, included)

    for ops, coinbase_index, sabotage in plans:
        pending = ledger.Overlay(chain.view)  # the miner's view while filling the block
        good: list[Transaction] = []
        rejected: list[Transaction] = []
        for sender_i, to_i, amount, fee, offset in ops:
            sender = SIGNERS[sender_i]
            nonce = pending.get(sender.address).nonce + offset
            if nonce < 0:
                continue
            tx = transfer(sender, RECIPIENTS[to_i], amount, nonce=nonce, fee=fee)
            expected = expected_error(pending.get(sender.address), tx)
            try:
                ledger.apply_transaction(pending, tx, CHAIN_ID)
            except errors.InvalidTransaction as exc:
                assert type(exc) is expected, (exc, expected)
                rejected.append(tx)
                continue
            assert expected is None
            good.append(tx)

        coinbase = RECIPIENTS[coinbase_index]
        # a transaction rejected earlier may have become valid since (a gap filled, funds
        # received): sabotage with one that is still invalid after all of `good`
        still_bad = [tx for tx in rejected if expected_error(pending.get(tx.sender), tx)]
        if sabotage and still_bad:
            honest = chain.build(good, coinbase=coinbase)
            body = (*good, still_bad[0])
            bad = Block(honest.header.replace(tx_root=merkle_root([t.id for t in body])), body)
            root_before, accounts_before = chain.state_root(), dict(chain.accounts)
            with pytest.raises(errors.BlockTransactionInvalid):
                chain.apply(bad, validate=False)
            assert chain.state_root() == root_before and chain.accounts == accounts_before

        block = chain.build(good, coinbase=coinbase)
        chain.apply(block)
        for tx in good:
            included[tx.sender] += 1
        check_invariants(chain, included)

    # undo everything, then replay: the same roots at every height
    roots = [b.header.state_root for b in chain.blocks]
    blocks = list(chain.blocks[1:])
    while len(chain.blocks) > 1:
        chain.undo()
        assert chain.state_root() == roots[len(chain.blocks) - 1] == chain.scratch_root()
    assert chain.accounts == genesis_accounts
    for height, block in enumerate(blocks, start=1):
        changes = chain.apply(block)
        assert changes.state_root == roots[height]
    check_invariants(chain, included)


# --- smaller properties -----------------------------------------------------------------------

addresses = st.binary(min_size=20, max_size=20)
accounts = st.builds(Account, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))


@PROPERTY
@given(st.dictionaries(addresses, accounts, max_size=12),
       st.lists(st.tuples(addresses, accounts), max_size=12))
def test_muhash_incremental_equals_from_scratch(state: dict, edits: list) -> None:
    value = from_scratch(state.items())
    for addr, new in edits:
        old = state.get(addr, Account())
        value = update(value, [(addr, old, new)])
        state[addr] = new
    assert value == from_scratch(state.items())
    assert value == from_scratch(reversed(list(state.items())))


@PROPERTY
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True),
       st.data())
def test_merkle_proofs(txids: list, data: st.DataObject) -> None:
    root = merkle_root(txids)
    i = data.draw(st.integers(0, len(txids) - 1))
    proof = merkle_proof(txids, i)
    assert verify_proof(txids[i], proof, root)
    j = data.draw(st.integers(0, len(txids) - 1))
    if txids[j] != txids[i]:
        assert not verify_proof(txids[j], proof, root)


tx_fields = st.tuples(
    st.integers(0, 2**32 - 1), st.integers(0, 2**63 - 1), st.integers(1, 2**63 - 1),
    st.integers(0, 2**63 - 1), st.binary(max_size=64), st.integers(0, SENDERS - 1),
)


@PROPERTY
@given(tx_fields, st.data())
def test_transaction_bytes_are_canonical(fields: tuple, data: st.DataObject) -> None:
    chain_id, nonce, amount, fee, payload, who = fields
    tx = transfer(SIGNERS[who], address(9), amount, nonce=nonce, fee=fee, data=payload,
                  chain_id=chain_id)
    assert Transaction.decode(tx.raw) == tx
    # any mutation either fails to decode or decodes to a value whose encoding is exactly it
    raw = bytearray(tx.raw)
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255))
    try:
        decoded = Transaction.decode(bytes(raw))
    except errors.Malformed:
        return
    assert decoded.raw == bytes(raw) and pack(decoded.fields()) == bytes(raw)


# values at, inside and just past every field's bounds, and of the wrong type
_EDGES = [-1, 0, 1, 2, 255, 256, 2**32 - 1, 2**32, 2**63 - 1, 2**63, True, 1.0, None, "text",
          b"", bytes(19), bytes(20), bytes(21), bytes(32), bytes(33), bytes(600), bytes(601),
          bytes(1024), bytes(1025)]
_VALID = (1337, 3, 0, bytes(32), bytes(20), 10, 1, b"", bytes(64))
_NAMES = ("chain_id", "nonce", "key_type", "public_key", "to", "amount", "fee", "data",
          "signature")


def _constructor_agrees_with_field_checks(values: list) -> None:
    """The constructor's compiled one-line check must never let through a value that the
    field-by-field checks (`fields.check_each`, which name the bad field, and the key
    shape rule) refuse, nor refuse one they accept."""
    try:
        tx = Transaction(*values)
    except (errors.Malformed, errors.TooLarge):
        built = False
    else:
        built = True
    try:
        fields.check_each(Transaction, tuple(values))
        fields_ok = crypto.check_public_key_shape(values[2], values[3])
    except (errors.Malformed, errors.TooLarge):
        fields_ok = False
    if built:
        assert fields_ok and tx.fields() == values, values
    else:
        assert not fields_ok or len(pack(values)) > 2048, values  # refused for its size only


def test_transaction_constructor_agrees_with_field_checks_on_every_edge() -> None:
    for index in range(len(_VALID)):
        for edge in _EDGES:
            values = list(_VALID)
            values[index] = edge
            _constructor_agrees_with_field_checks(values)
    for key_type, public_key in ((1, b""), (1, bytes(1)), (1, bytes(600)), (1, bytes(32)),
                                 (0, bytes(600)), (2, bytes(32))):
        values = list(_VALID)
        values[2:4] = [key_type, public_key]
        _constructor_agrees_with_field_checks(values)


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 8), st.one_of(st.sampled_from(_EDGES),
                                                       st.binary(max_size=40),
                                                       st.integers(-2**64, 2**64))),
                max_size=3))
def test_transaction_constructor_agrees_with_field_checks(changes: list) -> None:
    values = list(_VALID)
    for index, value in changes:
        values[index] = value
    _constructor_agrees_with_field_checks(values)
