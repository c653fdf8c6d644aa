"""`ccoin devnet` (tools/cli/devnet.py), in process, for what it refuses before starting
anything: no --nodes for a new devnet, a directory that is not a devnet, a resume whose
shape differs, a PoW devnet with validators; each one line of error, exit status 1."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Run, one_line_error
from tools.cli.devnet import banner
from tools.devnet import create_devnet, free_base_port


def test_command_line_errors_are_one_line(short_tmp: Path, run: Run) -> None:
    code, _, err = run("devnet", "--data", str(short_tmp / "new"))
    assert code == 1 and one_line_error(code, err, "--nodes N is required")
    (short_tmp / "junk").mkdir()
    (short_tmp / "junk" / "file").write_text("x")
    code, _, err = run("devnet", "--nodes", "2", "--data", str(short_tmp / "junk"))
    assert code == 1 and one_line_error(code, err, "not a devnet dir")
    create_devnet(short_tmp / "d", nodes=2, base_port=free_base_port(2))
    code, _, err = run("devnet", "--nodes", "3", "--data", str(short_tmp / "d"))
    assert code == 1 and one_line_error(code, err, "--nodes differs")
    code, _, err = run("devnet", "--nodes", "2", "--validators", "1", "--pow", "--data",
                       str(short_tmp / "p"))
    assert code == 1 and one_line_error(code, err, "PoA only")
    code, _, err = run("devnet", "--curve", "--data", str(short_tmp / "d"))
    assert code == 1 and one_line_error(code, err, "--curve differs")


def test_the_banner_says_how_many_validators_may_be_offline(short_tmp: Path) -> None:
    three = create_devnet(short_tmp / "three", nodes=3, base_port=free_base_port(3))
    assert "PoA, 3 validator(s), 1 may be offline" in banner(three, "three", True, None)
    two = create_devnet(short_tmp / "two", nodes=2, base_port=free_base_port(2))
    assert "PoA, 2 validator(s), 0 may be offline" in banner(two, "two", True, None)
