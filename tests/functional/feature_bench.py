"""`ccoin bench` end to end at a small size: every stage runs on real nodes and the report
says what it measured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_bench_runs_every_stage_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-c", "from tools.cli import main; main()", "bench", "--txs", "400",
         "--rounds", "2", "--accounts", "40", "--sync-txs", "800", "--propagation-blocks", "2",
         "--singles", "64", "--big-bodies", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = out.read_text()
    assert "| every transfer confirmed, state root = replay from genesis | yes |" in report
    assert "400 pre-signed Ed25519 transfers among 40 accounts" in report
    for heading in ("## Single node, end to end", "## Against the machine's own verification",
                    "## Single submissions, one transaction per request",
                    "## Many large requests at once", "## Network",
                    "### Assume-valid sync"):
        assert heading in report
    # two end-to-end rounds of 400, each read beside its own ceiling; the figures the median's
    rounds = re.search(r"\| each of the 2 rounds: ratio \(confirmed / s\) \| ([\d.]+), ([\d.]+) ",
                       report)
    assert rounds is not None and all(float(x) > 0 for x in rounds.groups()), report
    # every transaction the chain holds is counted: 800 in two rounds, 64 + 64 single sends, 64
    # from the concurrent clients and 64 in their batch, 1 funding the node (the large
    # requests come after the sync)
    assert "after the chain holds 1,057 transfers" in report
    assert "| seal → head on all 4 nodes |" in report
    assert "| requests / s | **" in report and "- Every transfer of this stage confirmed: yes." \
        in report
    steps = report.split("| steps, medians (ms): HTTP / sign or parse / state / app | ")[1]
    assert all(float(ms) > 0 for ms in steps.split(" | ")[0].split(" / "))  # from Server-Timing
    assert f"| transfers accepted | {3 * 1550:,} of {3 * 1550:,} |" in report
    # every service found under `ccoin node start` (its supervisord is a child of its own)
    assert re.search(r"\| node peak RSS \(sum of VmHWM\) \| \d+ MiB \(api \d+, miner \d+, "
                     r"p2p \d+, state \d+ MiB\) \|", report), report
    # the end-to-end stage's CPU by process and per transfer
    assert re.search(r"\| api \| [\d.]+ s \| \d+ µs \|", report), report
    assert re.search(r"kept the cores \d+% busy over the run", report), report
    # the assume-valid node synced the same chain, and its p2p skipped the signatures of
    # every transfer below the head (all of them)
    assert "its p2p log: 1,057\nsignatures skipped, of 1,057 transfers" in report, report
    assert "Timed by the p2p logs" in report  # both fresh nodes' logs said when they synced
    # the sync's ratio is read beside a ceiling measured just before it, not the run's first
    ceiling = re.search(r"nothing else \(just before this stage\) \| ([\d,]+)/s \|", report)
    assert ceiling is not None and int(ceiling.group(1).replace(",", "")) > 0, report
    # where a transfer's microseconds go: every step of the in-process profile measured
    profile = report.split("| step | per transfer |\n|---|---|\n")[1].split("\n\n")[0]
    names = [row.split(" | ")[0].strip("| ") for row in profile.splitlines()]
    assert names[:3] == ["api: read the body (msgpack)", "api: read for the signature check",
                         "api: signature check"]
    assert re.search(r"\| all steps \| \*\*[\d.]+ µs\*\* \|", profile), profile
    # the single submissions' CPU by process, and the null server's ceiling beside them
    assert re.search(r"\| CPU per request \(µs\): api / state / the client \| \d+ / \d+ / \d+ ",
                     report), report
    assert re.search(r"does nothing \(`tools/bench/nullapp.py`.*\n.*reach [\d,]+ requests/s",
                     report), report
    assert "**NO**" not in report
