"""The `ccoin` entry point (tools/cli/__init__.py): usage errors exit 2 in one line, and
`ccoin bench ARGS` hands ARGS to the benchmark's own parser."""

from __future__ import annotations

import pytest

from tests.conftest import Run, one_line_error


@pytest.mark.parametrize("argv", [[], ["account"], ["send", "--to", "x"], ["frobnicate"],
                                  ["balance", "--amount", "x"],
                                  ["sync", "--wait", "--timeout", "-5"],
                                  ["send", "--to", "11" * 20, "--timeout", "nan"]])
def test_usage_errors_exit_2_in_one_line(run: Run, argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2
    one_line_error(code, err)


def test_bench_arguments_reach_the_benchmark(run: Run) -> None:
    code, out, _ = run("bench", "--help")
    assert code == 0 and out.startswith("usage: ccoin bench") and "--txs" in out
    code, _, err = run("bench", "--txs", "many")
    assert code == 2 and "argument --txs" in err
