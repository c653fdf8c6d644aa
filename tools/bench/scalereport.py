"""The scale run's report: the Markdown `make bench-scale` writes to docs/scale.md (a table
of how each figure grows with the chain, the issue's goals checked, the machine and how long
the run took) and the plot of throughput and RSS against chain size (docs/scale.png).

The plot needs matplotlib, the `bench` extra (`pip install -e '.[bench]'`, which `make
bench-scale` does); without it the report says so and the run still succeeds."""

from __future__ import annotations

import time
from pathlib import Path

from tools.bench.report import machine
from tools.bench.scale import (
    E2E_RUNS,
    QUERY_CLIENTS,
    QUERY_RATE,
    TRANSFERS_PER_ACCOUNT,
    Point,
    ScaleRun,
)
from tools.bench.scalechain import SENDER_SHARE

# what the figures' growth comes from (found while making this run; see the module's history)
FINDINGS = """
## What grows with the chain, and why

- **Peak RSS is mostly state's, and mostly file-backed.** LevelDB reads its table files
  through mmap, so every page a read touches (with the kernel's fault-around, 64 KiB at a
  time) counts in state's RSS until the table is closed: random account and history
  reads over a chain of hundreds of MiB map in more of it. Those pages are the OS page
  cache, shared and dropped under memory pressure, but VmHWM counts them; the anonymous
  memory (what the processes themselves allocate) stays far below (the rows above). State
  keeps at most 128 tables open (`MAX_OPEN_FILES`, services/state/store.py; LevelDB's
  default is 1,000), which bounds the mapped part: at 1M accounts state's peak was 384 MiB
  with 1,000 open tables, ~250 with 128 at the same end-to-end rate, and 139 with 64, but
  with 64 the end-to-end rate fell by a third (tables reopened on reads: 162 µs of state
  CPU a transfer against 110), so 128 it is. Every service but the api also went down by
  ~8-9 MiB when `cryptography` and httpx became imports made only when an RSA key, a key
  file, discovery or a peer URL needs them (the total at 1M: 409 -> 334 MiB over the
  runs that brought these changes). Collecting young objects every 50,000 allocations
  instead of 700 (`runtime/service.py`, for CPU) holds more garbage between rounds: ~10
  MiB more in the api, ~20 in all.
- **End to end slows with the chain, and the difference is state's CPU** (the CPU row).
  The e2e transfers touch only their own 1,000 accounts, so this is the cost of the
  database's size. Found on the way, at 1M accounts:
  - A third of state's CPU was snappy compressing tables again at every compaction (perf),
    for data that hardly compresses (hashes, keys, signatures), so state stores its tables
    uncompressed: 114 -> 86 µs a transfer (0.72 -> 0.83 of the new chain's rate), for ~5%
    more disk. Ruled out at 100k by measurement: LevelDB Bloom filters (102 vs 106 µs) and
    compaction left pending by the build (103 vs 114 µs); a 32 MiB write buffer (LevelDB's
    default is 4) made it slower (135 µs).
  - Three later changes cut state's work per transfer on every chain: a submitted
    transaction is looked up in the transaction index only when its nonce is below its
    sender's (only then can the chain hold it; a miss in a large database reads through
    its levels), the state root's arithmetic moved to GMP, and one msgpack packer is
    reused (86 µs a transfer before them).
  - **One run is not a measurement at 1M accounts.** On one node on a 1M chain, six runs of
    20,000 transfers in a row cost state 44, 33, 22, 50, 40 and 55 µs a transfer (16,219 to
    20,770 transfers/s), against 22-26 on the new chain: a run lasts about a second, and
    one of LevelDB's compactions of the randomly keyed writes (accounts, the transaction
    index, history, the pool's journal) lands in it or not. Each size's rate is therefore
    the median of three runs in a row (all three are in the table). Ruled out again, at
    1M, by measurement: compaction left pending by the build (a full `compact_range` after
    it took 0.1 s: every level was within its bounds) and Bloom filters with a 16 MiB
    write buffer (0.70 of the new chain's rate, against 0.81 without, in one pair).
  - What is left is mostly compaction of randomly keyed writes. The pool's journal was a
    third of the bytes a transfer wrote (~200 of ~570, counted in-process): an entry of
    its own on admission and a tombstone on inclusion, both written to the log and to
    level 0 and read again by the first compaction before the pair cancelled out. It is
    now one entry per admitted batch, deleted when the batch's last transfer leaves the
    pool: the transfers' bytes are still written once, but not a key and a tombstone
    each. Keeping the journal out of the chain database is not done: the head switch
    and the journal share one atomic batch.
- **Sync slows with the chain for the same reason**: the fresh node's state imports into
  an ever bigger database (the sync row), and its peak RSS is again mostly state's mapped
  tables.
- **Query latency under load is the api's queue, not the chain**: the account and history
  reads wait behind 1,000-transfer batch posts on a 2-core machine, and do no worse at 1M
  accounts than at 10k; on the new chain they ask for the 1,000 busy e2e accounts, whose
  histories are the longest, hence its slower history reads and its slower loaded rate.
- **The state's account cache was bounded at 2,000,000 accounts**, about 220 bytes each
  (420 MiB): a node that synced (or served) a million-account chain kept every account it
  touched. It now holds at most 100,000 (22 MiB; `services/state/store.py`).
- **Cold start does not grow with the chain**: state opens the database and checks only the
  head. What a start does hash is the genesis alloc (state rebuilds the genesis block,
  whose state root covers every funded account: about 50 µs an account), so the builder
  funds one faucet in the genesis, not its thousands of senders.
- **Disk per transfer** is the block body (132 bytes a transfer) plus its indexes: the
  transaction's location, a history entry for each party, the undo record of the accounts
  it touched, and the accounts themselves; stored uncompressed, as it hardly compresses
  (hashes, keys, signatures).
"""

RSS_GOAL_MIB = 400
COLD_GOAL_S = 10.0
TPS_GOAL = 0.8  # of the new chain's rate


def _size(n: int) -> str:
    if n == 0:
        return "new chain"
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M accounts"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k accounts"
    return f"{n:,} accounts"


def base_tps(points: list[Point]) -> float:
    """The new chain's rate: the mean of its two medians (before and after the sizes, so a
    change in the shared machine's load during the run weighs on both sides)."""
    new = [p.tps for p in points if not p.accounts]
    return sum(new) / len(new) if new else 0.0


def _rows(points: list[Point]) -> list[tuple[str, list[str]]]:
    base = base_tps(points) or 1.0

    def lat(p: Point, which: str) -> str:
        p50, p99 = p.latency(which)
        return f"{p50:.1f} / {p99:.1f}"

    rows = [
        ("transfers in the chain when the node started", [f"{p.transfers:,}" for p in points]),
        ("blocks built / build time (in-process)",
         [f"{p.blocks} / {p.build_seconds:.0f} s" for p in points]),
        ("cold start: to /health / to ready", [f"{p.cold_health:.1f} s / {p.cold_ready:.1f} s"
                                               for p in points]),
        (f"**end to end, confirmed transfers / s** (median of {E2E_RUNS} runs)",
         [f"**{p.tps:,.0f}**" for p in points]),
        ("the runs, in order", [", ".join(f"{t:,.0f}" for t in p.tps_runs) for p in points]),
        ("end to end / new chain's rate (mean of its two medians)",
         [f"{p.tps / base:.2f}" for p in points]),
        ("end to end under the query load, transfers / s", [f"{p.loaded_tps:,.0f}"
                                                            for p in points]),
        ("CPU per e2e transfer, median run: state / api / p2p+miner (µs)",
         [f"{p.cpu_us.get('state', 0):.0f} / {p.cpu_us.get('api', 0):.0f} / "
          f"{p.cpu_us.get('p2p', 0) + p.cpu_us.get('miner', 0):.0f}" for p in points]),
        ("confirmation latency p50 / p99", [f"{p.confirm_p50 * 1000:.0f} / "
                                            f"{p.confirm_p99 * 1000:.0f} ms" for p in points]),
        ("**node peak RSS, total**", [f"**{p.rss_mib:.0f} MiB**" for p in points]),
        ("RSS by service (MiB)", [", ".join(f"{k} {v / 1024:.0f}"
                                            for k, v in sorted(p.peak_kib.items()))
                                  for p in points]),
        ("RSS after the run: anonymous total; state anonymous + file-backed (MiB)",
         [f"{p.anon_mib:.0f}; {p.rss_split.get('state', (0, 0))[0] / 1024:.0f} + "
          f"{p.rss_split.get('state', (0, 0))[1] / 1024:.0f}" for p in points]),
        ("GET account p50 / p99 under load (ms)", [lat(p, "account") for p in points]),
        ("GET history p50 / p99 under load (ms)", [lat(p, "history") for p in points]),
        ("queries answered (failed)", [f"{len(p.account_ms) + len(p.history_ms):,} "
                                       f"({p.query_errors})" for p in points]),
        ("chain dir on disk (du)", [f"{p.disk_bytes / 2**20:,.0f} MiB" for p in points]),
        ("disk bytes per transfer", [f"{p.disk_bytes / max(p.chain_transfers, 1):,.0f}"
                                     for p in points]),
    ]
    if any(p.sync_seconds or p.sync_error for p in points):
        rows += [
            ("fresh node sync: transfers / s (blocks, time)", [_sync(p) for p in points]),
            ("fresh node: status polls unanswered while syncing",
             [f"{p.sync_misses}" if p.sync_seconds or p.sync_error else "–" for p in points]),
            ("fresh node peak RSS once synced, total (state)",
             [f"{sum(p.sync_peak_kib.values()) / 1024:.0f} MiB "
              f"({p.sync_peak_kib.get('state', 0) / 1024:.0f})" if p.sync_peak_kib else "–"
              for p in points]),
        ]
    return rows


def _sync(p: Point) -> str:
    if p.sync_error:
        return f"failed: {p.sync_error}"
    if not p.sync_seconds:
        return "–"
    return f"{p.sync_txs / p.sync_seconds:,.0f} ({p.sync_blocks}, {p.sync_seconds:.0f} s)"


def _goals(points: list[Point]) -> str:
    base, top = base_tps(points), max(points, key=lambda p: p.accounts)

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    ratio = top.tps / base if base else 0.0
    return f"""| goal (issue 13, at {_size(top.accounts)}) | measured | |
|---|---|---|
| end to end ≥ {TPS_GOAL} × the new chain's rate | {ratio:.2f} × \
({top.tps:,.0f} vs {base:,.0f}/s) | {verdict(ratio >= TPS_GOAL)} |
| node RSS total < {RSS_GOAL_MIB} MB | {top.rss_mib:.0f} MiB | \
{verdict(top.rss_mib * 2**20 < RSS_GOAL_MIB * 10**6)} |
| the same, anonymous memory only (after the run) | {top.anon_mib:.0f} MiB | \
{verdict(top.anon_mib * 2**20 < RSS_GOAL_MIB * 10**6)} |
| cold start to ready < {COLD_GOAL_S:.0f} s | {top.cold_ready:.1f} s | \
{verdict(top.cold_ready < COLD_GOAL_S)} |
"""


def report(run: ScaleRun, plot_note: str) -> str:
    points = run.points
    names = [_size(p.accounts) for p in points]
    if names.count(_size(0)) == 2:
        names[names.index(_size(0))] += ", first"
        names[names.index(_size(0))] += ", last"
    header = "| figure | " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(points)
    body = "\n".join(f"| {name} | " + " | ".join(cells) + " |" for name, cells in _rows(points))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.started))
    sync_note = ("a fresh node synced each chain from the first (every signature verified)"
                 if run.sync else "the sync stage was not run (`--scale-sync` runs it)")
    return f"""# Scale: ccoin on a million-account chain

Measured by `make bench-scale` (`ccoin bench --scale`) on {when}, in {run.seconds / 60:.1f}
minutes (chains built, nodes started, measured, removed).
Machine: {machine()}.

The machine is shared and noisy (its 1-minute load average was {run.load[0]:.1f} at the start
and {run.load[1]:.1f} at the end, on 2 cores): compare within one run. Linked from
[benchmarks.md](benchmarks.md).

## How it was measured

For each size a chain of N accounts and {TRANSFERS_PER_ACCOUNT}·N transfers is built
in-process with the node's own code (`tools/bench/scalechain.py`: transfers signed with
`common.crypto`, packed by the state's template builder, sealed as the miner seals, and
imported by `Chain.import_block`; blocks of 4,000 transfers; one account in {SENDER_SHARE}
sends, the others receive; a faucet in the genesis funds the senders first). A validator
node is then started on that data dir with `ccoin node start` and measured as `make bench`
measures it: {run.e2e_txs:,} pre-signed transfers among 1,000 further accounts through
the batch route, each timed to its confirming block, {E2E_RUNS} times in a row (the median
run is the figure: a run takes about a second, and a LevelDB compaction lands in it or
not); then {run.e2e_txs:,} more while
{QUERY_CLIENTS} clients ask for the account and the history (20 newest) of random accounts
of the chain, each up to {QUERY_RATE / 2:.0f} of each per second (on the new chain: of the
1,000 accounts, whose histories are longer and busier). "New chain" is the same measurement
on a chain holding only those 1,000 accounts: the small-chain rate every size is compared
with, measured first and again last (the mean of the two is the reference, so the shared
machine's changing load weighs on both sides). RSS is the sum of each service's VmHWM
after all that; disk is `du` of the chain directory once the node has stopped, over every
transfer it holds; {sync_note}.

![end-to-end rate and node RSS against chain size](scale.png)

{plot_note}

## Figures by chain size

{header}
{rule}
{body}

## Against the goals

{_goals(points)}
{FINDINGS}"""


def plot(run: ScaleRun, path: Path) -> str:
    """docs/scale.png: end-to-end rate and peak RSS against the number of accounts (the new
    chain as a dashed line); returns a line for the report."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("(No plot: matplotlib is missing; `pip install -e '.[bench]'` installs it, "
                "as `make bench-scale` does.)")
    sized = [p for p in run.points if p.accounts]
    new = [p for p in run.points if not p.accounts]
    base = base_tps(run.points)
    base_rss = max(p.rss_mib for p in new)
    xs = [p.accounts for p in sized]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(xs, [p.tps for p in sized], "o-", label="chain of N accounts")
    left.axhline(base, linestyle="--", color="grey", label="new chain")
    left.axhline(TPS_GOAL * base, linestyle=":", color="red",
                 label=f"goal: {TPS_GOAL} × new chain")
    left.set(xscale="log", xlabel="accounts in the chain", ylabel="confirmed transfers / s",
             title="end to end", ylim=(0, max(base, *(p.tps for p in sized)) * 1.2))
    left.legend(loc="lower left")
    right.plot(xs, [p.rss_mib for p in sized], "o-", label="chain of N accounts")
    right.plot(xs, [p.anon_mib for p in sized], "s--", label="its anonymous memory")
    right.axhline(base_rss, linestyle="--", color="grey", label="new chain")
    right.axhline(RSS_GOAL_MIB * 10**6 / 2**20, linestyle=":", color="red",
                  label=f"goal: < {RSS_GOAL_MIB} MB")
    right.set(xscale="log", xlabel="accounts in the chain", ylabel="MiB",
              title="node peak RSS (sum of VmHWM)",
              ylim=(0, max(RSS_GOAL_MIB * 1.1, *(p.rss_mib for p in sized)) * 1.1))
    right.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"Plot: `{path.name}`, written by the same run."


def run_and_report(sizes: list[int], e2e_txs: int, *, sync: bool, out: str | None,
                   plot_path: str | None) -> None:
    """`ccoin bench --scale`: every size measured, the report printed (and written to
    `out`), the plot written to `plot_path` (default: beside `out`, as scale.png)."""
    import tempfile

    from tools.bench.scale import run

    with tempfile.TemporaryDirectory(prefix="ccoin-scale-") as workdir:
        result = run(sizes, e2e_txs, Path(workdir), sync=sync)
    target = Path(plot_path) if plot_path else (
        Path(out).with_name("scale.png") if out else None)
    note = plot(result, target) if target else "(No plot: neither --out nor --plot given.)"
    text = report(result, note)
    print(text)
    if out:
        Path(out).write_text(text)
