"""Storage health: whether the state service may write now, why not, and when it may again
(DESIGN §11).

Three things stop writes, each said in one line (`StorageGuard.problem`) that the status
carries to readiness (`GET /api/v1/ready`, `ccoin node status`, the dashboard's badge),
to `GET /api/v1/status` and to the metrics; every write request is refused with it as
503 `storage_unavailable`, never 500:

- **Damage** (`Store.damage`): a read LevelDB called corrupt, or one that failed, or a
  write it refused as corrupt. State does not exit: supervisord would restart it, the
  open-time checks do not read every table, so it would start, meet the same damage and
  fail again, for ever. It stays up, writes nothing more, serves what it can still read
  (a damaged record is 503, the rest is served) and says what to run until the node is
  stopped, checked and reindexed.
- **A failed write** (`Store.write_failure`): that handle is never written again
  (services/state/store.py says why). Reads go on from it. Once the disk has room
  (`chain.min_free_mb`, and at least `REOPEN_FREE_BYTES`) and a probe file can be
  written and synced beside the database, `recover` reopens the database in place:
  LevelDB drops the torn record a failed write may have left at the end of its log, as
  after a crash, and the chain loads the head and the pool the disk holds. Reopening
  backs off (1 s, doubling up to a minute) while writes keep failing after it (a
  failing disk rather than a full one).
- **Low disk space**: less than `chain.min_free_mb` free on the database's filesystem
  (`os.statvfs`), looked at before every write request and every second. Transactions and
  blocks, the miner's and the peers' alike, are refused before the disk is full, so
  LevelDB keeps room for its log and compactions (a node that cannot store cannot follow
  either); writing resumes by itself when space returns.

Each problem is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from common.errors import DiskSpaceLow, StoreCorrupt, StoreWriteFailed
from services.state.chain import Chain
from services.state.mempool import Mempool
from services.state.store import Store

log = logging.getLogger("ccoin.state.storage")

MB = 1024 * 1024
# Reopening writes LevelDB's log out as a table (up to its 4 MB write buffer) and a new
# MANIFEST: with less room than this the open itself would fail.
REOPEN_FREE_BYTES = 8 * MB
PROBE_NAME = "ccoin-write-probe.tmp"  # LevelDB ignores files whose names are not its own
PROBE_BYTES = 64 * 1024
CHECK_INTERVAL_S = 1.0
REOPEN_BACKOFF_MAX_S = 60.0
REOPEN_BACKOFF_RESET_S = 600.0  # a reopen this long after the last one starts over at 1 s

NONE, DAMAGE, WRITE, LOW = "", "damage", "write", "low"


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


def reopen(chain: Chain) -> Chain:
    """`chain` on a fresh handle of the same database, loaded as at a start (head checked,
    journal replayed); the explained statuses carry over. The old handle is closed first:
    LevelDB's lock allows one."""
    pool = chain.mempool
    path = chain.store.path
    chain.store.close()
    store = Store(path)
    try:
        fresh = Chain(store, chain.genesis, chain.max_reorg,
                      Mempool(pool.chain_id, pool.max_count, pool.max_future))
    except BaseException:
        store.close()
        raise
    fresh.fates = chain.fates
    return fresh


class StorageGuard:
    """The storage problems of the module docstring, for one chain database."""

    def __init__(self, directory: Path, min_free_bytes: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = Path(directory)
        self.min_free = min_free_bytes
        self.clock = clock
        self.kind = NONE  # the problem last logged
        self._next_reopen = 0.0
        self._last_reopen = float("-inf")
        self._reopens = 0

    def free_bytes(self) -> int | None:
        """Bytes an unprivileged writer may still use on the database's filesystem."""
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return None  # cannot tell: the low-space rule does not apply
        return st.f_bavail * st.f_frsize

    def _low(self, free: int | None) -> str:
        if not self.min_free or free is None or free >= self.min_free:
            return ""
        return (f"disk space low: {_mb(free)} free for the chain database {self.directory}, "
                f"below chain.min_free_mb ({_mb(self.min_free)}): transactions and blocks "
                "are refused until space is freed")

    def problem(self, store: Store, free: int | None = None) -> str:
        """"" while state may write; else why not, in one line. A change is logged."""
        if store.damage:
            kind, text = DAMAGE, store.damage
        elif store.write_failure:
            kind, text = WRITE, (f"{store.write_failure}; writes are refused (reads go on) "
                                 "until the disk takes writes again, then the database is "
                                 "reopened")
        else:
            text = self._low(self.free_bytes() if free is None else free)
            kind = LOW if text else NONE
        self._changed(kind, text)
        return text

    def _changed(self, kind: str, text: str) -> None:
        if kind == self.kind:
            return
        was, self.kind = self.kind, kind
        if kind in (DAMAGE, WRITE):
            log.error("%s", text)
        elif kind == LOW:
            log.warning("%s", text)
        elif was == LOW:
            free = self.free_bytes()
            log.info("disk space is back (%s free, chain.min_free_mb %s): transactions and "
                     "blocks are accepted again", _mb(free or 0), _mb(self.min_free))

    def check_writable(self, store: Store) -> None:
        """Raise the problem, if any, as the typed error a write request is refused with."""
        text = self.problem(store)
        if not text:
            return
        if self.kind == DAMAGE:
            raise StoreCorrupt(text)
        if self.kind == WRITE:
            raise StoreWriteFailed(text)
        raise DiskSpaceLow(text)

    # --- after a failed write ----------------------------------------------------------------

    def _probe(self) -> bool:
        """Whether a file can be written and synced beside the database now."""
        path = self.directory / PROBE_NAME
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                written = os.write(fd, bytes(PROBE_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            return written == PROBE_BYTES
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    def recover(self, chain: Chain) -> Chain | None:
        """After a failed write, once the disk takes writes again: the chain on the
        reopened database (the caller serves it from then on); None until then, and
        always for damage. A reopen that fails raises (`StoreError`): the caller exits, and
        supervisord's restart meets the same open, refused with its reason if it fails
        again."""
        store = chain.store
        if store.damage or not store.write_failure:
            return None
        now = self.clock()
        if now < self._next_reopen:
            return None
        free = self.free_bytes()
        if free is None or free < max(self.min_free, REOPEN_FREE_BYTES) or not self._probe():
            return None
        recent = now - self._last_reopen < REOPEN_BACKOFF_RESET_S
        self._reopens = self._reopens + 1 if recent else 1
        self._last_reopen = now
        self._next_reopen = now + min(REOPEN_BACKOFF_MAX_S, 2.0 ** (self._reopens - 1))
        fresh = reopen(chain)
        self.kind = NONE
        log.info("the chain database was reopened and takes writes again (%s free): head %d, "
                 "%d pool transaction(s) from its journal", _mb(free),
                 fresh.head.header.height, len(fresh.mempool))
        return fresh
