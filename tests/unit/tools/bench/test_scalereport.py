"""The scale run's report and flags (tools/bench/scalereport.py, `ccoin bench --scale`): the
table has a column per size with the figures, the goals are judged against the new chain
of the same run (the mean of its medians before and after the sizes), the plot is a PNG, and
bad sizes are refused before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench import E2E_TXS, SCALE_E2E_TXS, e2e_size, main
from tools.bench.scale import Point, ScaleRun
from tools.bench.scalereport import plot, report


def point(accounts: int, tps: float, rss_kib: int, cold: float) -> Point:
    p = Point(accounts, 2 * accounts, accounts // 2000, 1.0, cold_health=cold / 2,
              cold_ready=cold, tps=tps, tps_runs=[tps * 1.25, tps, tps / 2],
              loaded_tps=tps / 2, confirm_p50=0.5, confirm_p99=0.9,
              cpu_us={"state": 60.0, "api": 90.0, "p2p": 10.0, "miner": 5.0},
              peak_kib={"state": rss_kib // 2, "api": rss_kib // 2},
              rss_split={"state": (rss_kib // 4, rss_kib // 4), "api": (rss_kib // 4, 0)},
              account_ms=[1.0, 2.0, 30.0], history_ms=[2.0, 4.0, 50.0],
              disk_bytes=400 * (2 * accounts + 20_000), chain_transfers=2 * accounts + 20_000)
    return p


def scale_run(top_tps: float, top_rss_kib: int, top_cold: float) -> ScaleRun:
    return ScaleRun([point(0, 4000.0, 250 * 1024, 2.0), point(10_000, 3900.0, 260 * 1024, 2.5),
                     point(1_000_000, top_tps, top_rss_kib, top_cold),
                     point(0, 3600.0, 250 * 1024, 2.0)],
                    e2e_txs=20_000, started=0.0, seconds=600.0, sync=False)


def test_report_has_a_column_per_size_and_judges_the_goals() -> None:
    text = report(scale_run(3600.0, 300 * 1024, 4.0), "note")
    assert ("| figure | new chain, first | 10k accounts | 1M accounts | new chain, last |"
            in text)
    # against the mean of the new chain's two runs, 3,800/s
    assert ("| end to end / new chain's rate (mean of its two medians) | 1.05 | 1.03 | 0.95 "
            "| 0.95 |" in text)
    assert ("| the runs, in order | 5,000, 4,000, 2,000 | 4,875, 3,900, 1,950 | 4,500, 3,600, "
            "1,800 | 4,500, 3,600, 1,800 |" in text)
    assert "| disk bytes per transfer | 400 | 400 | 400 | 400 |" in text
    assert ("| CPU per e2e transfer, median run: state / api / p2p+miner (µs) | 60 / 90 / 15 |"
            in text)
    goals = text.split("## Against the goals")[1]
    assert goals.count("| met |") == 4


def test_report_says_which_goals_are_missed() -> None:
    goals = report(scale_run(2000.0, 500 * 1024, 12.0), "note").split("## Against the goals")[1]
    # RSS counts LevelDB's mapped table pages; the anonymous half is under the goal
    assert "0.53 ×" in goals and goals.count("**missed**") == 3
    assert "| the same, anonymous memory only (after the run) | 250 MiB | met |" in goals


def test_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the `bench` extra")
    target = tmp_path / "scale.png"
    plot(scale_run(3600.0, 300 * 1024, 4.0), target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("sizes", ["abc", "10000,", "2", ""])
def test_bad_sizes_are_refused(sizes: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--scale", "--scale-sizes", sizes])
    assert exit_.value.code == 2
    assert "--scale-sizes" in capsys.readouterr().err


def test_the_scale_run_keeps_its_own_end_to_end_size() -> None:
    # three runs per size: the bench's longer single run would triple the scale run's time
    assert e2e_size(None, scale=True) == SCALE_E2E_TXS < e2e_size(None, scale=False) == E2E_TXS
    assert e2e_size(500, scale=True) == e2e_size(500, scale=False) == 500
