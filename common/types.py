"""Domain types: Transaction, BlockHeader, Block, Account.

Each is a frozen, slotted dataclass whose fields declare their bounds (`common.fields`) and
whose constructor rejects every out-of-range field, naming it, so a value of these types is
always well formed; signatures, nonces and balances are checked by the rules in
`common.ledger` and `common.consensus`. Encodings are msgpack arrays in the field order given here
(docs/protocol.md), and an object's id/hash is SHA-256 of that encoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from common import crypto
from common.authorities import MAX_VOTE_FIELD
from common.encoding import pack, unpack, unpack_head
from common.errors import Malformed, TooLarge
from common.fields import U8, U63, U64, Address20, Hash32, Len, Range, compiled, validate

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

PublicKey = Annotated[bytes, Len(0, crypto.RSA_MAX_PUBLIC_LEN)]
SealSignature = Annotated[bytes, Len(0, crypto.RSA_MAX_SIGNATURE_LEN)]


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

    chain_id: Annotated[int, Range(0, MAX_CHAIN_ID)]
    nonce: U63
    key_type: Annotated[int, Range(0, 1)]  # a crypto.KeyType: Ed25519 or RSA
    public_key: Annotated[bytes, Len(1, crypto.RSA_MAX_PUBLIC_LEN)]
    to: Address20
    amount: Annotated[int, Range(1, MAX_AMOUNT)]
    fee: U63
    data: Annotated[bytes, Len(0, MAX_TX_DATA)]
    signature: SealSignature
    raw: bytes = field(init=False, repr=False, compare=False)
    id: bytes = field(init=False, repr=False, compare=False)
    sender: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_transaction(self, "")
        _derive_transaction(self, pack(self.fields()))

    def fields(self) -> list[Any]:
        return [self.chain_id, self.nonce, self.key_type, self.public_key, self.to,
                self.amount, self.fee, self.data, self.signature]

    def signing_payload(self) -> bytes:
        """What the sender signs: a domain tag and every field but the signature, as
        `pack([TX_DOMAIN, *fields[:-1]])` (`signed_part` takes it from `raw`)."""
        return signed_part(self.raw, len(self.signature))

    @staticmethod
    def decode(raw: bytes) -> Transaction:
        return _decode_transaction(raw, None)

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


_PAYLOAD_HEAD = b"\x99" + pack(TX_DOMAIN)  # a fixarray of nine, then the domain tag


def _encoded_bin_len(length: int) -> int:
    """Length of msgpack's canonical encoding of a byte string of `length` bytes."""
    if length < 1 << 8:
        return 2 + length
    if length < 1 << 16:
        return 3 + length
    return 5 + length


def signed_part(raw: bytes, signature_len: int) -> bytes:
    """The signing payload of the transaction whose canonical encoding is `raw`: the same
    nine-element array with the domain tag first and without the signature, so
    `0x99 ‖ pack(TX_DOMAIN) ‖ raw[1 : len(raw) - len(pack(signature))]`. A slice instead
    of a second encoding: every signature check of a submitted or relayed transaction
    takes it (the unit tests hold it equal to the encoding for every field width)."""
    return _PAYLOAD_HEAD + raw[1:len(raw) - _encoded_bin_len(signature_len)]


# the slots' own setters (common.fields says why)
_set_raw = Transaction.__dict__["raw"].__set__
_set_id = Transaction.__dict__["id"].__set__
_set_sender = Transaction.__dict__["sender"].__set__
_check_transaction = compiled(Transaction).check
_build_transaction = compiled(Transaction).build
_ED25519 = int(crypto.KeyType.ED25519)


def _decode_transaction(raw: bytes, tx_id: bytes | None) -> Transaction:
    """`Transaction.decode`; `tx_id`, when given, is `raw`'s hash already computed."""
    if len(raw) > MAX_TX_BYTES:
        raise TooLarge("transaction too large")
    value = unpack(raw, MAX_TX_BYTES)
    if type(value) is not tuple or len(value) != 9:
        raise Malformed("transaction must be an array of 9 fields")
    # every transaction of every block is decoded here (in state, and in the api for each
    # one submitted): the declared checks run as one compiled conjunction that also sets
    # the fields (common.fields), without the constructor's second encoding
    tx: Transaction = _build_transaction(value, "")
    if pack(value) != raw:  # only the canonical form round-trips
        raise Malformed("non-canonical encoding")
    _derive_transaction(tx, raw, tx_id)
    return tx


def _derive_transaction(tx: Transaction, raw: bytes, tx_id: bytes | None = None) -> None:
    """The rule that spans two fields (an RSA key's bounds are the field's own), then `raw`,
    `id` and `sender`, set once on a transaction whose fields passed their checks."""
    if tx.key_type == _ED25519 and len(tx.public_key) != crypto.ED25519_PUBLIC_LEN:
        raise Malformed("public_key has the wrong length for its key type")
    if len(raw) > MAX_TX_BYTES:  # what decode() would refuse must not be built either
        raise TooLarge(f"transaction encodes to {len(raw)} bytes > {MAX_TX_BYTES}")
    _set_raw(tx, raw)
    _set_id(tx, crypto.sha256(raw) if tx_id is None else tx_id)
    _set_sender(tx, crypto.address_of(tx.key_type, tx.public_key))


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A block header. `timestamp` is in milliseconds since the epoch.

    The HashCash proof and the PoA seal both cover `seal_hash`, the hash of every field but
    the seal's signature; the block's `hash` covers all fields.
    """

    height: U63
    parent: Hash32
    timestamp: U63
    coinbase: Address20
    tx_root: Hash32
    state_root: Hash32
    difficulty: U8
    nonce: U64
    extra: Annotated[bytes, Len(0, MAX_EXTRA)]
    vote: Annotated[bytes, Len(0, MAX_VOTE_FIELD)] = b""  # common.authorities
    signer_key_type: U8 = 0
    signer_public_key: PublicKey = b""
    signature: SealSignature = b""
    raw: bytes = field(init=False, repr=False, compare=False)
    hash: bytes = field(init=False, repr=False, compare=False)
    seal_hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate(self)
        fields = self.fields()
        raw = pack(fields)
        set_ = object.__setattr__
        set_(self, "raw", raw)
        set_(self, "hash", crypto.sha256(raw))
        set_(self, "seal_hash", crypto.sha256(pack([HEADER_DOMAIN, *fields[:-1]])))

    def fields(self) -> list[Any]:
        return [self.height, self.parent, self.timestamp, self.coinbase, self.tx_root,
                self.state_root, self.difficulty, self.nonce, self.extra, self.vote,
                self.signer_key_type, self.signer_public_key, self.signature]

    @staticmethod
    def from_fields(value: Any) -> BlockHeader:
        if type(value) is not tuple or len(value) != 13:
            raise Malformed("header must be an array of 13 fields")
        return BlockHeader(*value)

    def replace(self, **changes: Any) -> BlockHeader:
        names = ("height", "parent", "timestamp", "coinbase", "tx_root", "state_root",
                 "difficulty", "nonce", "extra", "vote", "signer_key_type", "signer_public_key",
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


class Headed:
    """What a block tells by its header alone (`Block`, `BlockOutline`, `signed.SignedBlock`)."""

    __slots__ = ()
    header: BlockHeader

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height


@dataclass(frozen=True, slots=True)
class Block(Headed):
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
    def tx_ids(self) -> tuple[bytes, ...]:
        return tuple(tx.id for tx in self.txs)

    @property
    def body(self) -> bytes:
        """The transaction list as the block encodes it: `raw` is `block_raw(header, body)`."""
        return self.raw[1 + len(self.header.raw):]

    @property
    def size(self) -> int:
        return len(self.raw)

    @staticmethod
    def decode(raw: bytes, known: Callable[[bytes], Transaction | None] | None = None, *,
               body: Callable[[BlockHeader], Block | None] | None = None) -> Block:
        """Decode a block; `known(txid)` may offer already-decoded transactions (the pool),
        and `body(header)` all of them at once (the template a sealed block was made
        from): either is used only when its bytes are exactly the block's bytes."""
        if body is not None:
            header = peek_header(raw)
            template = body(header) if header is not None else None
            # the same bytes throughout: not one transaction to read, nor the list to encode
            if (template is not None and header is not None
                    and raw == block_raw(header, template.body)):
                return _assembled(header, template.txs, raw)
        header, items = block_parts(raw)
        txs = []
        for item in items:
            if known is None:
                txs.append(_decode_transaction(item, None))
                continue
            tx_id = crypto.sha256(item)
            tx = known(tx_id)
            txs.append(tx if tx is not None and tx.raw == item
                       else _decode_transaction(item, tx_id))
        block = Block(header, tuple(txs))
        if block.raw != raw:
            raise Malformed("non-canonical encoding")
        return block


def block_raw(header: BlockHeader, body: bytes) -> bytes:
    """A block's canonical encoding from its header and its transaction list as encoded
    (`Block.body`): `pack([header.fields(), txs])` is the array marker, then each part."""
    return b"\x92" + header.raw + body


_set_block = object.__setattr__


def _assembled(header: BlockHeader, txs: tuple[Transaction, ...], raw: bytes) -> Block:
    """The block whose canonical encoding `raw` was just compared equal to `header` and
    `txs`: built without encoding it a second time."""
    block = object.__new__(Block)
    _set_block(block, "header", header)
    _set_block(block, "txs", txs)
    _set_block(block, "raw", raw)
    return block


@dataclass(frozen=True, slots=True)
class BlockOutline(Headed):
    """A block as a page of blocks shows it: its header, its transactions' ids and its size,
    read without decoding the transactions (a tenth of the work for a full block). For a
    block state has stored; checking a block is `Block.decode`'s."""

    header: BlockHeader
    tx_ids: tuple[bytes, ...]
    size: int

    @staticmethod
    def decode(raw: bytes, ids: bytes = b"") -> BlockOutline:
        """`ids`, when given, are the transactions' ids joined (32 bytes each), known
        already by whoever stored the block: then only its header is read."""
        if ids:
            header = peek_header(raw)
            if header is None:
                raise Malformed("block must be [header, [tx...]]")
            return BlockOutline(header, tuple(ids[i:i + 32] for i in range(0, len(ids), 32)),
                                len(raw))
        header, items = block_parts(raw)
        return BlockOutline(header, tuple(crypto.sha256(item) for item in items), len(raw))


def peek_header(raw: bytes) -> BlockHeader | None:
    """The header of the block `raw`, read without its transactions (to recognise a block,
    or find where a batch ends); None when that much does not parse: whoever reads the
    block in full says why."""
    try:
        count, fields = unpack_head(raw, MAX_BLOCK_BYTES)
        return BlockHeader.from_fields(fields) if count == 2 else None
    except Malformed:
        return None


def block_parts(raw: bytes) -> tuple[BlockHeader, tuple[bytes, ...]]:
    """A block's header and its transactions' bytes, undecoded; `Malformed` (or `TooLarge`)
    unless `raw` is `[header, [bin...]]` with a well-formed header and at most
    `MAX_BLOCK_TXS` transactions. Whether the encoding is canonical is the caller's check,
    once it has what re-encodes it."""
    if len(raw) > MAX_BLOCK_BYTES:
        raise TooLarge("block too large")
    value = unpack(raw, MAX_BLOCK_BYTES)
    if type(value) is not tuple or len(value) != 2 or type(value[1]) is not tuple:
        raise Malformed("block must be [header, [tx...]]")
    header = BlockHeader.from_fields(value[0])
    items: tuple[bytes, ...] = value[1]
    if len(items) > MAX_BLOCK_TXS:
        raise TooLarge("too many transactions in a block")
    for item in items:
        if type(item) is not bytes:
            raise Malformed("block transactions must be bin")
    return header, items
