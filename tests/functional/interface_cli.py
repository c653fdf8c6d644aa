"""interface_cli: the `ccoin` command line, in process (fast) and once through the real
console script (to see exactly what a user sees: one line, no traceback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tools.bench
from client import Client, sign_transfer, tx_to_json
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import BadSignature, CcoinError, TxTimeout
from runtime.keystore import Keystore
from services.api import schema
from tests.conftest import Run, one_line_error
from tests.framework.apinode import RunningNode, running_node, wait_for
from tests.framework.process import ROOT, free_port

# The ccoin seed's genesis.json example, exactly as its README prints it (comments and all);
# two long lines are split in this source only.
SEED_GENESIS = "\n".join([
    "{",
    '  "network_id": 1,',
    '  "miners": ["968414a7573534a414f4f704b51366f536751764", '
    '"968414c6a686a74316a615a4d364f4f317164624"],',
    '  "block_mining": {',
    '    "interval": 600, // mine block each 10 minutes',
    '    "max_bound": 100,  // hundred transactions per block is max',
    '    "min_bound": 10, // 10 transactions per block is min',
    '    "reward": 100, // 100 coins is coinbase transaction in every block mined by miner',
    '    "difficulty": 5, // mining difficulty',
    '    "allow_empty": true, // allow empty block',
    '    "placeholder_data": ["rnd", 15] '
    '// if empty block get mined it will be extended with extra 15 bits of data',
    "  },",
    '  "max_peers": 0,',
    '  "genesis_block": {',
    '    "coinbase": "", // coinbase address',
    '    "coinbase_reward": 100,',
    '    "difficulty": 4',
    "  },",
    '  "alloc": { // allocate initial balance among different accounts',
    '    "968414d67505a526b6b34614d354d34546734584": {',
    '      "balance": 10000000',
    "    },",
    '    "968414c6a686a74316a615a4d364f4f317164624": {',
    '      "balance": 100',
    "    }",
    "  }",
    "}",
    "",
])



@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw.txt"
    p.write_text("correct horse\n")
    return p


# --- account ---------------------------------------------------------------------------------


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


# --- genesis ---------------------------------------------------------------------------------


def test_genesis_init_seed_example(run: Run, tmp_path: Path) -> None:
    gfile = tmp_path / "genesis.json"
    gfile.write_text(SEED_GENESIS)
    data = tmp_path / "data"
    code, out, err = run("genesis", "init", "--genesis", str(gfile), "--data", str(data))
    assert code == 0, err
    assert out.startswith("Genesis block has been mined: nonce=")
    fields = dict(part.split("=") for part in out.strip().split(": ", 1)[1].split(", "))
    assert set(fields) == {"nonce", "pow_hash", "hash"}
    assert int(fields["nonce"]) >= 0
    assert fields["pow_hash"].startswith("0")  # difficulty 4: the first hex digit is 0
    assert len(fields["hash"]) == 64
    # the genesis went where the services look for it, and a node config was written
    assert (data / "genesis.json").read_text() == SEED_GENESIS
    assert json.loads((data / "node.json").read_text())["genesis"] == "genesis.json"
    assert (data / "chain").is_dir()

    # idempotent: the same genesis again gives the same block
    code, out2, err = run("genesis", "init", "--genesis", str(gfile), "--data", str(data),
                          "--json")
    assert code == 0, err
    again = json.loads(out2)
    assert again["hash"] == fields["hash"] and again["pow_hash"] == fields["pow_hash"]
    # and from the node config alone
    code, out3, err = run("genesis", "init", "--config", str(data / "node.json"))
    assert code == 0, err
    assert out3 == out


def test_genesis_init_refuses_another_chain(run: Run, tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(SEED_GENESIS)
    second.write_text(SEED_GENESIS.replace('"network_id": 1', '"network_id": 2'))
    data = tmp_path / "data"
    assert run("genesis", "init", "--genesis", str(first), "--data", str(data))[0] == 0
    code, _, err = run("genesis", "init", "--genesis", str(second), "--data", str(data))
    one_line_error(code, err, "differs")


@pytest.mark.parametrize("text, needle", [
    ('{"network_id": 1}', "missing field"),
    (SEED_GENESIS.replace('"reward": 100', '"reward": 1.5'), "integer"),
    (SEED_GENESIS.replace('"difficulty": 5', '"difficulty": 5, "bogus": 1'), "bogus"),
    ("{not json", "not valid JSON"),
])
def test_genesis_init_bad_genesis(run: Run, tmp_path: Path, text: str, needle: str) -> None:
    gfile = tmp_path / "genesis.json"
    gfile.write_text(text)
    code, out, err = run("genesis", "init", "--genesis", str(gfile), "--data",
                         str(tmp_path / "data"))
    one_line_error(code, err, needle)
    assert out == ""
    assert not (tmp_path / "data" / "chain").exists()


def test_genesis_init_missing_file(run: Run, tmp_path: Path) -> None:
    code, _, err = run("genesis", "init", "--genesis", str(tmp_path / "nope.json"),
                       "--data", str(tmp_path))
    one_line_error(code, err, "cannot read genesis file")
    code, _, err = run("genesis", "init", "--data", str(tmp_path))
    one_line_error(code, err, "--genesis FILE is required")


# --- send: everything that fails before the network -------------------------------------------


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


@pytest.mark.parametrize("argv", [[], ["account"], ["send", "--to", "x"], ["frobnicate"],
                                  ["balance", "--amount", "x"],
                                  ["sync", "--wait", "--timeout", "-5"],
                                  ["send", "--to", "11" * 20, "--timeout", "nan"]])
def test_usage_errors_exit_2_in_one_line(run: Run, argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2
    one_line_error(code, err)


def test_unreachable_node_is_one_line(run: Run) -> None:
    code, _, err = run("status", "--api", "http://127.0.0.1:9")
    one_line_error(code, err, "cannot reach node at http://127.0.0.1:9")
    code, _, err = run("balance", "11" * 20, "--api", "http://127.0.0.1:9")
    one_line_error(code, err, "cannot reach node")


def test_node_commands_without_a_running_node(run: Run, tmp_path: Path) -> None:
    code, _, err = run("node", "status", "--data", str(tmp_path))
    one_line_error(code, err, "no node config")
    (tmp_path / "node.json").write_text(json.dumps({"app": {"base_path": str(tmp_path)}}))
    for cmd in ("status", "stop", "restart"):
        code, _, err = run("node", cmd, "--data", str(tmp_path))
        one_line_error(code, err, "node is not running")
    (tmp_path / "node.json").write_text('{"app": {"base_path": 1}}')
    code, _, err = run("node", "status", "--data", str(tmp_path))
    one_line_error(code, err, "app.base_path")


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
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("cli-node"), interval_ms=300,
                      extra_alloc={SENDER.address: 10**6, bytes.fromhex(RICH_AT_42): 42}) as n:
        yield n


@pytest.fixture
def sender_keystore(tmp_path: Path) -> Path:
    ks = tmp_path / "keystore"
    Keystore(ks).save(SENDER, "correct horse", 2**10)
    return ks


def test_send_signs_locally_and_waits(run: Run, real_node: RunningNode, sender_keystore: Path,
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


def test_send_wait_times_out(run: Run, real_node: RunningNode, sender_keystore: Path,
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


def test_client_commands_print_data(run: Run, real_node: RunningNode) -> None:
    api = ["--api", real_node.url]
    code, out, _ = run("balance", "0x" + RICH_AT_42, *api, "--json")
    assert code == 0
    assert json.loads(out) == {"address": RICH_AT_42, "balance": 42, "nonce": 0,
                               "pending_nonce": 0}
    code, out, _ = run("balance", RICH_AT_42, *api)
    assert "balance        42" in out
    code, out, _ = run("status", *api, "--json")
    assert json.loads(out)["network_id"] == REAL_CHAIN
    wait_for("block 1", lambda: real_node.client.status().height >= 1)
    code, out, _ = run("block", "1", *api)
    assert code == 0 and real_node.client.block(1).hash in out
    code, _, err = run("tx", "ab" * 32, *api)
    one_line_error(code, err, "not_found")


def test_client_error_shapes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/html":
            return httpx.Response(502, text="<html>bad gateway</html>")
        if request.url.path == "/detail":
            return httpx.Response(422, json={"detail": "nope"})
        return httpx.Response(400, json={"error": {"code": "bad_signature",
                                                   "message": "signature does not verify"}})

    with Client("http://x", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(BadSignature) as info:  # the very class the node raised
            c.request("GET", "/api")
        assert (info.value.code, info.value.http_status) == ("bad_signature", 400)
        assert str(info.value) == "signature does not verify" and info.value.remote
        with pytest.raises(CcoinError, match="<html>bad gateway") as other:
            c.request("GET", "/html")
        assert (other.value.code, other.value.http_status) == ("http_502", 502)
        with pytest.raises(CcoinError, match="nope") as other:
            c.request("GET", "/detail")
        assert (other.value.code, other.value.http_status) == ("http_422", 422)


def test_tx_json_is_what_the_gateway_parses() -> None:
    for key_type in (KeyType.ED25519, KeyType.RSA):
        signer = Signer(PrivateKey.generate(key_type))
        tx = sign_transfer(signer, chain_id=9, nonce=4, to=b"\x05" * 20, amount=7, fee=1,
                           data=b"\x00\x01")
        assert schema.parse_submission(tx_to_json(tx), 9) == tx


def test_wait_confirmed_tolerates_an_unknown_id_until_the_deadline() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "?"}})

    seen: list[str] = []
    with Client("http://x", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(TxTimeout, match="unknown to the node"):
            c.wait_confirmed("ab" * 32, timeout=0.3, poll=0.05,
                             progress=lambda s, _: seen.append(s))
    assert calls["n"] >= 2 and set(seen) == {"unknown to the node"}


# --- bench hook ------------------------------------------------------------------------------


def test_bench_is_services_bench_main(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[list[str]] = []
    monkeypatch.setattr(tools.bench, "main", lambda argv: got.append(argv))
    code, _, _ = run("bench", "--txs", "10", "--out", "x.md")
    assert code == 0 and got == [["--txs", "10", "--out", "x.md"]]


# --- quickstart (without starting anything) ---------------------------------------------------


def test_quickstart_creates_then_resumes(run: Run) -> None:
    base = Path(tempfile.mkdtemp(prefix="ccq-", dir="/tmp"))
    try:
        data, port = base / "data", free_port()
        code, out, err = run("quickstart", "--data", str(data), "--port", str(port),
                             "--dry-run")
        assert code == 0, err
        assert "Genesis block has been mined: nonce=" in err
        developer = (data / "developer.txt").read_text().strip()
        assert f"developer account {developer} (genesis balance 1000000000)" in out
        assert f"http://127.0.0.1:{port}/" in out and "make clean-data" in out
        assert f"ccoin send --data {data} --from {developer}" in out
        assert out.strip().endswith("run/supervisord.conf")
        genesis = (data / "genesis.json").read_text()
        config = json.loads((data / "node.json").read_text())
        assert config["api"]["port"] == port

        # a second run resumes the same chain; a new --port is remembered
        port2 = free_port()  # not port + 1: that one may be taken
        code, out, err = run("quickstart", "--data", str(data), "--port", str(port2),
                             "--dry-run")
        assert code == 0, err
        assert "resuming" in out and "Genesis block" not in err
        assert (data / "genesis.json").read_text() == genesis
        assert json.loads((data / "node.json").read_text())["api"]["port"] == port2

        # a directory that is not a ccoin data dir is left alone
        other = base / "other"
        other.mkdir()
        (other / "precious.txt").write_text("x")
        code, _, err = run("quickstart", "--data", str(other), "--dry-run")
        one_line_error(code, err, "not a ccoin data dir")
    finally:
        shutil.rmtree(base, ignore_errors=True)
