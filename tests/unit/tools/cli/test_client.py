"""The REST client commands of `ccoin` (tools/cli/client.py), in process, for everything
that fails before a node answers: a wrong password, a key that is not there, bad arguments,
an unreachable node; each is one line of error. (Against a real node: functional/
interface_cli.py and interface_cli_wallet.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.crypto import PrivateKey
from runtime.keystore import Keystore
from tests.conftest import Run, one_line_error


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw.txt"
    p.write_text("correct horse\n")
    return p


@pytest.fixture
def keystore(tmp_path: Path) -> tuple[Path, bytes]:
    key = PrivateKey.generate()
    Keystore(tmp_path / "data" / "keystore").save(key, "correct horse", 2**10)
    return tmp_path / "data", key.address



def test_send_wrong_password(run: Run, keystore: tuple[Path, bytes], tmp_path: Path) -> None:
    data, address = keystore
    bad = tmp_path / "bad.txt"
    bad.write_text("wrong\n")
    code, out, err = run("send", "--data", str(data), "--from", address.hex(), "--to",
                         "11" * 20, "--amount", "5", "--password-file", str(bad),
                         "--api", "http://127.0.0.1:9")
    one_line_error(code, err, "wrong password")
    assert out == ""


def test_send_unknown_address(run: Run, keystore: tuple[Path, bytes], pwfile: Path) -> None:
    data, _ = keystore
    code, _, err = run("send", "--data", str(data), "--from", "22" * 20, "--to", "11" * 20,
                       "--amount", "5", "--password-file", str(pwfile))
    one_line_error(code, err, "no key for " + "22" * 20)


@pytest.mark.parametrize("argv, needle", [
    (["balance", "xyz"], "not a 40-hex-character address"),
    (["send", "--to", "12", "--amount", "1", "--from", "11" * 20], "--to"),
    (["send", "--to", "11" * 20, "--amount", "0", "--from", "11" * 20], "at least 1"),
    (["send", "--to", "11" * 20, "--amount", "1", "--payload", "zz", "--from", "11" * 20],
     "not hex"),
    (["tx", "abcd"], "64-hex-character"),
    (["block", "nothex"], "neither a height nor"),
])
def test_bad_arguments_are_one_line(run: Run, tmp_path: Path, argv: list[str],
                                    needle: str) -> None:
    code, _, err = run(*argv, "--data", str(tmp_path))
    one_line_error(code, err, needle)


def test_unreachable_node_is_one_line(run: Run) -> None:
    code, _, err = run("status", "--api", "http://127.0.0.1:9")
    one_line_error(code, err, "cannot reach node at http://127.0.0.1:9")
    code, _, err = run("balance", "11" * 20, "--api", "http://127.0.0.1:9")
    one_line_error(code, err, "cannot reach node")
