"""The state database's keys and values (`services/state/schema.py`): the parts the import
loop joins by hand make exactly what the general functions make."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.encoding import pack
from common.status import Direction
from services.state import schema

hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20)
heights = st.integers(0, 2**63 - 1)
indexes = st.integers(0, 2**32 - 1)


@given(hashes, indexes)
def test_a_joined_location_is_the_canonical_pair(block_hash: bytes, index: int) -> None:
    assert schema.PAIR_OF_HASH + block_hash + pack(index) == pack([block_hash, index])


@given(hashes, st.sampled_from(Direction))
def test_a_joined_history_value_is_the_canonical_pair(txid: bytes, direction: Direction) -> None:
    assert (schema.PAIR_OF_HASH + txid + pack(direction.value)
            == pack([txid, direction.value]))


@given(addresses, heights, indexes)
def test_a_history_key_is_its_prefix_then_its_position(address: bytes, height: int,
                                                       index: int) -> None:
    key = schema.history_key(address, height, index)
    assert key == schema.history_prefix(address) + schema.history_position(height, index)
    assert schema.parse_history_key(key) == (height, index)
