"""The `ccoin` entry point (tools/cli/__init__.py): usage errors exit 2 in one line, a
command group alone prints its help, and `ccoin bench ARGS` hands ARGS to the
benchmark's own parser."""

from __future__ import annotations

import pytest

from tests.conftest import Run, one_line_error


@pytest.mark.parametrize("argv", [["send", "--to", "x"], ["frobnicate"],
                                  ["balance", "--amount", "x"],
                                  ["sync", "--wait", "--timeout", "-5"],
                                  ["send", "--to", "11" * 20, "--timeout", "nan"]])
def test_usage_errors_exit_2_in_one_line(run: Run, argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2
    one_line_error(code, err)


@pytest.mark.parametrize("argv", [[], ["node"], ["account"], ["genesis"]])
def test_a_command_group_alone_prints_its_help(run: Run, argv: list[str]) -> None:
    """Bare `ccoin` (or `ccoin node`) is a request for help, not a one-line error."""
    code, out, err = run(*argv)
    assert code == 2 and err == ""
    assert out.startswith(f"usage: {' '.join(['ccoin', *argv])} [-h] COMMAND ...")
    assert "positional arguments" in out and "-h, --help" in out


@pytest.mark.parametrize("cmd", ["status", "stop", "restart"])
def test_node_service_commands_list_the_services(run: Run, cmd: str) -> None:
    code, out, _ = run("node", cmd, "--help")
    assert code == 0 and "one of state, api, p2p, miner (default: all)" in " ".join(out.split())
    code, _, err = run("node", cmd, "frob")
    line = one_line_error(code, err, "invalid choice: 'frob'")
    assert "(choose from 'state', 'api', 'p2p', 'miner')" in line and code == 2


def test_bench_arguments_reach_the_benchmark(run: Run) -> None:
    code, out, _ = run("bench", "--help")
    assert code == 0 and out.startswith("usage: ccoin bench") and "--txs" in out
    code, _, err = run("bench", "--txs", "many")
    assert code == 2 and "argument --txs" in err
