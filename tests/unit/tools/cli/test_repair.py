"""`ccoin node check` and `ccoin node reindex` (tools/cli/repair.py), in process on a real
chain database damaged by hand: check is clean (exit 0) or lists the first problems and the
remedy (exit 1), text or `--json`; reindex repairs what the blocks allow and says what it
kept (exit 0), after which check is clean; both refuse in one line while a node holds the
database; progress goes to stderr, as one updating line on a terminal."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from services.state import schema
from services.state.store import Store
from tests.conftest import Run, one_line_error
from tests.framework import stored_chain as sc
from tools.cli.repair import Terminal


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, sc.StoredChain]:
    config = sc.write_node_files(tmp_path / "node")
    return config, sc.build(tmp_path / "node" / "chain")


def test_check_a_clean_chain(run: Run, node: tuple[Path, sc.StoredChain]) -> None:
    config, stored = node
    code, out, err = run("node", "check", "--config", str(config))
    assert code == 0, err
    assert f"clean: head {stored.head.height} {stored.head.hash.hex()[:16]}" in out
    assert f"blocks: {len(stored.blocks)}/{len(stored.blocks)}" in err  # progress, stderr
    code, out, _ = run("node", "check", "--data", str(config.parent), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["height"] == stored.head.height


def test_check_lists_the_damage_and_the_remedy(run: Run,
                                               node: tuple[Path, sc.StoredChain]) -> None:
    config, stored = node
    sc.edit(stored.chain_dir, deletes=(schema.tx_key(stored.blocks[3].txs[0].id),))
    code, out, _ = run("node", "check", "--config", str(config))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith(f"2 problem(s) (main chain checked up to height "
                             f"{stored.head.height}):")
    assert "the transaction index is missing or wrong" in lines[1]
    n = sum(len(b.txs) for b in stored.blocks)
    assert lines[2] == f"  - transaction index: {n - 1} records, the main chain gives {n}"
    assert lines[-1].startswith(f"remedy: `ccoin node reindex --config {config}`")
    code, out, _ = run("node", "check", "--config", str(config), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and report["problem_count"] == 2


def test_reindex_repairs_what_the_blocks_allow(run: Run,
                                               node: tuple[Path, sc.StoredChain]) -> None:
    config, stored = node
    sc.delete_current(stored.chain_dir)
    code, out, _ = run("node", "check", "--config", str(config))
    assert code == 1 and "CURRENT file is missing" in out
    code, out, err = run("node", "reindex", "--config", str(config))
    assert code == 0, err
    assert "rebuilt from its blocks in" in out and f"head {stored.head.height} " in out
    assert "files LevelDB's repair set aside" in out
    assert "replaying blocks" in err
    code, out, _ = run("node", "check", "--config", str(config))
    assert code == 0 and "clean" in out


def test_reindex_says_where_the_chain_now_ends(run: Run,
                                               node: tuple[Path, sc.StoredChain]) -> None:
    """...and keeps the old database when the new chain lacks something of it; a second
    reindex will not overwrite that one."""
    config, stored = node
    sc.edit(stored.chain_dir, deletes=(schema.block_key(stored.blocks[5].hash),))
    code, out, _ = run("node", "reindex", "--config", str(config))
    assert code == 0
    assert "head 4 " in out and f"(was {stored.head.height})" in out
    assert "the node fetches the chain above 4 from its peers" in out
    old = f"{stored.chain_dir}.before-reindex"
    assert f"the old database is kept in {old}: delete it once" in out
    code, _, err = run("node", "reindex", "--config", str(config), "--json")
    one_line_error(code, err, f"{old} holds the database an earlier reindex set aside")
    shutil.rmtree(old)
    code, out, _ = run("node", "reindex", "--config", str(config), "--json")
    report = json.loads(out)
    assert code == 0 and (report["height"], report["old_height"]) == (4, 4)
    assert report["kept_old"] == ""


@pytest.mark.parametrize("command", ["check", "reindex"])
def test_refused_in_one_line_while_a_node_holds_the_database(
        run: Run, node: tuple[Path, sc.StoredChain], command: str) -> None:
    config, stored = node
    store = Store(stored.chain_dir)
    try:
        code, _, err = run("node", command, "--config", str(config))
    finally:
        store.close()
    one_line_error(code, err, "in use: its LevelDB lock is held", "stop the node first")


def test_no_chain_database_is_one_line(run: Run, tmp_path: Path) -> None:
    config = sc.write_node_files(tmp_path / "node")
    code, _, err = run("node", "check", "--config", str(config))
    one_line_error(code, err, "there is no chain database in")
    assert not (tmp_path / "node" / "chain").exists()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_updating_line() -> None:
    tty = Tty()
    terminal = Terminal(tty)
    terminal("blocks", 0, 10)
    terminal("blocks", 5, 10)
    terminal("blocks", 10, 10)
    terminal("records", 0, None)
    terminal("records", 7, None)
    terminal.close()
    text = tty.getvalue()
    assert text.count("\n") == 2  # the end of each phase
    assert "\r\x1b[Kblocks: 5/10 (" in text and "\r\x1b[Kblocks: 10/10 (" in text
    assert "\r\x1b[Krecords: 7 (" in text and text.endswith("\n")


def test_progress_in_a_log_is_a_line_now_and_then() -> None:
    log = io.StringIO()
    terminal = Terminal(log)
    for done in range(0, 101):
        terminal("blocks", done, 100)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("blocks: 1/100") and lines[-1].startswith("blocks: 100/100")
    assert len(lines) == 2  # a line every few seconds, and the end
