"""`ccoin account new|list|import|export` (tools/cli/account.py), in process: keys land
encrypted in the keystore, passwords come from a file or the environment (never a prompt
without a terminal), key files and raw secrets round-trip, and every refusal is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.crypto import KeyType, PrivateKey
from runtime.keystore import Keystore
from tests.conftest import Run, one_line_error


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw.txt"
    p.write_text("correct horse\n")
    return p


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_account_new_and_list(run: Run, tmp_path: Path, pwfile: Path) -> None:
    data = tmp_path / "data"
    code, out, err = run("account", "new", "--data", str(data), "--password-file", str(pwfile))
    assert code == 0, err
    address = out.strip()
    assert len(address) == 40 and bytes.fromhex(address)
    key = Keystore(data / "keystore").load(bytes.fromhex(address), "correct horse")
    assert key.key_type == KeyType.ED25519 and key.address.hex() == address
    assert "Created ed25519 account" in err

    code, out, err = run("account", "new", "--keystore", str(data / "keystore"),
                         "--key-type", "rsa", "--password-file", str(pwfile), "--json")
    assert code == 0, err
    rsa = json.loads(out)
    assert rsa["key_type"] == "rsa" and Path(rsa["path"]).is_file()

    code, out, _ = run("account", "list", "--data", str(data))
    assert code == 0
    listed = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert listed == {address: "ed25519", rsa["address"]: "rsa"}
    code, out, _ = run("account", "list", "--data", str(data), "--json")
    assert {r["address"] for r in json.loads(out)} == {address, rsa["address"]}


def test_account_new_password_from_env(run: Run, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCOIN_PASSWORD", "from-env")
    code, out, err = run("account", "new", "--data", str(tmp_path))
    assert code == 0, err
    Keystore(tmp_path / "keystore").load(bytes.fromhex(out.strip()), "from-env")


def test_account_new_refuses_empty_or_missing_password(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, _, err = run("account", "new", "--data", str(tmp_path), "--password-file",
                       str(empty))
    one_line_error(code, err, "must not be empty")
    code, _, err = run("account", "new", "--data", str(tmp_path), "--password-file",
                       str(tmp_path / "nope"))
    one_line_error(code, err, "cannot read password file")
    # no file, no $CCOIN_PASSWORD, stdin is not a terminal under pytest: no prompt
    code, _, err = run("account", "new", "--data", str(tmp_path))
    one_line_error(code, err, "no password")


def test_account_list_empty(run: Run, tmp_path: Path) -> None:
    code, out, err = run("account", "list", "--data", str(tmp_path))
    assert code == 0 and out == "" and "no accounts" in err



def test_export_import_round_trips(run: Run, tmp_path: Path) -> None:
    pw = write(tmp_path / "pw", "first secret\n")
    pw2 = write(tmp_path / "pw2", "second secret\n")
    k1, k2, k3, k4 = (str(tmp_path / f"k{i}") for i in range(1, 5))
    code, out, err = run("account", "new", "--keystore", k1, "--password-file", str(pw))
    assert code == 0, err
    address = out.strip()

    # the key file, encrypted, as JSON; imported elsewhere it is the same account
    code, out, err = run("account", "export", address, "--keystore", k1)
    assert code == 0, err
    exported = json.loads(out)
    assert exported["address"] == address and "ciphertext" in exported["crypto"]
    keyfile = write(tmp_path / "key.json", out)
    code, out, err = run("account", "import", str(keyfile), "--keystore", k2,
                         "--password-file", str(pw))
    assert code == 0 and out.strip() == address, err
    assert "from a key file" in err
    code, _, err = run("account", "import", str(keyfile), "--keystore", k2,
                       "--password-file", str(pw))
    one_line_error(code, err, "already in")
    # a key file with another password than the keystore's
    code, _, err = run("account", "import", str(keyfile), "--keystore", k3,
                       "--password-file", str(pw2))
    one_line_error(code, err, "wrong password", "--key-password-file")
    code, out, err = run("account", "import", str(keyfile), "--keystore", k3,
                         "--password-file", str(pw2), "--key-password-file", str(pw))
    assert code == 0 and out.strip() == address, err
    Keystore(k3).load(bytes.fromhex(address), "second secret")

    # the raw secret only with --yes; it imports from stdin
    code, out, err = run("account", "export", address, "--keystore", k1, "--raw",
                         "--password-file", str(pw))
    one_line_error(code, err, "--yes")
    assert out == ""
    code, out, err = run("account", "export", address, "--keystore", k1, "--raw", "--yes",
                         "--password-file", str(pw))
    assert code == 0 and len(out.strip()) == 64, err
    assert "controls the account" in err
    code, out, err = run("account", "import", "-", "--keystore", k4, "--password-file",
                         str(pw2), "--json", stdin=out)
    assert code == 0, err
    assert json.loads(out)["address"] == address and json.loads(out)["key_type"] == "ed25519"


def test_import_hex_keys_of_both_types(run: Run, tmp_path: Path) -> None:
    pw = write(tmp_path / "pw", "pw\n")
    ks = str(tmp_path / "ks")
    rsa = PrivateKey.generate(KeyType.RSA)
    code, out, err = run("account", "import", str(write(tmp_path / "rsa.hex", rsa.secret.hex())),
                         "--keystore", ks, "--password-file", str(pw))
    assert code == 0 and out.strip() == rsa.address.hex(), err
    ed = PrivateKey.generate(KeyType.ED25519)
    sodium_form = "0x" + (ed.secret + ed.public_key).hex()  # libsodium's 64-byte secret key
    code, out, err = run("account", "import", str(write(tmp_path / "ed.hex", sodium_form)),
                         "--keystore", ks, "--password-file", str(pw))
    assert code == 0 and out.strip() == ed.address.hex(), err
    code, out, _ = run("account", "list", "--keystore", ks, "--json")
    assert {(r["address"], r["key_type"]) for r in json.loads(out)} == {
        (rsa.address.hex(), "rsa"), (ed.address.hex(), "ed25519")}
    for text, kind, needle in (("zz", [], "not hex"), ("ab" * 31, [], "neither a 32-byte"),
                               ("ab" * 31, ["--key-type", "ed25519"], "32 bytes, not 31"),
                               ("ab" * 64, [], "seed || public key"),
                               ("ab" * 100, ["--key-type", "rsa"], "not an RSA")):
        code, _, err = run("account", "import", str(write(tmp_path / "bad", text)), *kind,
                           "--keystore", ks, "--password-file", str(pw))
        one_line_error(code, err, needle)
    code, _, err = run("account", "import", str(write(tmp_path / "j", '{"a": 1}')),
                       "--keystore", ks, "--password-file", str(pw))
    one_line_error(code, err)
    code, _, err = run("account", "import", str(tmp_path / "missing"), "--keystore", ks,
                       "--password-file", str(pw))
    one_line_error(code, err, "cannot read")
    code, _, err = run("account", "export", "11" * 20, "--keystore", ks)
    one_line_error(code, err, "no key for")
