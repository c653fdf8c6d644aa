"""MuHash3072: the incremental, order-independent state commitment."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given
from hypothesis import strategies as st

from common import statehash
from common.encoding import pack
from common.statehash import PRIME, MuHash, element, from_scratch, root_of, update
from common.types import Account


def addr(i: int) -> bytes:
    return hashlib.sha256(b"addr" + bytes([i])).digest()[:20]


STATE = {addr(i): Account(1000 + i, i % 3) for i in range(12)}


def test_element_construction() -> None:
    a, acc = addr(1), Account(5, 2)
    digest = hashlib.shake_256(pack([a, 5, 2])).digest(384)
    assert element(a, acc) == int.from_bytes(digest, "big") % PRIME
    assert 1 <= element(a, acc) < PRIME
    assert element(a, acc) != element(a, Account(5, 3)) != element(addr(2), acc)


def test_prime_and_root() -> None:
    assert PRIME == 2**3072 - 1103717
    assert root_of(1) == hashlib.sha256((1).to_bytes(384, "big")).digest()
    assert from_scratch([]) == 1
    assert MuHash().root() == root_of(1)


def test_order_independence() -> None:
    items = list(STATE.items())
    reference = from_scratch(items)
    rng = random.Random(1)
    for _ in range(5):
        rng.shuffle(items)
        assert from_scratch(items) == reference


def test_incremental_update_equals_from_scratch() -> None:
    state = dict(STATE)
    value = from_scratch(state.items())
    rng = random.Random(2)
    for step in range(20):
        a = addr(rng.randrange(16))  # some existing, some new accounts
        old = state.get(a, Account())
        new = Account(rng.randrange(0, 3) and rng.randrange(1, 10**6), old.nonce + step % 2)
        value = update(value, [(a, old, new)])
        if new.is_empty():
            state.pop(a, None)
        else:
            state[a] = new
        assert value == from_scratch(state.items()), step


def test_empty_accounts_are_not_in_the_set() -> None:
    value = from_scratch(STATE.items())
    with_empty = from_scratch([*STATE.items(), (addr(99), Account())])
    assert with_empty == value
    assert update(value, [(addr(99), Account(), Account())]) == value


def test_remove_then_readd_is_identity() -> None:
    value = from_scratch(STATE.items())
    acc = MuHash(value)
    for a, account in STATE.items():
        acc.remove(a, account)
    assert acc.value() == 1  # the empty set
    for a, account in STATE.items():
        acc.add(a, account)
    assert acc.value() == value
    a, account = next(iter(STATE.items()))
    acc.remove(a, account)
    assert acc.value() != value
    acc.add(a, account)
    assert acc.value() == value


def test_numerator_denominator_bookkeeping() -> None:
    acc = MuHash()
    acc.add(addr(1), Account(1))
    assert acc.denominator == 1
    acc.remove(addr(2), Account(2))
    assert acc.denominator != 1
    expected = element(addr(1), Account(1)) * pow(element(addr(2), Account(2)), -1, PRIME) % PRIME
    assert acc.value() == expected
    assert acc.root() == root_of(expected)


@given(st.integers(0, statehash.PRIME - 1), st.integers(0, statehash.PRIME - 1))
def test_mulmod_equals_the_generic_reduction(a: int, b: int) -> None:
    assert statehash.mulmod(a, b) == a * b % statehash.PRIME


def test_mulmod_at_the_edges() -> None:
    top = statehash.PRIME - 1
    for a, b in ((top, top), (top, 1), (0, top), (2**3071, 2**3071), (top, 2)):
        assert statehash.mulmod(a, b) == a * b % statehash.PRIME


def test_values_leave_as_python_ints() -> None:
    # the arithmetic is GMP's; what leaves the module (stored, compared, dataclass fields
    # declared int) is not
    acc = MuHash(from_scratch(STATE.items()))
    acc.remove(addr(1), STATE[addr(1)])
    acc.add(addr(1), Account(7, 7))
    for value in (acc.value(), MuHash().value(), from_scratch(STATE.items())):
        assert type(value) is int


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 2),
                          st.booleans()), min_size=1, max_size=40),
       st.integers(1, 4))
def test_the_memo_of_recent_elements_never_changes_a_root(
        steps: list[tuple[int, int, int, bool]], limit: int) -> None:
    """Account changes folded one by one into the running value, with the memo of recently
    added elements as small as a few entries (cleared often), equal the set hash of the final
    state computed from scratch. Some changes are computed and then dropped, as a template
    that is never sealed: the memo then holds an element of a value the account never took,
    which the next removal of that account must not use."""
    old_limit = statehash.RECENT_ELEMENTS
    statehash.RECENT_ELEMENTS = limit
    statehash._recent.clear()
    try:
        state = dict(STATE)
        value = from_scratch(state.items())
        for i, balance, nonce, kept in steps:
            address = addr(i)
            new = Account(balance * 7, nonce)
            after = update(value, [(address, state.get(address, Account()), new)])
            if kept:
                value, state[address] = after, new
    finally:
        statehash.RECENT_ELEMENTS = old_limit
        statehash._recent.clear()
    assert value == from_scratch(state.items())
