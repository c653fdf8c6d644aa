"""A chain database with something in every kind of record, built through the state
service's own `Chain` on a real LevelDB, for the storage tests: damage its files by hand,
then open, check and reindex it (tests/unit/services/state/test_store_damage.py,
test_check.py, test_reindex.py; tests/unit/tools/cli/test_repair.py); or make its writes
fail as a full disk does (`FailingWrites`: test_write_failures.py, test_storage.py).

The chain: `n_blocks` main-chain blocks of transfers (so accounts, history, the tx index
and undo records all have entries), a side block off the main chain, pending transactions
in the mempool journal, and the last `tail` blocks written after a reopen, so that the older
records sit in LevelDB table files (`*.ldb`) and the newest ones in its log (`*.log`).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plyvel

from common.genesis import Genesis
from common.types import Block, Transaction
from services.state.chain import Chain
from services.state.store import Batch, Store
from tests.framework import rules as rh

NOW = 2**62  # far future: a built block's timestamp is never "in the future"
SENDERS = (1, 2, 3)  # funded by rh.genesis_doc's default alloc
PENDING_ENTRY = 0  # the mempool journal's one entry (`pending`, admitted in one batch)


def genesis() -> Genesis:
    """PoA with one authority (key 100): every block is in turn, weight 2."""
    return rh.poa_genesis(n_miners=1)


@dataclass(frozen=True, slots=True)
class StoredChain:
    chain_dir: Path
    genesis: Genesis
    blocks: list[Block]  # the main chain, genesis first
    side: Block
    pending: list[Transaction]  # in the mempool journal

    @property
    def head(self) -> Block:
        return self.blocks[-1]


def build(chain_dir: Path, g: Genesis | None = None, n_blocks: int = 12,
          tail: int = 2) -> StoredChain:
    g = g or genesis()
    ref = rh.Chain(g)
    nonces = dict.fromkeys(SENDERS, 0)

    def transfers(n: int) -> list[Transaction]:
        txs = []
        for i, sender in enumerate(SENDERS):
            txs.append(rh.transfer(sender, rh.address(10 + (n + i) % 4), 10 + n, fee=1,
                                   nonce=nonces[sender]))
            nonces[sender] += 1
        return txs

    side_parent = max(1, n_blocks - 4)
    side_ref = rh.Chain(g)
    chain = Chain(Store(chain_dir), g)
    for n in range(1, n_blocks + 1):
        if n == n_blocks - tail + 1:  # the rest goes to the log of a reopened database
            chain.store.close()
            chain = Chain(Store(chain_dir), g)
        block = ref.build_and_apply(transfers(n))
        assert chain.import_block(block, NOW).status == "head"
        if n < side_parent:
            side_ref.apply(block, validate=False)
    side = side_ref.build([], extra=b"side")
    assert chain.import_block(side, NOW).status == "side"
    pending = transfers(n_blocks + 1)
    results, accepted = chain.add_transactions(pending)
    assert all(r is None for r in results) and len(accepted) == len(pending)
    chain.store.close()
    return StoredChain(chain_dir, g, ref.blocks, side, pending)


def copy(stored: StoredChain, chain_dir: Path) -> StoredChain:
    """`stored` copied to `chain_dir` (cheaper than building another for each test)."""
    shutil.copytree(stored.chain_dir, chain_dir)
    return dataclasses.replace(stored, chain_dir=chain_dir)


def write_node_files(base: Path, g_doc: dict[str, object] | None = None) -> Path:
    """`node.json` and `genesis.json` in `base` for `genesis()` (or `g_doc`): what the
    `ccoin node check|reindex` commands and the state service read; the chain dir is
    `base/chain`. Returns the config's path."""
    base.mkdir(parents=True, exist_ok=True)
    doc = g_doc or rh.genesis_doc(miners=[rh.address(100)], difficulty=4)
    (base / "genesis.json").write_text(json.dumps(doc))
    config = {"app": {"base_path": str(base)}, "genesis": str(base / "genesis.json")}
    path = base / "node.json"
    path.write_text(json.dumps(config))
    return path


# --- damage, by hand, as an operator's disk or fingers might do it ----------------------------


def _one(chain_dir: Path, pattern: str) -> Path:
    """The largest file matching `pattern` (the one holding most of the data)."""
    files = sorted(chain_dir.glob(pattern), key=lambda p: p.stat().st_size)
    assert files, f"no {pattern} in {chain_dir}: {sorted(p.name for p in chain_dir.iterdir())}"
    return files[-1]


def _flip(path: Path, offset: int, n: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def delete_current(chain_dir: Path) -> None:
    (chain_dir / "CURRENT").unlink()


def flip_table_bytes(chain_dir: Path, n: int = 64) -> None:
    """`n` bytes inverted a third of the way into the largest table file (its data blocks
    come first; the index and footer are at the end)."""
    table = _one(chain_dir, "*.ldb")
    _flip(table, table.stat().st_size // 3, n)


def damage_manifest(chain_dir: Path) -> None:
    manifest = _one(chain_dir, "MANIFEST-*")
    _flip(manifest, min(10, manifest.stat().st_size - 8), 8)


def truncate_log(chain_dir: Path, keep: float = 0.5) -> None:
    """Cut LevelDB's write-ahead log (the newest commits, journal entries among them) to
    `keep` of its length, as a crash of the disk under it might."""
    log = _one(chain_dir, "*.log")
    size = log.stat().st_size
    assert size > 0, "the log holds nothing to truncate"
    with open(log, "r+b") as f:
        f.truncate(int(size * keep))


def flip_log_bytes(chain_dir: Path, n: int = 16) -> None:
    """`n` bytes inverted in the middle of the log: a checksum mismatch (the issue's disk
    full case) that LevelDB without paranoid checks would silently drop records for."""
    log = _one(chain_dir, "*.log")
    _flip(log, log.stat().st_size // 2, n)


def edit(chain_dir: Path, puts: dict[bytes, bytes] | None = None,
         deletes: tuple[bytes, ...] = ()) -> None:
    """Change records behind the node's back (one commit), as a bug or a bad tool might."""
    store = Store(chain_dir, inspect=True)
    try:
        batch = Batch()
        for key in deletes:
            batch.delete(key)
        for key, value in (puts or {}).items():
            batch.put(key, value)
        store.commit(batch)
    finally:
        store.close()


def records(chain_dir: Path) -> dict[bytes, bytes]:
    """Every key and value of the database."""
    store = Store(chain_dir, inspect=True)
    try:
        return dict(store.scan(b""))
    finally:
        store.close()


# --- writes that fail, as a full disk makes them fail ---------------------------------------

ENOSPC = plyvel.IOError(b"IO error: chain/000003.log: No space left on device")
EIO = OSError(errno.EIO, "Input/output error")


class _FailingBatch:
    def __init__(self, real: Any, owner: FailingWrites) -> None:
        self.real, self.owner = real, owner

    def __enter__(self) -> Any:
        self.real.__enter__()
        return self.real  # puts and deletes go to the real (transactional) batch

    def __exit__(self, *exc: Any) -> Any:
        self.owner.attempts += 1
        error = self.owner.planned.pop(0) if exc[0] is None and self.owner.planned else None
        if error is not None:
            error = type(error)(*error.args)  # a fresh one each time: no traceback kept
            self.real.__exit__(type(error), error, None)  # a transaction: nothing written
            raise error
        return self.real.__exit__(*exc)


class FailingWrites:
    """A store's LevelDB handle (`store.db = FailingWrites(store.db)`) whose next commits
    raise what `fail` planned, as LevelDB raises a full disk's error, writing nothing;
    reads and the other commits are real. `attempts` counts the commits that reached it."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.planned: list[Exception | None] = []  # the next commits' fates (None: written)
        self.attempts = 0

    def fail(self, error: Exception = ENOSPC, *, after: int = 0) -> FailingWrites:
        """The commit after the next `after` ones fails with `error` (then they go
        through again)."""
        self.planned.extend([None] * after + [error])
        return self

    def write_batch(self, **kwargs: Any) -> _FailingBatch:
        return _FailingBatch(self._db.write_batch(**kwargs), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class CorruptReads:
    """A store's LevelDB handle whose reads fail as LevelDB fails them on a damaged table
    (`plyvel.CorruptionError`); writes are real."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise plyvel.CorruptionError(b"Corruption: block checksum mismatch: chain/000005.ldb")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def free_space_as_n(message: str) -> str:
    """A storage message with its free-space figure replaced by N: other writers on the
    test's disk change the figure between two reads."""
    return re.sub(r"[0-9.]+ MB free", "N MB free", message)
