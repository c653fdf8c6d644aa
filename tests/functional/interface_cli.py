"""interface_cli: the `ccoin` command line against a real node (state, miner, api
processes), and once through the real console script, to see exactly what a user sees: one
line, no traceback. The commands' in-process tests are unit tests (tests/unit/tools/cli/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.crypto import PrivateKey
from runtime.keystore import Keystore
from tests.conftest import Run, one_line_error
from tests.framework.node import TestNode
from tests.framework.util import ROOT, wait_until


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw.txt"
    p.write_text("correct horse\n")
    return p


def test_real_console_script_prints_one_line(tmp_path: Path) -> None:
    gfile = tmp_path / "genesis.json"
    gfile.write_text('{"network_id": 1}')
    proc = subprocess.run([sys.executable, "-c", "import sys; from tools.cli import main; "
                           "sys.exit(main())", "genesis", "init", "--genesis", str(gfile),
                           "--data", str(tmp_path / "d")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    assert proc.stdout == ""
    one_line_error(proc.returncode, proc.stderr, "missing field")


# --- the REST client commands, against a real node (state, miner, api) -----------------------

REAL_CHAIN = 1337
SENDER = PrivateKey.generate()
RICH_AT_42 = "42" * 20  # an account the genesis gives 42


@pytest.fixture(scope="module")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("cli-node"), interval_ms=300,
                         extra_alloc={SENDER.address: 10**6,
                                      bytes.fromhex(RICH_AT_42): 42}) as n:
        yield n.start("state", "miner", "api")


@pytest.fixture
def sender_keystore(tmp_path: Path) -> Path:
    ks = tmp_path / "keystore"
    Keystore(ks).save(SENDER, "correct horse", 2**10)
    return ks


def test_send_signs_locally_and_waits(run: Run, real_node: TestNode, sender_keystore: Path,
                                      pwfile: Path) -> None:
    start = real_node.client.account(SENDER.address).pending_nonce
    argv = ["send", "--keystore", str(sender_keystore), "--from", SENDER.address.hex(),
            "--to", "11" * 20, "--amount", "5", "--fee", "2", "--payload", "cafe",
            "--password-file", str(pwfile), "--api", real_node.url]
    code, out, err = run(*argv, "--wait", "--timeout", "30")
    assert code == 0, err
    tx_id = out.strip()
    sent = real_node.client.tx(tx_id)  # what the node holds is what was signed
    assert (sent.sender, sent.to, sent.amount, sent.fee, sent.doc["data"],
            sent.doc["chain_id"], sent.nonce) == (SENDER.address.hex(), "11" * 20, 5, 2,
                                                  "cafe", REAL_CHAIN, start)
    assert sent.status == "confirmed" and f"confirmed in block {sent.height}" in err
    # the next send takes the next nonce from the node
    code, out, err = run(*argv, "--json")
    assert code == 0, err
    assert json.loads(out)["nonce"] == start + 1
    # resending the very same transaction is recognised (idempotent) ...
    code, out, err = run(*argv, "--nonce", str(start))
    assert code == 0 and out.strip() == tx_id, err
    # ... while another one with a used nonce gets the node's error, as one line
    code, _, err = run(*argv, "--nonce", str(start), "--amount", "6")
    one_line_error(code, err, "nonce_too_low")


def test_send_wait_times_out(run: Run, real_node: TestNode, sender_keystore: Path,
                             pwfile: Path) -> None:
    gap = real_node.client.account(SENDER.address).pending_nonce + 5  # queued: never mined
    code, out, err = run("send", "--keystore", str(sender_keystore), "--from",
                         SENDER.address.hex(), "--to", "11" * 20, "--amount", "5",
                         "--nonce", str(gap), "--password-file", str(pwfile),
                         "--api", real_node.url, "--wait", "--timeout", "0")
    assert out == ""
    assert err.strip().splitlines()[-1].startswith("error: transaction ")
    assert "not confirmed after 0s" in err and "queued" in err
    assert code == 1


def test_client_commands_print_data(run: Run, real_node: TestNode) -> None:
    api = ["--api", real_node.url]
    code, out, _ = run("balance", "0x" + RICH_AT_42, *api, "--json")
    assert code == 0
    assert json.loads(out) == {"address": RICH_AT_42, "balance": 42, "nonce": 0,
                               "pending_nonce": 0}
    code, out, _ = run("balance", RICH_AT_42, *api)
    assert "balance        42" in out
    code, out, _ = run("status", *api, "--json")
    assert json.loads(out)["network_id"] == REAL_CHAIN
    wait_until(lambda: real_node.client.status().height >= 1, timeout=30, what="block 1")
    code, out, _ = run("block", "1", *api)
    assert code == 0 and real_node.client.block(1).hash in out
    code, _, err = run("tx", "ab" * 32, *api)
    one_line_error(code, err, "not_found")

