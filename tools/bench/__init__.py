"""`ccoin bench`: end-to-end throughput of a real node, against the machine's own Ed25519
verification rate measured in the same run (DESIGN §8).

It creates a throwaway single-validator devnet with M funded accounts, starts the node the
way a user does (`ccoin node start` under supervisord), pre-signs N transfers among the
accounts, submits them through the REST batch route, follows new blocks to time each
transaction's confirmation, then times single submissions (one transaction per request,
`singles`), then (optionally) a fresh node syncing the chain, another doing so with
`--assume-valid` its head, and block propagation on four nodes, then the api's memory
under many large requests at once (`bodies`), stops the nodes and replays the chain from
genesis to check that the state root agrees.
Results go to stdout and, with --out, to a Markdown file.

`workload` signs the transfers, `runs` drives the nodes through `client.Client`, `measure`
reads the machine and the processes, `report` writes the Markdown.

`--scale` runs instead the scale run (`make bench-scale`, docs/scale.md): chains of up to a
million accounts built in-process (`scalechain`), a node measured on each (`scale`), the
table and plot (`scalereport`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

E2E_TXS = 60_000
E2E_ROUNDS = 3
SCALE_E2E_TXS = 20_000  # each of a size's three runs


def e2e_size(txs: int | None, *, scale: bool) -> int:
    """The end-to-end stage's transfers: `--txs`, else the bench's or the scale run's own."""
    if txs is not None:
        return txs
    return SCALE_E2E_TXS if scale else E2E_TXS


def main(argv: list[str] | None = None) -> None:
    from tools.bench.report import report
    from tools.bench.runs import run

    parser = argparse.ArgumentParser(prog="ccoin bench")
    parser.add_argument("--txs", type=int,
                        help=f"transfers of the end-to-end stage (default {E2E_TXS:,}: about "
                             "three seconds, so that its start and its last block weigh "
                             f"little in the rate; with --scale, {SCALE_E2E_TXS:,} per run)")
    parser.add_argument("--rounds", type=int, default=E2E_ROUNDS,
                        help="run the end-to-end stage this many times, each beside its own "
                             "verify ceiling, and report the median round (default "
                             f"{E2E_ROUNDS})")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--sync-txs", type=int, default=50_000,
                        help="grow the chain to this many transfers, then time a fresh node "
                             "syncing it, and another with --assume-valid (0: skip)")
    parser.add_argument("--propagation-blocks", type=int, default=15,
                        help="measure propagation on 4 nodes over this many blocks (0: skip)")
    parser.add_argument("--singles", type=int, default=2_000,
                        help="time this many single submissions, node-signed and "
                             "client-signed, and as many from 32 concurrent clients (0: skip)")
    parser.add_argument("--big-bodies", type=int, default=24, metavar="N",
                        help="the api's memory under N large batch requests at once (0: skip)")
    parser.add_argument("--scale", action="store_true",
                        help="instead: build chains of --scale-sizes accounts in-process and "
                             "measure a node on each (tools/bench/scale.py; minutes)")
    parser.add_argument("--scale-sizes", default="10000,100000,1000000", metavar="N,N,...",
                        help="with --scale: the chain sizes, in accounts")
    parser.add_argument("--scale-sync", action="store_true",
                        help="with --scale: also time a fresh node syncing each chain")
    parser.add_argument("--plot", help="with --scale: write the PNG plot here "
                                       "(default: scale.png beside --out)")
    parser.add_argument("--out", help="write the Markdown report here")
    parser.add_argument("--keep", action="store_true", help="keep the bench data dir")
    args = parser.parse_args(argv)
    args.txs = e2e_size(args.txs, scale=args.scale)
    if args.txs < 1 or args.accounts < 2 or args.singles < 0 or args.big_bodies < 0 \
            or args.rounds < 1:
        parser.error("--txs and --rounds must be >= 1, --accounts >= 2, --singles and "
                     "--big-bodies >= 0")
    if args.scale:
        from tools.bench.scalereport import run_and_report

        try:
            sizes = [int(n) for n in args.scale_sizes.split(",")]
        except ValueError:
            parser.error("--scale-sizes must be accounts separated by commas, e.g. 10000,100000")
        if not sizes or min(sizes) < 3:
            parser.error("--scale-sizes: every size must be >= 3 accounts")
        run_and_report(sizes, args.txs, sync=args.scale_sync, out=args.out, plot_path=args.plot)
        return
    workdir = Path(tempfile.mkdtemp(prefix="ccoin-bench-"))
    try:
        result = run(args.txs, args.accounts, args.sync_txs, args.propagation_blocks,
                     workdir / "net", singles_n=args.singles, big_bodies=args.big_bodies,
                     rounds=args.rounds)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(result)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if not result.replay_ok:
        sys.exit(1)
