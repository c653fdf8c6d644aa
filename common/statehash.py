"""MuHash3072: the incremental, order-independent commitment to the world state.

The state is the set of non-empty accounts, each as the element
`pack([address, balance, nonce])`. An element maps to a number in [1, p) through
SHAKE-256 (384 bytes, read big-endian, reduced mod p) and the set's hash is the product of
its elements modulo the prime p = 2^3072 - 1103717 (the modulus Bitcoin Core's MuHash3072
uses). Adding an element multiplies, removing one multiplies by its inverse, so a block that
touches k accounts costs O(k) multiplications however large the state is. The header's
state root is SHA-256 of the 384-byte big-endian product. (Bitcoin maps elements with
ChaCha20; SHAKE-256 is in Python's hashlib; the construction is otherwise the same.
docs/protocol.md gives vectors.)

The running product is a GMP number (gmpy2): one 3072-bit multiplication costs ~6 µs in
Python's integers and ~1 µs in GMP, and a block pays two per account it changes, which on a
chain of many accounts is as much as a transfer's signature check. Values in and out are
Python ints, so nothing outside this module sees the difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from gmpy2 import invert, mpz

from common.encoding import pack
from common.types import Account

PRIME = 2**3072 - 1103717
_BYTES = 384
_BITS = 3072
_C = 1103717  # PRIME = 2^3072 - _C
# GMP copies of the constants: mixing them with Python ints would convert on every use
_P = mpz(PRIME)
_MASK = mpz(2**3072 - 1)


def mulmod(a: Any, b: Any) -> Any:
    """a*b mod PRIME for a, b < PRIME, as a GMP number. Since 2^3072 = _C (mod PRIME), the
    high half folds down with a shift and a small multiplication: ~2x faster than a
    generic `%` on 6144-bit numbers, and the hot spot of a block's state root."""
    x = a * b
    x = (x & _MASK) + (x >> _BITS) * _C  # < 2^3072 + 2^3093
    x = (x & _MASK) + (x >> _BITS) * _C  # < 2^3072 + 2^42
    return x - _P if x >= _P else x


def element(address: bytes, account: Account) -> Any:
    """The account's element, a GMP number in [1, PRIME)."""
    digest = hashlib.shake_256(pack([address, account.balance, account.nonce])).digest(_BYTES)
    value = mpz.from_bytes(digest, "big")
    if value >= _P:
        value -= _P
    return value or mpz(1)  # 0 has no inverse; hitting it by chance is ~2^-3072


def root_of(value: int) -> bytes:
    return hashlib.sha256(value.to_bytes(_BYTES, "big")).digest()


# The elements last added, by address. A block removes each account it changes as it was
# after the block that last changed it, so an account busy block after block has its old
# element here instead of computed again (a third of a block's state-root work). A memo of
# a pure function, bounded (~5 MB): forgotten all at once when full, and a miss costs one
# dictionary read.
RECENT_ELEMENTS = 8192
_recent: dict[bytes, tuple[int, int, Any]] = {}


class MuHash:
    """A running product; `numerator/denominator` postpones the one modular inverse to
    `value()`, once per block instead of once per removed account."""

    __slots__ = ("numerator", "denominator")

    def __init__(self, value: int = 1) -> None:
        self.numerator = mpz(value)
        self.denominator = mpz(1)

    def add(self, address: bytes, account: Account) -> None:
        if not account.is_empty():
            value = element(address, account)
            if len(_recent) >= RECENT_ELEMENTS:
                _recent.clear()
            _recent[address] = (account.balance, account.nonce, value)
            self.numerator = mulmod(self.numerator, value)

    def remove(self, address: bytes, account: Account) -> None:
        if not account.is_empty():
            known = _recent.get(address)
            if known is not None and known[0] == account.balance and known[1] == account.nonce:
                value = known[2]
            else:
                value = element(address, account)
            self.denominator = mulmod(self.denominator, value)

    def value(self) -> int:
        if self.denominator == 1:
            return int(self.numerator)
        return int(mulmod(self.numerator, invert(self.denominator, _P)))

    def root(self) -> bytes:
        return root_of(self.value())


def update(value: int, changes: Iterable[tuple[bytes, Account, Account]]) -> int:
    """The set hash after replacing each (address, old, new)."""
    acc = MuHash(value)
    for address, old, new in changes:
        acc.remove(address, old)
        acc.add(address, new)
    return acc.value()


def from_scratch(accounts: Iterable[tuple[bytes, Account]]) -> int:
    acc = MuHash()
    for address, account in accounts:
        acc.add(address, account)
    return acc.value()
