"""The REST client commands of `ccoin` (tools/cli/client.py), in process, for everything
that fails before a node answers: a wrong password, a key that is not there, bad arguments,
an unreachable node; each is one line of error. Which node a command talks to (--api,
--data, $CCOIN_API, $CCOIN_DATA, the default) and how it says so; `ccoin sign` offline.
(Against a real node: functional/interface_cli.py, interface_cli_wallet.py and
interface_readme_quickstart.py.)"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from client import tx_to_json
from common.crypto import PrivateKey, Signer
from common.types import Transaction
from runtime.keystore import Keystore
from tests.conftest import Run, one_line_error
from tools.cli.util import choose_node


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


# --- which node a client command talks to ------------------------------------------------------


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A data dir whose node.json puts the API on port 9 (nothing listens there)."""
    data = tmp_path / "mine"
    data.mkdir()
    (data / "node.json").write_text(json.dumps({"app": {"base_path": str(data)},
                                                "api": {"port": 9}}))
    return data


def test_a_command_names_the_node_it_found_and_how(run: Run, node_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(node_dir.parent)
    code, _, err = run("status", "--data", "mine")
    note, error = err.strip().splitlines()
    assert note == "(node http://127.0.0.1:9 from --data mine)"
    assert error.startswith("error: cannot reach node at http://127.0.0.1:9: ") and code == 1
    assert error.endswith("(the node from --data mine: is it running? Name the node with "
                          "--data DIR or --api URL)")
    code, out, _ = run("node", "url", "--data", "mine")
    assert (code, out) == (0, "http://127.0.0.1:9\n")

    # from the environment: $CCOIN_DATA, under $CCOIN_API, under --data and --api
    monkeypatch.setenv("CCOIN_DATA", "mine")
    _, _, err = run("balance", "11" * 20)
    assert err.startswith("(node http://127.0.0.1:9 from $CCOIN_DATA=mine)\n")
    assert "the node from $CCOIN_DATA=mine: is it running?" in err
    code, out, _ = run("node", "url")
    assert (code, out) == (0, "http://127.0.0.1:9\n")
    monkeypatch.setenv("CCOIN_API", "http://127.0.0.1:10/")
    _, _, err = run("peers")
    assert err.startswith("(node http://127.0.0.1:10 from $CCOIN_API)\n")
    _, _, err = run("mempool", "--data", "mine")
    assert err.startswith("(node http://127.0.0.1:9 from --data mine)\n")
    # --api names the node itself: nothing to add but the error
    code, _, err = run("status", "--api", "http://127.0.0.1:11")
    one_line_error(code, err, "cannot reach node at http://127.0.0.1:11", "the node from --api")


def test_the_default_node_is_said_to_be_the_default(run: Run,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.delenv("CCOIN_API", raising=False)
    monkeypatch.delenv("CCOIN_DATA", raising=False)
    choice = choose_node(argparse.Namespace(api=None, config=None, data=None))
    assert (choice.url, choice.how) == ("http://127.0.0.1:8000", "")
    assert choice.hint().startswith("the default local node: is it running?")
    # a --data without a node.json (a keystore only) does not name a node
    choice = choose_node(argparse.Namespace(api=None, config=None, data=str(tmp_path)))
    assert choice.how == ""


def test_sign_prints_a_body_for_post_txs_offline(run: Run, keystore: tuple[Path, bytes],
                                                 pwfile: Path) -> None:
    """With --nonce and --chain-id nothing asks a node; the body verifies as signed."""
    data, address = keystore
    code, out, err = run("sign", "--data", str(data), "--from", address.hex(), "--to",
                         "11" * 20, "--amount", "7", "--fee", "1", "--nonce", "3",
                         "--chain-id", "1337", "--password-file", str(pwfile))
    assert code == 0 and err == "", err
    assert len(out.strip().splitlines()) == 1  # one line: pipe it into curl
    body = json.loads(out)
    assert {k: body[k] for k in ("chain_id", "nonce", "to", "amount", "fee", "data",
                                 "key_type")} == {
        "chain_id": 1337, "nonce": 3, "to": "11" * 20, "amount": 7, "fee": 1, "data": "",
        "key_type": "ed25519"}
    tx = Transaction.create(
        Signer(Keystore(data / "keystore").load(address, "correct horse")), chain_id=1337,
        nonce=3, to=bytes.fromhex("11" * 20), amount=7, fee=1, data=b"")
    assert tx_to_json(tx) == body  # Ed25519 signs deterministically: the same signature
    # without --nonce it asks the node, and says which one it could not reach
    code, _, err = run("sign", "--data", str(data), "--from", address.hex(), "--to",
                       "11" * 20, "--amount", "7", "--chain-id", "1", "--password-file",
                       str(pwfile), "--api", "http://127.0.0.1:9")
    one_line_error(code, err, "cannot reach node at http://127.0.0.1:9")
