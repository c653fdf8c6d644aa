"""The bench report's reading of goal 1 (tools/bench/report.py): from the steps, the
client's CPU and the verify rate of the same run, the most the steps allow, whether 0.5 of
the verify rate is within reach, and whether the run reached it."""

from __future__ import annotations

import os

import pytest

from tools.bench.measure import Result
from tools.bench.report import floor_paragraph, rounds_row


def result(verify_2: float, client_cpu: float) -> Result:
    return Result(n_txs=20_000, n_accounts=1_000, tps=15_000.0, submit_tps=18_000.0, p50=0.4,
                  p99=0.6, blocks=5, peak_kib={}, verify_1=verify_2 / 2, verify_2=verify_2,
                  replay_ok=True, wall=1.3, client_cpu=client_cpu)


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_steps_that_leave_no_room_for_the_goal_are_said_so() -> None:
    # 70 µs of steps + 10 µs of client = 80 µs: 25,000/s at most, 0.48 of 52,000/s
    text = " ".join(floor_paragraph(result(52_000.0, client_cpu=0.2), steps=70.0,
                                    signature=40.0).split())
    assert "at most 25,000 transfers/s" in text and "**0.48**" in text
    # the goal allows 2 s / 26,000 = 77 µs: 77 - 40 - 10 = 27 left, against 30 of steps
    assert "allows 77 µs" in text and "leaves 27 µs" in text and "alone take 30" in text
    assert "No node doing these steps can meet the goal" in text


def test_steps_within_the_goal_say_what_stands_between() -> None:
    short = result(30_000.0, client_cpu=0.2)
    short.tps = 14_000.0  # 0.47 of the verify rate
    text = floor_paragraph(short, steps=70.0, signature=40.0)
    assert "**0.83**" in text and "within reach" in text and "meets" not in text


def test_a_run_that_meets_the_goal_says_so() -> None:
    met = result(30_000.0, client_cpu=0.2)
    met.tps = 15_300.0  # 0.51 of the verify rate
    text = " ".join(floor_paragraph(met, steps=70.0, signature=40.0).split())
    assert "This run meets the goal (0.51)" in text and "within reach" not in text


def test_every_round_is_listed_beside_the_median_one() -> None:
    r = result(50_000.0, client_cpu=0.2)
    assert rounds_row(r) == ""  # one round: nothing to list
    r.rounds = [(24_000.0, 50_000.0), (26_000.0, 52_000.0), (20_000.0, 50_000.0)]
    assert rounds_row(r).startswith(
        "| each of the 3 rounds: ratio (confirmed / s) | 0.48, 0.50, 0.40 (24,000, 26,000, "
        "20,000)")
