"""Assume-valid sync (Bitcoin Core's `assumevalid`): which blocks may skip signature checks.

The operator names one block (`sync.assume_valid`, `ccoin node start --assume-valid`). While
our chain does not hold it, a sync round first asks its peer for headers (`GHD`/`HDS`,
docs/protocol.md §13.5) from our locator on, checks that they form one linked run (heights
consecutive, each naming the previous as parent, the first a block of our locator) and that
each carries its HashCash proof and a PoA seal that verifies, and looks for the assumed hash
in it. When the hash appears, the hashes of the run up to it are exactly the ancestors of the
assumed block (from our chain's fork point on): a block whose hash is in that set is, byte for
byte, the block the operator vouched for, since its hash commits to its header and the header
to its transactions (the Merkle root, still checked). Only those blocks skip the transaction
signatures; their proof, seal, Merkle root, and in state their parent, signer, timestamps,
nonces, balances and state root are checked as always. A block outside the set (a fork beside
or past the hash), a block announced live, and every block when the peer's chain never
reaches the hash, are verified in full.

What a peer can do with this is bounded: it cannot put a block in the set that is not an
ancestor of the hash the operator configured, so the trust is the operator's, as in Bitcoin.
The functions here are pure; `AssumeValid` holds what the syncer learnt, and `info` says it
on the bus (p2p's `PeersReply`: `GET /api/v1/status`, `/metrics`, `ccoin status`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from common import consensus, errors, messages, wire
from common.encoding import unpack
from common.genesis import Genesis
from common.status import AssumeValidState
from common.types import BlockHeader

# The most ancestors a headers phase collects (32 bytes and a set slot each: ~100 MB at the
# bound); an assumed block deeper than this above our chain is treated as not found.
MAX_ASSUMED = 1_000_000


class BrokenRun(Exception):
    """The headers do not form one run from where we asked (a peer that reorged meanwhile, or
    one that answers something else): not proof of misbehaviour, so the phase just stops."""


def decode_header(raw: bytes) -> BlockHeader:
    """A header's encoding (§5) from a peer: `Malformed` unless it is canonical."""
    header = BlockHeader.from_fields(unpack(raw, wire.MAX_HEADER_BYTES))
    if header.raw != raw:
        raise errors.Malformed("non-canonical header encoding")
    return header


def check_run(genesis: Genesis, headers: Sequence[BlockHeader],
              parent: BlockHeader | None, locator: Sequence[bytes]) -> None:
    """That `headers` continue one chain: after `parent` (the last header of the run so far)
    or, for the first reply, after a block of `locator`; heights consecutive, each header's
    parent the previous one's hash. `BrokenRun` when not; the typed `InvalidBlock`
    (`WeakProof`, `BadSeal`) of a header whose proof or seal does not verify."""
    for index, header in enumerate(headers):
        if index:
            previous = headers[index - 1]
            expected_parent, expected_height = previous.hash, previous.height + 1
        elif parent is not None:
            expected_parent, expected_height = parent.hash, parent.height + 1
        else:
            if header.parent not in locator:
                raise BrokenRun("the first header does not follow our locator")
            expected_parent, expected_height = header.parent, header.height
        if header.parent != expected_parent or header.height != expected_height:
            raise BrokenRun(f"header {header.height} does not follow the one before it")
        if header.height == 0:
            raise errors.BadHeight("a genesis header is never sent")
        consensus.check_proof(header)
        consensus.check_seal_signature(genesis, header)


def ancestry(run: Sequence[bytes], target: bytes) -> frozenset[bytes] | None:
    """The hashes of `run` (one linked run of headers, oldest first) up to and including
    `target`: the target and its ancestors in the run; None when `target` is not in it."""
    try:
        end = run.index(target)
    except ValueError:
        return None
    return frozenset(run[:end + 1])


@dataclass
class AssumeValid:
    """What sync knows about the assumed block `target` (on the chain of `genesis`).

    `assumed` holds the hashes whose signatures may be skipped, once a peer's headers showed
    the target's ancestry (at `height`); `reached` is set once our chain holds the target
    (nothing is left to skip, the set is dropped); `missing` while the last headers walk
    ended without it; `skipped` counts the signatures not checked, `blocks` the blocks that
    skipped them."""

    target: bytes
    genesis: Genesis
    assumed: set[bytes] = field(default_factory=set)
    reached: bool = False
    missing: bool = False
    height: int = 0
    skipped: int = 0
    blocks: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.target) and not self.reached

    @property
    def found(self) -> bool:
        return self.target in self.assumed

    def learn(self, ancestors: frozenset[bytes], height: int) -> None:
        """A peer's headers showed the target at `height`, with these ancestors."""
        self.assumed |= ancestors
        self.height, self.missing = height, False

    def skips(self, block_hash: bytes, signatures: int) -> bool:
        """Whether the block with this hash may skip its `signatures` (counted when it
        does; and forget it: each block is imported once, one fetched again is verified in
        full)."""
        if block_hash in self.assumed:
            self.assumed.discard(block_hash)
            self.skipped += signatures
            self.blocks += 1
            return True
        return False

    def reach(self, height: int) -> None:
        """Our chain holds the target, at `height`."""
        self.reached, self.missing, self.height = True, False, height
        self.assumed.clear()

    @property
    def state(self) -> AssumeValidState:
        if self.reached:
            return AssumeValidState.REACHED
        if self.height:  # shown by a peer (its blocks may still be on their way)
            return AssumeValidState.FOUND
        return AssumeValidState.MISSING if self.missing else AssumeValidState.SEARCHING


def info(av: AssumeValid | None) -> messages.AssumeValidInfo:
    """What assume-valid is doing, as p2p's status says it (off when `av` is None)."""
    if av is None:
        return messages.ASSUME_VALID_OFF
    return messages.AssumeValidInfo(av.target, av.state, av.height, av.skipped, av.blocks)
