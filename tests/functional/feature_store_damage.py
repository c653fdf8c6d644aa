"""feature_store_damage: the state service as a process, on a chain database damaged by
hand (issue 10, item 3): it refuses to start, exits non-zero and says in one log line what
is wrong and what to run, and never seals a new chain over the old data; after `ccoin node
reindex` it starts on the very head it had. Damaged while it runs (item 4), it stays up,
serves what it can still read (the damaged blocks are 503, never 500), refuses writes
naming the damage and the remedy, and says so in one log line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import messages as m
from common.errors import CcoinError
from runtime.bus import SyncBusClient
from services.state.reindex import reindex_chain
from services.state.store import REMEDY
from tests.framework import rules
from tests.framework import stored_chain as sc
from tests.framework.process import ServiceProcess


def exit_line(state: ServiceProcess) -> tuple[int, str]:
    """The exit status of a state service that refused to start, and its one error line."""
    assert state.proc is not None
    code = state.proc.wait(30)
    lines = [json.loads(line) for line in state.log_path.read_text().splitlines()]
    errors = [line["msg"] for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and "Traceback" not in state.log_path.read_text(), lines
    assert [line["msg"] for line in lines if "state ready" in line["msg"]] == []
    return code, errors[0]


@pytest.mark.parametrize("damage", ["delete_current", "damage_manifest"])
def test_a_damaged_database_is_refused_then_reindexed(short_tmp: Path, damage: str) -> None:
    config = sc.write_node_files(short_tmp / "n")
    stored = sc.build(short_tmp / "n" / "chain")
    getattr(sc, damage)(stored.chain_dir)
    state = ServiceProcess("state", config).start()
    code, line = exit_line(state)
    assert code == 1
    assert line.startswith(f"fatal: the chain database {stored.chain_dir} is damaged: ")
    assert "run `ccoin node check`" in line and "`ccoin node reindex`" in line
    assert list(stored.chain_dir.glob("*.ldb"))  # the old tables are still there

    reindex_chain(stored.chain_dir, stored.genesis)
    state = ServiceProcess("state", config).start()
    try:
        state.wait_ready()
        client = SyncBusClient(state.config.endpoint("state"))
        try:
            status = client.request(m.GetStatus(), m.StatusReply)
        finally:
            client.close()
        assert (status.height, status.head) == (stored.head.height, stored.head.hash)
        assert status.mempool_count == len(stored.pending)  # the journal came through too
    finally:
        assert state.stop() == 0, state.tail()


def test_damage_found_at_run_time_stops_writes_not_the_service(short_tmp: Path) -> None:
    config = sc.write_node_files(short_tmp / "n")
    stored = sc.build(short_tmp / "n" / "chain")
    state = ServiceProcess("state", config).start()
    client = SyncBusClient(state.config.endpoint("state"), retries=0)
    try:
        state.wait_ready()
        sc.flip_table_bytes(stored.chain_dir)
        codes = []
        for height in range(stored.head.height + 1):
            try:
                client.request(m.GetBlock(height, b""), m.BlockReply)
                codes.append("")
            except CcoinError as exc:
                codes.append(exc.code)
        assert set(codes) == {"", "storage_unavailable"}, codes  # never internal
        status = client.request(m.GetStatus(), m.StatusReply)
        assert "is damaged" in status.storage and REMEDY in status.storage
        tx = rules.transfer(1, rules.address(9), 1, nonce=len(stored.blocks))
        with pytest.raises(CcoinError) as refused:
            client.request(m.SubmitTxs((tx.raw,)), m.SubmitResult)
        assert refused.value.code == "storage_unavailable"
        assert refused.value.message == status.storage
        pong = client.request(m.ServicePing(), m.ServicePong)  # what /health says: 503
        assert pong.fatal and pong.problem == status.storage
        assert state.alive()
    finally:
        client.close()
        assert state.stop() == 0, state.tail()
    lines = [json.loads(line) for line in state.log_path.read_text().splitlines()]
    errors = [line["msg"] for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and "is damaged" in errors[0] and REMEDY in errors[0], errors
