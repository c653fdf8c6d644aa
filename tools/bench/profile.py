"""Where an end-to-end transfer's microseconds go (issue 13, goal 1): the node's own code,
run in this process on the bench's own workload, one step at a time, each step's CPU
divided by the transfers it handled.

The gateway's steps are those of `POST /txs/batch` for 1,000 transfers in its binary form
(reading the body, decoding, the signature check); state's are its handlers called as the
bus would call them (`StateService.submit_txs`: decode, pool admission and the synced
journal write; `get_template`: the template, each transfer applied on an overlay and the
state root; `submit_block`: the sealed block recognised as that template, the indexes and
the commit), on a fresh chain in a temporary directory, sealed as the miner seals. Only the
sockets and the HTTP around them are missing: the end-to-end stage's per-process CPU table
says what those add.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import consensus, crypto
from common import messages as m
from common.encoding import pack, unpack, unpack_canonical
from common.genesis import parse_genesis
from common.signed import read_tx
from common.types import BlockHeader, Transaction, block_raw
from runtime.service import tune_collector
from services.api import schema
from services.state.chain import Chain
from services.state.mempool import Mempool
from services.state.service import StateService
from services.state.store import Store
from tools.bench.workload import CHAIN_ID, bench_key
from tools.devchain import genesis_doc

BATCH = 1_000
MAX_BOUND = 4_000
MAX_TXS = 20_000  # what the bench profiles at most: costs per transfer are steady by then


class Steps:
    """CPU seconds by step name, in the order first seen."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - start


def gateway_steps(txs: list[Transaction], steps: Steps) -> None:
    """The batch route's parsing, in its three parts, batch by batch."""
    for i in range(0, len(txs), BATCH):
        body = pack([tx.raw for tx in txs[i:i + BATCH]])  # as `Client.submit_batch` posts it
        with steps.timed("api: read the body (msgpack)"):
            raws = unpack(body)
        with steps.timed("api: read for the signature check"):
            read = [read_tx(raw) for raw in raws]  # as `schema.read_batch` reads an item
        with steps.timed("api: signature check"):
            for tx in read:
                schema.check_chain(tx, CHAIN_ID)
                if not tx.verifies():
                    raise SystemExit("bench: profile: a transfer's signature failed")


def state_steps(txs: list[Transaction], funded: list[bytes], steps: Steps,
                max_bound: int = MAX_BOUND) -> int:
    """State's handlers on a fresh chain: admit every transfer, then seal blocks until the
    pool is empty. Returns the blocks made."""
    authority = bench_key(10**6)
    genesis = parse_genesis(json.dumps(genesis_doc(
        network_id=CHAIN_ID, miners=[authority.address], alloc=dict.fromkeys(funded, 10**12),
        interval_ms=1000, max_bound=max_bound, difficulty=0)))
    with tempfile.TemporaryDirectory(prefix="ccoin-bench-profile-") as tmp:
        chain = Chain(Store(Path(tmp)), genesis, mempool=Mempool(genesis.network_id))
        service = StateService(chain, None)
        try:
            for i in range(0, len(txs), BATCH):
                request = m.SubmitTxs(tuple(tx.raw for tx in txs[i:i + BATCH]))
                with steps.timed("state: admit (decode, pool, synced journal)"):
                    result = service.submit_txs(request)
                if result.refused:
                    raise SystemExit(f"bench: profile: a transfer was refused: {result}")
            blocks = 0
            # Timestamps only have to rise, and stay within MAX_FUTURE_MS of the clock
            # however many blocks the transfers fill.
            now_ms = int(time.time() * 1000)
            while len(chain.mempool):
                now_ms += 1
                with steps.timed("state: template (apply, state root)"):
                    template = service.get_template(m.GetTemplate(authority.address, now_ms,
                                                                  b""))
                raw = seal(template, authority)
                with steps.timed("state: import (checks, indexes, commit)"):
                    reply = service.submit_block(m.SubmitBlock(raw))
                if reply.status != "head":
                    raise SystemExit(f"bench: profile: block not imported: {reply}")
                blocks += 1
            return blocks
        finally:
            chain.store.close()


def seal(template: m.TemplateReply, authority: crypto.Signer) -> bytes:
    """The block of `template`, sealed as the miner seals it (difficulty 0: no search)."""
    header = BlockHeader.from_fields(unpack_canonical(template.header))
    solved = consensus.seal(header, authority, 1)
    if solved is None:
        raise SystemExit("bench: profile: the template needs proof of work")
    return block_raw(solved, template.body)


@contextmanager
def collected_as_a_service() -> Iterator[None]:
    """The garbage collector set as the node's services set it (`runtime.service`), for the
    time of the profile: at CPython's defaults, the bench's own objects (every transfer,
    signed) were walked by collections the services do not run, and decoding read ~5 µs a
    transfer instead of ~2."""
    before = gc.get_threshold()
    tune_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def run(txs: list[Transaction], funded: list[bytes]) -> dict[str, float]:
    """µs of CPU per transfer, by step, for `txs` among the `funded` accounts."""
    steps = Steps()
    with collected_as_a_service():
        gateway_steps(txs, steps)
        state_steps(txs, funded, steps)
    return {name: seconds * 1e6 / len(txs) for name, seconds in steps.seconds.items()}
