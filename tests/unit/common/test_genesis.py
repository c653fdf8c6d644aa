"""The genesis file (ccoin's shape, with comments) and the deterministic genesis block."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from common import crypto
from common.encoding import pack
from common.genesis import (
    GenesisError,
    genesis_block,
    parse_genesis,
    strip_comments,
)
from common.merkle import EMPTY_ROOT
from common.statehash import from_scratch, root_of
from common.types import ZERO_ADDRESS, ZERO_HASH, Account
from runtime.config import load_genesis  # reads the file; the rules are common's
from tests.framework.rules import genesis_doc, make_genesis

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
SEED_GENESIS = VECTORS / "seed_genesis.json"


def parse(doc: dict[str, Any]) -> Any:
    return parse_genesis(json.dumps(doc))


def expect_error(doc: dict[str, Any] | str, *needles: str) -> GenesisError:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(GenesisError) as info:
        parse_genesis(text)
    assert info.value.code == "malformed"
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    return info.value


# --- the seed's example -----------------------------------------------------------------------


def test_seed_example_keeps_its_comments() -> None:
    text = SEED_GENESIS.read_text()
    assert "// mine block each 10 minutes" in text  # really the verbatim example
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_seed_example_loads() -> None:
    g = load_genesis(SEED_GENESIS)
    assert g.network_id == 1
    assert g.miners == (bytes.fromhex("968414a7573534a414f4f704b51366f536751764"),
                        bytes.fromhex("968414c6a686a74316a615a4d364f4f317164624"))
    assert g.is_poa
    # the seed counts difficulty in hex digits: 5 digits, 4 digits = 20 and 16 bits
    assert (g.interval_ms, g.max_bound, g.min_bound, g.reward, g.difficulty) == (
        600_000, 100, 10, 100, 20)
    assert g.allow_empty is True and g.placeholder == ("rnd", 15) and g.max_peers == 0
    assert g.genesis_coinbase == ZERO_ADDRESS and g.genesis_reward == 100
    assert g.genesis_difficulty == 16
    assert dict(g.alloc) == {
        bytes.fromhex("968414d67505a526b6b34614d354d34546734584"): 10_000_000,
        bytes.fromhex("968414c6a686a74316a615a4d364f4f317164624"): 100,
    }
    # with an empty coinbase the genesis reward has nobody to go to
    assert g.initial_accounts() == {a: Account(b) for a, b in g.alloc}


def test_seed_genesis_block() -> None:
    g = load_genesis(SEED_GENESIS)
    block = genesis_block(g)
    h = block.header
    assert block.txs == () and h.height == 0 and h.parent == ZERO_HASH
    assert h.tx_root == EMPTY_ROOT and h.coinbase == ZERO_ADDRESS
    assert h.state_root == root_of(from_scratch(g.initial_accounts().items()))
    assert h.extra == crypto.sha256(pack(g.consensus_params()))
    # the seed's promise for its difficulty 4: `pow_hash=0000...`, four leading hex zeros
    assert h.difficulty == 16 and h.seal_hash.hex().startswith("0000")
    # the proof is the first nonce that works (checked on a sample below it: 16 bits take
    # tens of thousands of tries)
    for nonce in range(0, h.nonce, max(1, h.nonce // 500)):
        assert crypto.leading_zero_bits(h.replace(nonce=nonce).seal_hash) < 16
    assert genesis_block(load_genesis(SEED_GENESIS)).hash == block.hash


@pytest.mark.parametrize("section, limit", [("block_mining", 8), ("genesis_block", 6)])
def test_difficulty_counts_hex_digits_and_difficulty_bits_counts_bits(
        section: str, limit: int) -> None:
    """The seed's unit (hex digits) and ccoin's (bits) name the same strength in bits; a
    chain's identity (its consensus parameters, its genesis hash) is that strength."""
    def with_(**fields: int) -> Any:
        doc = genesis_doc()
        doc[section].pop("difficulty_bits", None)
        doc[section].update(fields)
        return doc

    by_digits, by_bits = parse(with_(difficulty=3)), parse(with_(difficulty_bits=12))
    attr = "difficulty" if section == "block_mining" else "genesis_difficulty"
    assert getattr(by_digits, attr) == getattr(by_bits, attr) == 12
    assert by_digits.consensus_params() == by_bits.consensus_params()
    assert genesis_block(by_digits).hash == genesis_block(by_bits).hash
    assert getattr(parse(with_(difficulty_bits=13)), attr) == 13  # between two digits
    assert getattr(parse(with_(difficulty=limit)), attr) == 4 * limit
    assert getattr(parse(with_(difficulty_bits=4 * limit)), attr) == 4 * limit
    expect_error(with_(difficulty=1, difficulty_bits=4), section, "not both")
    expect_error(with_(difficulty=limit + 1), f"{section}.difficulty (hex digits)",
                 f"[0, {limit}]")
    expect_error(with_(difficulty_bits=4 * limit + 1), f"{section}.difficulty_bits",
                 f"[0, {4 * limit}]")
    expect_error(with_(difficulty_bits=-1), f"{section}.difficulty_bits")


def test_consensus_params_bind_the_genesis_hash() -> None:
    base = genesis_block(make_genesis()).hash
    assert genesis_block(make_genesis()).hash == base
    for change in ({"reward": 101}, {"network_id": 8}, {"difficulty": 1},
                   {"interval_ms": 11_000}, {"retarget_blocks": 11}, {"max_bound": 999}):
        assert genesis_block(make_genesis(**change)).hash != base, change


def test_genesis_coinbase_reward_is_credited() -> None:
    doc = genesis_doc()
    doc["genesis_block"]["coinbase"] = "ab" * 20
    doc["genesis_block"]["coinbase_reward"] = 50
    g = parse(doc)
    assert g.initial_accounts()[bytes.fromhex("ab" * 20)] == Account(50)
    assert genesis_block(g).header.coinbase == bytes.fromhex("ab" * 20)


# --- comments ---------------------------------------------------------------------------------


def test_comment_markers_inside_strings_are_preserved() -> None:
    text = '{"a": "http://x/*y*/", // real comment\n "b": "q\\"//z" /* block */}'
    assert json.loads(strip_comments(text)) == {"a": "http://x/*y*/", "b": 'q"//z'}
    doc = genesis_doc()
    doc["block_mining"]["placeholder_data"] = ["text", "see http://ccoin // not a comment"]
    g = parse_genesis(json.dumps(doc) + " // trailing comment")
    assert g.placeholder == ("text", "see http://ccoin // not a comment")
    assert g.placeholder_extra() == b"see http://ccoin // not a comment"


def test_block_comments_and_unterminated_comment() -> None:
    text = json.dumps(genesis_doc()).replace('"network_id"', '/* id:\n */ "network_id"', 1)
    assert parse_genesis(text).network_id == 7
    expect_error('{"network_id": 1 /* oops', "unterminated")


def test_invalid_json() -> None:
    expect_error('{"network_id": }', "JSON")


# --- field errors name the field --------------------------------------------------------------


@pytest.mark.parametrize("path", [
    (), ("block_mining",), ("genesis_block",),
])
def test_unknown_fields(path: tuple[str, ...]) -> None:
    doc = genesis_doc()
    target = doc
    for p in path:
        target = target[p]
    target["surprise"] = 1
    expect_error(doc, "unknown", "surprise")


def test_unknown_field_in_alloc_entry() -> None:
    doc = genesis_doc()
    first = next(iter(doc["alloc"]))
    doc["alloc"][first]["code"] = "00"
    expect_error(doc, "unknown", "code", first)


@pytest.mark.parametrize("path", [
    ("network_id",), ("miners",), ("block_mining",), ("genesis_block",), ("alloc",),
    ("block_mining", "interval"), ("block_mining", "max_bound"), ("block_mining", "min_bound"),
    ("block_mining", "reward"), ("block_mining", "difficulty_bits"),
])
def test_missing_fields(path: tuple[str, ...]) -> None:
    doc = genesis_doc()
    target = doc
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]
    if path[-1] == "interval":
        del target["interval_ms"]  # either one gives the interval
    # difficulty_bits is the alternative to the seed's difficulty: the error names the latter
    expect_error(doc, "missing", path[-1].removesuffix("_bits"))


def test_interval_ms_alone_gives_the_interval() -> None:
    doc = genesis_doc(interval_ms=250)
    del doc["block_mining"]["interval"]
    assert parse_genesis(json.dumps(doc)).interval_ms == 250


def test_missing_alloc_balance() -> None:
    doc = genesis_doc()
    first = next(iter(doc["alloc"]))
    doc["alloc"][first] = {}
    expect_error(doc, "missing", "balance")


@pytest.mark.parametrize("path, value", [
    (("network_id",), "1.0"),
    (("block_mining", "interval"), "600.5"),
    (("block_mining", "reward"), "1e2"),
    (("block_mining", "difficulty_bits"), "5.0"),
    (("max_peers",), "0.0"),
    (("genesis_block", "timestamp"), "1.5E3"),
])
def test_floats_are_rejected_naming_the_field(path: tuple[str, ...], value: str) -> None:
    doc = genesis_doc()
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = "@FLOAT@"
    text = json.dumps(doc).replace('"@FLOAT@"', value)
    expect_error(text, ".".join(path), "integer")


def test_float_balance_names_its_account() -> None:
    doc = genesis_doc()
    first = next(iter(doc["alloc"]))
    doc["alloc"][first]["balance"] = "@FLOAT@"
    expect_error(json.dumps(doc).replace('"@FLOAT@"', "10.5"), first, "balance")


@pytest.mark.parametrize("value", ["xyz", "ab" * 19, "ab" * 21, 12, None])
def test_bad_miner_address(value: Any) -> None:
    doc = genesis_doc()
    doc["miners"] = ["ab" * 20, value]
    expect_error(doc, "miners[1]")


def test_bad_alloc_address() -> None:
    doc = genesis_doc()
    doc["alloc"]["zz" * 20] = {"balance": 1}
    expect_error(doc, "alloc", "zz" * 20)


def test_bad_coinbase_address() -> None:
    doc = genesis_doc()
    doc["genesis_block"]["coinbase"] = "1234"
    expect_error(doc, "genesis_block.coinbase")


def test_addresses_accept_0x_prefix() -> None:
    doc = genesis_doc()
    doc["miners"] = ["0x" + "ab" * 20]
    assert parse(doc).miners == (bytes.fromhex("ab" * 20),)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.__setitem__("miners", ["ab" * 20, "AB" * 20]), "twice"),
    (lambda d: d.__setitem__("miners", "ab" * 20), "miners"),
    (lambda d: d.__setitem__("alloc", []), "alloc"),
    (lambda d: d["block_mining"].__setitem__("min_bound", 2000), "min_bound"),
    (lambda d: d["block_mining"].__setitem__("allow_empty", 1), "allow_empty"),
    (lambda d: d["block_mining"].__setitem__("placeholder_data", ["rnd"]), "placeholder_data"),
    (lambda d: d["block_mining"].__setitem__("placeholder_data", ["rnd", 9999]), "bits"),
    (lambda d: d["block_mining"].__setitem__("reward", True), "reward"),
    (lambda d: d["block_mining"].__setitem__("reward", -1), "reward"),
    (lambda d: d.__setitem__("network_id", 2**32), "network_id"),
    (lambda d: d["block_mining"].update(interval=0, interval_ms=None) or
     d["block_mining"].pop("interval_ms"), "block_mining.interval"),
    (lambda d: d["block_mining"].__setitem__("interval_ms", 0), "interval_ms"),
    (lambda d: d["genesis_block"].__setitem__("difficulty_bits", 25),
     "genesis_block.difficulty_bits"),
    (lambda d: d.__setitem__("alloc", {"ab" * 20: {"balance": 2**62},
                                       "cd" * 20: {"balance": 2**62}}), "2^63"),
])
def test_bad_values(mutate: Any, needle: str) -> None:
    doc = copy.deepcopy(genesis_doc())
    mutate(doc)
    expect_error(doc, needle)


def test_optional_fields_have_defaults() -> None:
    doc = genesis_doc()
    for name in ("allow_empty", "placeholder_data", "retarget_blocks", "interval_ms"):
        del doc["block_mining"][name]
    del doc["max_peers"]
    doc["genesis_block"] = {}
    g = parse(doc)
    assert g.allow_empty is True and g.placeholder == ("rnd", 0) and g.retarget_blocks == 10
    assert g.interval_ms == doc["block_mining"]["interval"] * 1000
    assert g.genesis_coinbase == ZERO_ADDRESS and g.genesis_timestamp == 0
    assert g.placeholder_extra() == b""


def test_placeholder_extra_random_bits() -> None:
    doc = genesis_doc()
    g = parse(doc)  # ["rnd", 15]
    values = {g.placeholder_extra() for _ in range(40)}
    assert all(len(v) == 2 and v[0] < 0x80 for v in values)  # 15 bits in 2 bytes
    assert len(values) > 1


def test_pow_mode_when_no_miners() -> None:
    assert not make_genesis().is_poa
    assert make_genesis(miners=[bytes(20)]).is_poa
