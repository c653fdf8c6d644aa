"""The genesis file (ccoin's shape, `//` and `/* */` comments allowed) and the genesis block.

Unknown fields, and missing required ones, are errors naming the field (the optional ones,
such as `max_peers`, have the defaults the README lists); the ccoin seed's `genesis.json`
example loads unchanged, and means what it meant there: its `difficulty` counts leading
zero HEX DIGITS of the proof (the seed's difficulty 4 gives `pow_hash=0000b900...`), one
digit being 4 bits. `difficulty_bits` (ccoin's own, exclusive with `difficulty`) says the
same in bits, for strengths between whole digits. Past this parser everything counts bits:
`Genesis.difficulty`, the headers, the consensus parameters (so a chain's identity is its
real strength, whichever key wrote it).

The genesis block's `extra` is SHA-256 of the canonical encoding of every consensus
parameter, so two nodes that disagree about the rules (authorities, reward, interval...)
disagree about the genesis hash and refuse each other at hello.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from common import crypto
from common.authorities import DEFAULT_EPOCH, MAX_AUTHORITIES
from common.encoding import pack
from common.errors import Malformed
from common.merkle import EMPTY_ROOT
from common.statehash import from_scratch, root_of
from common.types import (
    MAX_AMOUNT,
    MAX_EXTRA,
    ZERO_ADDRESS,
    ZERO_HASH,
    Account,
    Block,
    BlockHeader,
)


class GenesisError(Malformed):
    """genesis file is invalid"""


BITS_PER_DIGIT = 4  # a hex digit of the proof: the seed's unit of `difficulty`
MAX_DIFFICULTY_BITS = 32  # block_mining: a PoA seal or a PoW start beyond it takes hours
MAX_GENESIS_BITS = 24  # genesis_block: `genesis init` mines it in minutes at most


@dataclass(frozen=True, slots=True)
class Genesis:
    network_id: int
    miners: tuple[bytes, ...]
    interval_ms: int
    max_bound: int
    min_bound: int
    reward: int
    difficulty: int
    allow_empty: bool
    placeholder: tuple[str, Any]
    max_peers: int
    retarget_blocks: int
    genesis_coinbase: bytes
    genesis_reward: int
    genesis_difficulty: int
    genesis_timestamp: int
    alloc: tuple[tuple[bytes, int], ...]
    epoch: int = DEFAULT_EPOCH

    @property
    def is_poa(self) -> bool:
        return bool(self.miners)

    def consensus_params(self) -> list[Any]:
        return [self.network_id, list(self.miners), self.interval_ms, self.max_bound,
                self.min_bound, self.reward, self.difficulty, self.allow_empty,
                self.retarget_blocks, self.genesis_coinbase, self.genesis_reward,
                self.genesis_difficulty, self.genesis_timestamp,
                [list(a) for a in self.alloc], self.epoch]

    def initial_accounts(self) -> dict[bytes, Account]:
        accounts = {addr: Account(balance) for addr, balance in self.alloc}
        if self.genesis_coinbase != ZERO_ADDRESS and self.genesis_reward:
            prev = accounts.get(self.genesis_coinbase, Account())
            accounts[self.genesis_coinbase] = Account(prev.balance + self.genesis_reward)
        return accounts

    def placeholder_extra(self) -> bytes:
        """Extra data for an empty block (seed: `["rnd", 15]` = 15 random bits)."""
        kind, arg = self.placeholder
        if kind == "rnd":
            nbytes = (arg + 7) // 8
            value = secrets.randbits(arg) if arg else 0
            return value.to_bytes(nbytes, "big")
        return str(arg).encode()[:MAX_EXTRA]


def strip_comments(text: str) -> str:
    """Remove `//` and `/* */` comments that are not inside JSON strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise GenesisError("unterminated /* comment")
            i = end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class _Float(str):
    """A JSON number with a fraction or exponent, kept as its text until `_reject_floats`
    can name the field it sits in (json's parse_float hook cannot)."""


def _reject_floats(value: Any, where: str) -> None:
    if isinstance(value, _Float):
        raise GenesisError(f"{where}: numbers must be integers, got {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_floats(item, f"{where}[{i}]")


def _obj(value: Any, where: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(f"{where} must be an object")
    missing = required - value.keys()
    if missing:
        raise GenesisError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise GenesisError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return value


def _int(value: Any, where: str, lo: int = 0, hi: int = MAX_AMOUNT) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise GenesisError(f"{where} must be an integer in [{lo}, {hi}]")
    return value


def _address(value: Any, where: str, allow_empty: bool = False) -> bytes:
    if allow_empty and value in ("", None):
        return ZERO_ADDRESS
    raw = crypto.address_from_hex(value) if isinstance(value, str) else None
    if raw is None:
        raise GenesisError(f"{where}: {value!r} is not a 40-hex-character address")
    return raw


def _difficulty(section: dict[str, Any], where: str, max_bits: int, *, required: bool) -> int:
    """The section's proof strength in bits: `difficulty` in hex digits (the seed's unit),
    or `difficulty_bits`; one of them, never both (0 when neither and not `required`)."""
    if "difficulty" in section and "difficulty_bits" in section:
        raise GenesisError(f"{where}: give difficulty (hex digits) or difficulty_bits, "
                           "not both")
    if "difficulty_bits" in section:
        return _int(section["difficulty_bits"], f"{where}.difficulty_bits", 0, max_bits)
    if "difficulty" in section:
        digits = _int(section["difficulty"], f"{where}.difficulty (hex digits)", 0,
                      max_bits // BITS_PER_DIGIT)
        return digits * BITS_PER_DIGIT
    if required:
        raise GenesisError(f"{where}: missing field(s) difficulty (or difficulty_bits)")
    return 0


def parse_genesis(text: str) -> Genesis:
    try:
        doc = json.loads(strip_comments(text), parse_float=_Float)
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis is not valid JSON: {exc}") from None
    _reject_floats(doc, "genesis")
    top = _obj(doc, "genesis", {"network_id", "miners", "block_mining", "genesis_block", "alloc"},
               {"max_peers"})
    bm = _obj(top["block_mining"], "block_mining",
              {"max_bound", "min_bound", "reward"},
              {"interval", "allow_empty", "placeholder_data", "retarget_blocks", "interval_ms",
               "difficulty", "difficulty_bits", "epoch"})
    if "interval" not in bm and "interval_ms" not in bm:
        raise GenesisError("block_mining: missing field(s) interval")
    gb = _obj(top["genesis_block"], "genesis_block", set(),
              {"coinbase", "coinbase_reward", "difficulty", "difficulty_bits", "timestamp"})
    if not isinstance(top["miners"], list):
        raise GenesisError("miners must be a list of addresses")
    miners = tuple(_address(m, f"miners[{i}]") for i, m in enumerate(top["miners"]))
    if len(set(miners)) != len(miners):
        raise GenesisError("miners lists an address twice")
    if len(miners) > MAX_AUTHORITIES:
        raise GenesisError(f"miners lists {len(miners)} authorities; at most {MAX_AUTHORITIES}")
    interval_ms = (_int(bm["interval_ms"], "block_mining.interval_ms", 1, 86_400_000)
                   if "interval_ms" in bm
                   else _int(bm["interval"], "block_mining.interval", 1, 86_400) * 1000)
    placeholder = bm.get("placeholder_data", ["rnd", 0])
    if (not isinstance(placeholder, list) or len(placeholder) != 2
            or placeholder[0] not in ("rnd", "text")):
        raise GenesisError('block_mining.placeholder_data must be ["rnd", bits] or ["text", s]')
    if placeholder[0] == "rnd":
        _int(placeholder[1], "placeholder_data bits", 0, MAX_EXTRA * 8)
    allow_empty = bm.get("allow_empty", True)
    if type(allow_empty) is not bool:
        raise GenesisError("block_mining.allow_empty must be true or false")
    max_bound = _int(bm["max_bound"], "block_mining.max_bound", 1, 50_000)
    min_bound = _int(bm["min_bound"], "block_mining.min_bound", 0, max_bound)
    if not isinstance(top["alloc"], dict):
        raise GenesisError("alloc must be an object of address: {balance}")
    alloc: dict[bytes, int] = {}
    for key, entry in top["alloc"].items():
        addr = _address(key, f"alloc key {key!r}")
        entry = _obj(entry, f"alloc[{key}]", {"balance"}, set())
        if addr in alloc:
            raise GenesisError(f"alloc lists {key} twice")
        alloc[addr] = _int(entry["balance"], f"alloc[{key}].balance")
    genesis = Genesis(
        network_id=_int(top["network_id"], "network_id", 0, 2**32 - 1),
        miners=miners,
        interval_ms=interval_ms,
        max_bound=max_bound,
        min_bound=min_bound,
        reward=_int(bm["reward"], "block_mining.reward"),
        difficulty=_difficulty(bm, "block_mining", MAX_DIFFICULTY_BITS, required=True),
        allow_empty=allow_empty,
        placeholder=(placeholder[0], placeholder[1]),
        max_peers=_int(top.get("max_peers", 0), "max_peers", 0, 10_000),
        retarget_blocks=_int(bm.get("retarget_blocks", 10), "block_mining.retarget_blocks", 1,
                             100_000),
        genesis_coinbase=_address(gb.get("coinbase", ""), "genesis_block.coinbase", True),
        genesis_reward=_int(gb.get("coinbase_reward", 0), "genesis_block.coinbase_reward"),
        genesis_difficulty=_difficulty(gb, "genesis_block", MAX_GENESIS_BITS, required=False),
        genesis_timestamp=_int(gb.get("timestamp", 0), "genesis_block.timestamp"),
        alloc=tuple(sorted(alloc.items())),
        epoch=_int(bm.get("epoch", DEFAULT_EPOCH), "block_mining.epoch", 1, 10_000_000),
    )
    if sum(alloc.values()) + genesis.genesis_reward > MAX_AMOUNT:
        raise GenesisError("alloc total exceeds 2^63 - 1")
    return genesis


def genesis_block(genesis: Genesis) -> Block:
    """The deterministic genesis block: alloc's state root and a HashCash proof at
    `genesis_block.difficulty` (in bits by now), searched from nonce 0."""
    state_root = root_of(from_scratch(genesis.initial_accounts().items()))
    header = BlockHeader(
        height=0, parent=ZERO_HASH, timestamp=genesis.genesis_timestamp,
        coinbase=genesis.genesis_coinbase, tx_root=EMPTY_ROOT, state_root=state_root,
        difficulty=genesis.genesis_difficulty, nonce=0,
        extra=crypto.sha256(pack(genesis.consensus_params())),
    )
    nonce = 0
    while crypto.leading_zero_bits(header.seal_hash) < genesis.genesis_difficulty:
        nonce += 1
        header = header.replace(nonce=nonce)
    return Block(header, ())
