"""Every LevelDB key the state service writes, built in one place (py-evm's schema.py).

`n`, `t`, `x`, `c`, `u` and `a` describe the main chain: past the genesis commit, only
`indexes.connect_block` and `indexes.disconnect_block` write them. `A` is a function of a
block's headers alone (its branch, not the main chain), so it is written once, with the
block, whether the block joins the main chain or a side branch, and never undone.

| prefix | key                         | value                                           |
|--------|-----------------------------|-------------------------------------------------|
| `H`    | block hash                  | header raw                                      |
| `b`    | block hash                  | block raw (header + transactions)               |
| `m`    | block hash                  | BlockMeta: [total_weight, state_value(384 B)]   |
| `n`    | height (8 B big-endian)     | main-chain block hash at that height            |
| `t`    | txid                        | [block hash, index] of a main-chain transaction |
| `a`    | address                     | [balance, nonce] at the head                    |
| `u`    | main-chain block hash       | undo: [[address, balance, nonce], ...] before    |
| `j`    | sequence (8 B big-endian)   | mempool journal: raw transactions journalled    |
|        |                             | together, a msgpack array (`journal.Journal`)   |
| `p`    | txid                        | old-form journal: a raw transaction (read,      |
|        |                             | moved to `j`, at start; written no more)        |
| `i`    | block hash                  | known-invalid block: error code                 |
| `x`    | address, height, index      | [txid, direction] of a main-chain transaction   |
| `c`    | address                     | how many `x` entries it has (8 B big-endian)    |
| `T`    | block hash                  | (empty) a chain tip: a stored block, no child   |
| `A`    | block hash                  | the authorities after it (`authorities.Snapshot`)|
| `M`    | name                        | metadata (`head`, `genesis`, `version`, `proposals`)|
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from common.encoding import pack, unpack
from common.types import Account

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")

HEADER = b"H"
BLOCK = b"b"
META = b"m"
HEIGHT = b"n"
TX_INDEX = b"t"
ACCOUNT = b"a"
UNDO = b"u"
JOURNAL = b"j"
LEGACY_JOURNAL = b"p"  # one entry per transaction, before `j`: only read (and deleted)
INVALID = b"i"
METADATA = b"M"
HISTORY = b"x"
HISTORY_COUNT = b"c"
TIP = b"T"
AUTHORITIES = b"A"

# 2: `c` history counts (a version-1 database gets them counted once when it is opened)
# 3: headers carry `vote` (13 fields) and every stored block its `A` snapshot; an older
#    database holds another chain (its hashes differ) and is refused
# 4: the pool's journal is one `j` entry per admitted batch. A version-3 database reads as
#    it is (its `p` entries move to `j` at start), and is marked 4 as soon as a node opens
#    it, so that an older ccoin refuses it instead of starting with an empty pool
SCHEMA_VERSION = b"4"
READABLE_VERSIONS = (b"3", SCHEMA_VERSION)


def header_key(block_hash: bytes) -> bytes:
    return HEADER + block_hash


def block_key(block_hash: bytes) -> bytes:
    return BLOCK + block_hash


def meta_key(block_hash: bytes) -> bytes:
    return META + block_hash


def height_key(height: int) -> bytes:
    return HEIGHT + _U64.pack(height)


def tx_key(txid: bytes) -> bytes:
    return TX_INDEX + txid


def account_key(address: bytes) -> bytes:
    return ACCOUNT + address


def undo_key(block_hash: bytes) -> bytes:
    return UNDO + block_hash


def journal_key(seq: int) -> bytes:
    """Sequence numbers sort as integers, so a scan reads the entries oldest first."""
    return JOURNAL + _U64.pack(seq)


JOURNAL_KEY_LEN = 1 + _U64.size


def journal_seq(key: bytes) -> int:
    return _U64.unpack_from(key, 1)[0]


def legacy_journal_key(txid: bytes) -> bytes:
    return LEGACY_JOURNAL + txid


def invalid_key(block_hash: bytes) -> bytes:
    return INVALID + block_hash


PROPOSALS = "proposals"  # metadata: this node's authority-vote proposals (Chain.propose)


def metadata_key(name: str) -> bytes:
    return METADATA + name.encode()


def history_prefix(address: bytes) -> bytes:
    return HISTORY + address


def history_key(address: bytes, height: int, index: int) -> bytes:
    """Sorted by height then index, so a reverse scan of the prefix is newest first."""
    return HISTORY + address + history_position(height, index)


def history_position(height: int, index: int) -> bytes:
    """The end of a history key, after `history_prefix(address)`."""
    return _U64.pack(height) + _U32.pack(index)


# A `t` value, [block hash, index], and an `x` value, [txid, direction], are canonical
# msgpack: these three bytes (an array of two, then a 32-byte bin), the hash, then the
# second element's own encoding. The import loop joins the parts, the block's shared ones
# made once (`indexes.connect_block`: half its cost per transaction); test_schema holds the
# result equal to `pack`.
PAIR_OF_HASH = b"\x92\xc4\x20"


def parse_history_key(key: bytes) -> tuple[int, int]:
    return _U64.unpack_from(key, 21)[0], _U32.unpack_from(key, 29)[0]


def history_count_key(address: bytes) -> bytes:
    return HISTORY_COUNT + address


def encode_count(n: int) -> bytes:
    return _U64.pack(n)


def decode_count(raw: bytes | None) -> int:
    return _U64.unpack(raw)[0] if raw is not None else 0


def tip_key(block_hash: bytes) -> bytes:
    return TIP + block_hash


def authorities_key(block_hash: bytes) -> bytes:
    return AUTHORITIES + block_hash


def encode_undo(before: Mapping[bytes, Account]) -> bytes:
    """The `u` value: every account a block touched, as it was before the block."""
    return pack([[address, acc.balance, acc.nonce] for address, acc in before.items()])


def decode_undo(raw: bytes) -> dict[bytes, Account]:
    return {address: Account(balance, nonce) for address, balance, nonce in unpack(raw)}
