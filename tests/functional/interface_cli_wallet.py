"""interface_cli_wallet: the `ccoin` command line as a wallet. Key import/export round
trips (no node), then end to end against a real node: two new accounts, sends with
`--wait`, balances and history right, explained statuses, Merkle proof, live events, and
every failure one line with a non-zero exit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.crypto import KeyType, PrivateKey
from runtime.keystore import Keystore
from tests.conftest import Run, one_line_error
from tests.framework.apinode import RunningNode, running_node


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- import / export -------------------------------------------------------------------------


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


# --- against a real node ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("cli"), interval_ms=300) as n:
        yield n


def test_wallet_end_to_end(run: Run, node: RunningNode, tmp_path: Path) -> None:
    data = str(node.chain.base_path)  # the node's own dir: its node.json gives API and keys
    pw = write(tmp_path / "pw", "wallet pw\n")
    bad = write(tmp_path / "bad", "not it\n")
    ks = str(tmp_path / "wallet")
    accounts = []
    for _ in range(2):
        code, out, err = run("account", "new", "--keystore", ks, "--password-file", str(pw))
        assert code == 0, err
        accounts.append(out.strip())
    a, b = accounts
    dev = node.chain.developer.address.hex()
    api = ["--api", node.url]

    # fund A from the developer account (keys and password from the node's data dir)
    code, out, err = run("send", "--data", data, "--from", dev, "--to", a, "--amount", "5000",
                         "--fee", "2", "--wait", "--timeout", "30")
    assert code == 0, err
    fund_id = out.strip()
    # (no "waiting" line when the first look already finds it in a block: the block may
    # come between the submission and that look)
    assert len(fund_id) == 64 and "confirmed in block" in err

    # A pays B, with a payload, and waits; --json gives the explained status
    code, out, err = run("send", "--keystore", ks, "--password-file", str(pw), "--from", a,
                         "--to", b, "--amount", "1200", "--fee", "3", "--payload", "c0ffee",
                         "--wait", "--timeout", "30", "--json", *api)
    assert code == 0, err
    sent = json.loads(out)
    assert sent["status"] == "confirmed" and sent["confirmations"] >= 1
    assert sent["data"] == "c0ffee" and "confirmation" in sent["explanation"]

    for address, balance, nonce in ((a, 5000 - 1203, 1), (b, 1200, 0)):
        code, out, err = run("balance", address, "--json", *api)
        assert code == 0, err
        assert json.loads(out) == {"address": address, "balance": balance, "nonce": nonce,
                                   "pending_nonce": nonce}

    code, out, err = run("history", a, *api)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["height", "dir", "amount", "fee", "counterparty", "id"]
    assert "out" in lines[1] and "-1200" in lines[1] and b in lines[1]
    assert "in" in lines[2] and "+5000" in lines[2] and dev in lines[2]
    # one at a time: the footer names the position to go on from, which leads to the rest
    code, out, err = run("history", a, "--limit", "1", *api)
    assert code == 0 and out.strip().splitlines()[1] == lines[1], err
    cursor = err.strip().rsplit(" ", 1)[-1]
    assert err.strip() == f"1 of 2 shown; older ones with --before {cursor}"
    code, out, err = run("history", a, "--limit", "1", "--before", cursor, *api)
    assert code == 0 and out.strip().splitlines()[1] == lines[2] and err == "", err
    code, out, _ = run("history", b, "--json", *api)
    hist = json.loads(out)
    assert hist["total"] == 1 and hist["items"][0]["direction"] == "in"
    assert hist["items"][0]["id"] == sent["id"]
    code, out, err = run("history", "22" * 20, *api)
    assert code == 0 and out == "" and "no confirmed transactions" in err

    code, out, err = run("tx", sent["id"], "--proof", *api)
    assert code == 0, err
    assert "confirmed" in out and "verifies against the header's tx_root" in out
    code, out, err = run("block", str(sent["height"]), *api)
    assert code == 0 and sent["id"] in out, err

    code, out, err = run("mempool", "--json", *api)
    assert code == 0 and set(json.loads(out)) >= {"count", "bytes", "txs"}, err

    code, out, err = run("watch", "--count", "3", "--json", *api)
    assert code == 0, err
    seqs = [json.loads(line)["seq"] for line in out.strip().splitlines()]
    assert len(seqs) == 3 and seqs == list(range(seqs[0], seqs[0] + 3))
    code, out, err = run("watch", "--count", "2", "--types", "head", *api)
    assert code == 0 and all(" head " in line for line in out.strip().splitlines()), err

    # failures: one line each, non-zero
    code, out, err = run("send", "--keystore", ks, "--password-file", str(bad), "--from", a,
                         "--to", b, "--amount", "1", *api)
    one_line_error(code, err, "wrong password")
    assert out == ""
    code, _, err = run("send", "--keystore", ks, "--password-file", str(pw), "--from",
                       "33" * 20, "--to", b, "--amount", "1", *api)
    one_line_error(code, err, "no key for " + "33" * 20)
    code, _, err = run("send", "--keystore", ks, "--password-file", str(pw), "--from", a,
                       "--to", b, "--amount", "10000000", *api)
    one_line_error(code, err, "insufficient_funds")
    code, _, err = run("tx", "ab" * 32, *api)
    one_line_error(code, err, "not_found")
    code, _, err = run("balance", "nope", *api)
    one_line_error(code, err, "not a 40-hex-character address")
    code, _, err = run("history", a, "--limit", "500", *api)
    one_line_error(code, err, "--limit")
    code, _, err = run("watch", "--types", "head,bogus", *api)
    one_line_error(code, err, "bogus")
