"""interface_cli_wallet: the `ccoin` command line as a wallet, end to end against a real
node: two new accounts, sends with `--wait`, balances and history right, explained
statuses, Merkle proof, live events, and every failure one line with a non-zero exit. (Key
import/export round trips need no node: tests/unit/tools/cli/test_account.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run, one_line_error
from tests.framework.node import TestNode


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- against a real node ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("cli"), interval_ms=300) as n:
        yield n.start("state", "miner", "api")


def test_wallet_end_to_end(run: Run, node: TestNode, tmp_path: Path) -> None:
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
