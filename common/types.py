"""Domain types: Transaction, BlockHeader, Block, Account.

Each is a frozen, slotted dataclass whose constructor rejects every out-of-range field, so a
value of these types is always well formed; signatures, nonces and balances are checked by
the rules in `common.rules`. Encodings are msgpack arrays in the field order given here
(docs/protocol.md), and an object's id/hash is SHA-256 of that encoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common import crypto
from common.encoding import pack, unpack
from common.errors import Malformed, TooLarge

MAX_AMOUNT = 2**63 - 1
MAX_CHAIN_ID = 2**32 - 1
MAX_TX_DATA = 1024
MAX_EXTRA = 64
MAX_TX_BYTES = 2048
MAX_BLOCK_TXS = 50_000
MAX_BLOCK_BYTES = 32 * 1024 * 1024
ZERO_HASH = bytes(32)
ZERO_ADDRESS = bytes(20)
TX_DOMAIN = "ccoin/tx"
HEADER_DOMAIN = "ccoin/header"


def _int(name: str, value: Any, lo: int, hi: int) -> None:
    # bool is an int in Python: `"amount": true` must not pass.
    if type(value) is not int:
        raise Malformed(f"{name} must be an integer")
    if not lo <= value <= hi:
        raise Malformed(f"{name} out of range [{lo}, {hi}]")


def _bytes(name: str, value: Any, lo: int, hi: int) -> None:
    if type(value) is not bytes:
        raise Malformed(f"{name} must be bytes")
    if not lo <= len(value) <= hi:
        if len(value) > hi:
            raise TooLarge(f"{name} longer than {hi} bytes")
        raise Malformed(f"{name} must be {lo}..{hi} bytes")


@dataclass(frozen=True, slots=True)
class Account:
    """An account is a balance and the count of transactions it has sent."""

    balance: int = 0
    nonce: int = 0

    def is_empty(self) -> bool:
        return self.balance == 0 and self.nonce == 0


EMPTY_ACCOUNT = Account()


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed transfer. `id`, `sender` and `raw` are derived once at construction."""

    chain_id: int
    nonce: int
    key_type: int
    public_key: bytes
    to: bytes
    amount: int
    fee: int
    data: bytes
    signature: bytes
    raw: bytes = field(init=False, repr=False, compare=False)
    id: bytes = field(init=False, repr=False, compare=False)
    sender: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every transaction of every block is built here (twice on sync: in p2p and in
        # state), so the common case is one conjunction of the checks below; only a value
        # that fails it goes through them one by one to say which field is wrong.
        chain_id, nonce, key_type, public_key = (self.chain_id, self.nonce, self.key_type,
                                                 self.public_key)
        to, amount, fee, data, signature = self.to, self.amount, self.fee, self.data, \
            self.signature
        if not (type(chain_id) is int and 0 <= chain_id <= MAX_CHAIN_ID
                and type(nonce) is int and 0 <= nonce <= MAX_AMOUNT
                and type(key_type) is int and type(public_key) is bytes
                and ((key_type == 0 and len(public_key) == crypto.ED25519_PUBLIC_LEN)
                     or (key_type == 1 and 0 < len(public_key) <= crypto.RSA_MAX_PUBLIC_LEN))
                and type(to) is bytes and len(to) == crypto.ADDRESS_LEN
                and type(amount) is int and 1 <= amount <= MAX_AMOUNT
                and type(fee) is int and 0 <= fee <= MAX_AMOUNT
                and type(data) is bytes and len(data) <= MAX_TX_DATA
                and type(signature) is bytes and len(signature) <= crypto.RSA_MAX_SIGNATURE_LEN):
            self._check_fields()
        raw = pack([chain_id, nonce, key_type, public_key, to, amount, fee, data, signature])
        if len(raw) > MAX_TX_BYTES:  # what decode() would refuse must not be built either
            raise TooLarge(f"transaction encodes to {len(raw)} bytes > {MAX_TX_BYTES}")
        set_ = object.__setattr__
        set_(self, "raw", raw)
        set_(self, "id", crypto.sha256(raw))
        set_(self, "sender", crypto.address_of(key_type, public_key))

    def _check_fields(self) -> None:
        """Raise `Malformed`/`TooLarge` naming the first field that is out of range."""
        _int("chain_id", self.chain_id, 0, MAX_CHAIN_ID)
        _int("nonce", self.nonce, 0, MAX_AMOUNT)
        _int("key_type", self.key_type, 0, 255)
        if self.key_type not in (crypto.KeyType.ED25519, crypto.KeyType.RSA):
            raise Malformed("unknown key_type")
        _bytes("public_key", self.public_key, 1, crypto.RSA_MAX_PUBLIC_LEN)
        if not crypto.check_public_key_shape(self.key_type, self.public_key):
            raise Malformed("public_key has the wrong length for its key type")
        _bytes("to", self.to, crypto.ADDRESS_LEN, crypto.ADDRESS_LEN)
        _int("amount", self.amount, 1, MAX_AMOUNT)
        _int("fee", self.fee, 0, MAX_AMOUNT)
        _bytes("data", self.data, 0, MAX_TX_DATA)
        _bytes("signature", self.signature, 0, crypto.RSA_MAX_SIGNATURE_LEN)

    def fields(self) -> list[Any]:
        return [self.chain_id, self.nonce, self.key_type, self.public_key, self.to,
                self.amount, self.fee, self.data, self.signature]

    def signing_payload(self) -> bytes:
        """What the sender signs: a domain tag and every field but the signature."""
        return pack([TX_DOMAIN, *self.fields()[:-1]])

    @staticmethod
    def decode(raw: bytes) -> Transaction:
        if len(raw) > MAX_TX_BYTES:
            raise TooLarge("transaction too large")
        value = unpack(raw, MAX_TX_BYTES)
        if type(value) is not tuple or len(value) != 9:
            raise Malformed("transaction must be an array of 9 fields")
        tx = Transaction(*value)
        if tx.raw != raw:  # construction re-encodes: only the canonical form round-trips
            raise Malformed("non-canonical encoding")
        return tx

    @staticmethod
    def create(signer: crypto.Signer, *, chain_id: int, nonce: int, to: bytes, amount: int,
               fee: int = 0, data: bytes = b"") -> Transaction:
        """Build and sign a transaction."""
        unsigned = Transaction(chain_id, nonce, int(signer.key.key_type), signer.public_key, to,
                               amount, fee, data, b"")
        return unsigned.with_signature(signer.sign(unsigned.signing_payload()))

    def with_signature(self, signature: bytes) -> Transaction:
        return Transaction(self.chain_id, self.nonce, self.key_type, self.public_key, self.to,
                           self.amount, self.fee, self.data, signature)

    @property
    def cost(self) -> int:
        return self.amount + self.fee


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A block header. `timestamp` is in milliseconds since the epoch.

    The HashCash proof and the PoA seal both cover `seal_hash`, the hash of every field but
    the seal's signature; the block's `hash` covers all fields.
    """

    height: int
    parent: bytes
    timestamp: int
    coinbase: bytes
    tx_root: bytes
    state_root: bytes
    difficulty: int
    nonce: int
    extra: bytes
    signer_key_type: int = 0
    signer_public_key: bytes = b""
    signature: bytes = b""
    raw: bytes = field(init=False, repr=False, compare=False)
    hash: bytes = field(init=False, repr=False, compare=False)
    seal_hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _int("height", self.height, 0, MAX_AMOUNT)
        _bytes("parent", self.parent, 32, 32)
        _int("timestamp", self.timestamp, 0, MAX_AMOUNT)
        _bytes("coinbase", self.coinbase, crypto.ADDRESS_LEN, crypto.ADDRESS_LEN)
        _bytes("tx_root", self.tx_root, 32, 32)
        _bytes("state_root", self.state_root, 32, 32)
        _int("difficulty", self.difficulty, 0, 255)
        _int("nonce", self.nonce, 0, 2**64 - 1)
        _bytes("extra", self.extra, 0, MAX_EXTRA)
        _int("signer_key_type", self.signer_key_type, 0, 255)
        _bytes("signer_public_key", self.signer_public_key, 0, crypto.RSA_MAX_PUBLIC_LEN)
        _bytes("signature", self.signature, 0, crypto.RSA_MAX_SIGNATURE_LEN)
        fields = self.fields()
        raw = pack(fields)
        set_ = object.__setattr__
        set_(self, "raw", raw)
        set_(self, "hash", crypto.sha256(raw))
        set_(self, "seal_hash", crypto.sha256(pack([HEADER_DOMAIN, *fields[:-1]])))

    def fields(self) -> list[Any]:
        return [self.height, self.parent, self.timestamp, self.coinbase, self.tx_root,
                self.state_root, self.difficulty, self.nonce, self.extra,
                self.signer_key_type, self.signer_public_key, self.signature]

    @staticmethod
    def from_fields(value: Any) -> BlockHeader:
        if type(value) is not tuple or len(value) != 12:
            raise Malformed("header must be an array of 12 fields")
        return BlockHeader(*value)

    def replace(self, **changes: Any) -> BlockHeader:
        names = ("height", "parent", "timestamp", "coinbase", "tx_root", "state_root",
                 "difficulty", "nonce", "extra", "signer_key_type", "signer_public_key",
                 "signature")
        values = dict(zip(names, self.fields(), strict=True))
        values.update(changes)
        return BlockHeader(**values)

    @property
    def signer(self) -> bytes:
        """Address of the sealing key (empty for an unsealed PoW block)."""
        if not self.signer_public_key:
            return b""
        return crypto.address_of(self.signer_key_type, self.signer_public_key)


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[Transaction, ...]
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.txs) > MAX_BLOCK_TXS:
            raise TooLarge("too many transactions in a block")
        raw = pack([self.header.fields(), [tx.raw for tx in self.txs]])
        if len(raw) > MAX_BLOCK_BYTES:  # decode() refuses it: peers could not read it
            raise TooLarge(f"block encodes to {len(raw)} bytes > {MAX_BLOCK_BYTES}")
        object.__setattr__(self, "raw", raw)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    @staticmethod
    def decode(raw: bytes, known: Callable[[bytes], Transaction | None] | None = None,
               ) -> Block:
        """Decode a block; `known(txid)` may offer already-decoded transactions (the pool),
        which are used only when their bytes are exactly the block's bytes."""
        if len(raw) > MAX_BLOCK_BYTES:
            raise TooLarge("block too large")
        value = unpack(raw, MAX_BLOCK_BYTES)
        if type(value) is not tuple or len(value) != 2 or type(value[1]) is not tuple:
            raise Malformed("block must be [header, [tx...]]")
        header = BlockHeader.from_fields(value[0])
        txs = []
        for item in value[1]:
            if type(item) is not bytes:
                raise Malformed("block transactions must be bin")
            tx = known(crypto.sha256(item)) if known is not None else None
            txs.append(tx if tx is not None and tx.raw == item else Transaction.decode(item))
        block = Block(header, tuple(txs))
        if block.raw != raw:
            raise Malformed("non-canonical encoding")
        return block
