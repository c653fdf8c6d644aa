"""`ccoin node check` and `ccoin node reindex`: the chain database, checked against its own
blocks, and rebuilt from them (issue 10; Bitcoin Core's `-reindex`, geth's `db inspect`).

Both run in this process on the node's data dir (`services.state.check`, `.reindex`), with
the node stopped: a running node holds the database's LevelDB lock, and they say so in one
line. Progress goes to stderr (one updating line on a terminal, a line every few seconds
otherwise), the summary to stdout (`--json` for scripts). Exit status: 0 when the database is
clean (check) or rebuilt (reindex), 1 with the first problems listed otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from runtime.config import NodeConfig, load_genesis
from services.state.check import check_chain
from services.state.reindex import reindex_chain
from tools.cli.util import print_json, require_config

LOG_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal
LISTED = 10  # problems printed before "... and N more"


def register(nsub: Any, add_config_args: Any) -> None:
    check = nsub.add_parser(
        "check", help="check the chain database against its blocks (node stopped)",
        description="Walk the main chain from genesis (links, seals, proofs, tx roots, the "
                    "state replayed from the genesis alloc against every header) and compare "
                    "every index and account with it. Exit 0 when clean.")
    add_config_args(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=cmd_check)

    reindex = nsub.add_parser(
        "reindex", help="rebuild the chain database from its blocks (node stopped)",
        description="Rebuild the state and every index from the stored blocks, beside the "
                    "old database, then swap it in. Damaged blocks end the main chain below "
                    "them (the node fetches the rest from its peers).")
    add_config_args(reindex)
    reindex.add_argument("--keep-old", action="store_true",
                         help="keep the old database as <chain>.before-reindex")
    reindex.add_argument("--json", action="store_true", help="print the report as JSON")
    reindex.set_defaults(func=cmd_reindex)


class Terminal:
    """Progress on stderr: `phase: done/total (rate/s)`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started: dict[str, float] = {}
        self.last_line = 0.0
        self.open_line = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        start = self.started.setdefault(phase, now)
        ending = done > 0 and done == total
        if not self.tty and not ending and (done == 0 or now - self.last_line < LOG_EVERY):
            return
        self.last_line = now
        rate = done / (now - start) if now > start else 0.0
        count = f"{done}/{total}" if total is not None else f"{done}"
        line = f"{phase}: {count} ({rate:,.0f}/s)"
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}" + ("\n" if ending else ""))
            self.open_line = not ending
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False


def _target(args: argparse.Namespace) -> tuple[NodeConfig, Any]:
    config = require_config(args)
    return config, load_genesis(config.genesis_file())


def _problems(listed: list[str] | tuple[str, ...], count: int) -> None:
    for text in listed[:LISTED]:
        print(f"  - {text}")
    if count > LISTED:
        print(f"  ... and {count - LISTED} more")


def cmd_check(args: argparse.Namespace) -> int:
    config, genesis = _target(args)
    terminal = Terminal()
    try:
        report = check_chain(config.chain_dir, genesis, terminal)
    finally:
        terminal.close()
    if args.json:
        print_json(report.as_json())
        return 0 if report.ok else 1
    where = report.chain_dir
    if report.ok:
        print(f"{where}: clean: head {report.height} {report.head.hex()[:16]}, "
              f"{report.blocks} blocks, {report.transactions} transactions, "
              f"{report.accounts} accounts checked in {report.seconds:.1f} s")
        return 0
    print(f"{where}: {report.problem_count} problem(s) "
          f"(main chain checked up to height {report.height}):")
    _problems(report.problems, report.problem_count)
    print(f"remedy: `ccoin node reindex {_config_arg(config)}` rebuilds the database from its "
          "blocks (keeping what they allow)")
    return 1


def cmd_reindex(args: argparse.Namespace) -> int:
    config, genesis = _target(args)
    terminal = Terminal()
    try:
        report = reindex_chain(config.chain_dir, genesis, terminal, keep_old=args.keep_old)
    finally:
        terminal.close()
    if args.json:
        print_json(report.as_json())
        return 0
    print(f"{report.chain_dir}: rebuilt from its blocks in {report.seconds:.1f} s: head "
          f"{report.height} {report.head.hex()[:16]}"
          + (f" (was {report.old_height})" if report.old_height != report.height else "")
          + f", {report.side_blocks} side block(s), {report.journal} pending "
          f"transaction(s) kept")
    if report.old_height > report.height or report.dropped:
        print(f"  {report.dropped} stored block(s) not kept (damaged, invalid, or above a "
              "damaged one): the node fetches the chain above "
              f"{report.height} from its peers when it starts")
    if report.journal_dropped:
        print(f"  {report.journal_dropped} unreadable mempool journal entr(ies) dropped")
    if report.salvaged:
        print(f"  files LevelDB's repair set aside: {', '.join(report.salvaged)}")
    if report.problems.count:
        print("  what was found:")
        _problems(report.problems.listed, report.problems.count)
    if report.kept_old:
        print(f"  the old database is kept in {report.kept_old}: delete it once the node "
              "has caught up")
    return 0


def _config_arg(config: NodeConfig) -> str:
    path = config.config_path
    return f"--config {path}" if path is not None else f"--data {Path(config.base_path)}"
