"""`ccoin node ...` and `ccoin quickstart` (tools/cli/node.py), in process and without
starting anything: what the node commands say when no node runs; what `node start` checks
and writes before it starts supervisord (an API port override as an effective config, a
validator whose key does not load, a wrong password, a taken API or p2p port, no genesis);
and a quickstart `--dry-run` that creates a dev chain, then resumes it, and leaves a
foreign directory alone. (Starting a node for real: functional/feature_node_e2e.py,
interface_supervisor.py.)"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from common.crypto import PrivateKey
from runtime.config import load_config
from runtime.keystore import Keystore
from runtime.ports import free_port
from tests.conftest import Run, one_line_error
from tools.cli import node as node_cmd
from tools.cli.util import CliError, api_url_of
from tools.devchain import create_dev_chain


def parse_conf(conf: Path) -> ServerOptions:
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return options


def dev_config(short_tmp: Path, port: int | None = None) -> Path:
    """A dev chain whose API and p2p ports are free (not 8000 and 30333: a node the user
    runs may hold them)."""
    return create_dev_chain(short_tmp / "n", api_port=port or free_port(),
                            p2p_port=free_port()).config_path



def test_port_override_writes_an_effective_config(short_tmp: Path) -> None:
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    override = free_port()
    conf = node_cmd.prepare_start(config, "validator", override)[0]
    effective = config.run_dir / "node.json"
    groups = {g.name: g for g in parse_conf(conf).process_group_configs}
    cmd = groups["state"].process_configs[0].command
    assert str(effective) in cmd
    again = load_config(effective)
    assert again.api_port == override
    assert (again.base_path, again.genesis_file(), again.password_file) == (
        config.base_path, config.genesis_file(), config.password_file)
    assert api_url_of(config) == f"http://127.0.0.1:{override}"
    # a later start without --port drops the override
    node_cmd.prepare_start(config, "validator", None)
    assert not effective.exists() and api_url_of(config) == f"http://127.0.0.1:{config.api_port}"



def test_start_takes_an_assume_valid_hash_for_this_run(run: Run, short_tmp: Path) -> None:
    """`--assume-valid HASH` overrides `sync.assume_valid` in the effective config; a
    malformed hash is one line, before anything is written."""
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    code, _, err = run("node", "start", "-c", str(config_path), "--assume-valid", "ab" * 31,
                       "--dry-run")
    one_line_error(code, err, "--assume-valid", "is not a block hash (64 hex characters)")
    assert not (config.run_dir / "node.json").exists()
    code, _, err = run("node", "start", "-c", str(config_path), "--assume-valid", "ab" * 32,
                       "--dry-run")
    assert code == 0, err
    assert load_config(config.run_dir / "node.json").assume_valid == bytes.fromhex("ab" * 32)


def test_start_preflight_errors(short_tmp: Path) -> None:
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    doc = json.loads(config_path.read_text())

    # a validator whose key is not (yet) an authority starts: a vote may add it, and its
    # miner waits until one does; its key must load all the same
    stranger = PrivateKey.generate()
    Keystore(config.keystore_dir).save(stranger, "pw", 2**10)
    doc["client"]["account_address"] = stranger.address.hex()
    config_path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match="wrong password"):
        node_cmd.prepare_start(load_config(config_path), "validator", None)
    # ... which a basic node does not need
    assert node_cmd.prepare_start(load_config(config_path), "basic", None)[1] == [
        "state", "api", "p2p"]

    # the right validator, the wrong password
    doc["client"]["account_address"] = config.account_address.hex()
    config_path.write_text(json.dumps(doc))
    assert config.password_file is not None
    config.password_file.write_text("wrong\n")
    with pytest.raises(Exception, match="wrong password"):
        node_cmd.prepare_start(load_config(config_path), "validator", None)

    # the api port is taken
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(CliError, match=f"cannot serve the API on 127.0.0.1:{taken}"):
            node_cmd.prepare_start(load_config(config_path), "basic", taken)
        # ... the p2p port: p2p would exit at every start, so the node is not started;
        # an outbound-only node does not listen and starts
        doc["p2p"]["port"] = taken
        config_path.write_text(json.dumps(doc))
        with pytest.raises(CliError, match=f"^p2p cannot listen on 127.0.0.1:{taken}: "):
            node_cmd.prepare_start(load_config(config_path), "basic", None)
        doc["p2p"]["outbound_only"] = True
        config_path.write_text(json.dumps(doc))
        node_cmd.prepare_start(load_config(config_path), "basic", None)

    # no genesis file
    config.genesis_file().unlink()
    with pytest.raises(CliError, match="^no genesis file .*: create the chain first with "
                                       "`ccoin genesis init --genesis FILE --data "):
        node_cmd.prepare_start(load_config(config_path), "basic", None)


def test_start_before_genesis_init_says_to_run_it(run: Run, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's order is create-account, initc, cnode: a `node start` that skips initc
    gets the exact command to run."""
    monkeypatch.chdir(tmp_path)
    Keystore(tmp_path / "mine" / "keystore").save(PrivateKey.generate(), "pw", 2**10)
    code, _, err = run("node", "start", "--data", "mine", "--type", "validator")
    one_line_error(code, err, "no node config", "create the chain first with "
                   "`ccoin genesis init --genesis FILE --data mine`")
    monkeypatch.setenv("CCOIN_DATA", "mine")  # the same from the environment
    code, _, err = run("node", "start")
    one_line_error(code, err, "`ccoin genesis init --genesis FILE --data mine`")


def test_start_takes_the_seeds_cnode_flags(run: Run, short_tmp: Path) -> None:
    """`cnode -c FILE -t TYPE -p PORT`: -c the node config, -t the node type, -p the p2p
    port (for this run: an effective config in run/, like --port for the API)."""
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    p2p, api = free_port(), free_port()
    code, out, err = run("node", "start", "-c", str(config_path), "-t", "validator",
                         "-p", str(p2p), "--port", str(api), "--dry-run")
    assert code == 0, err
    groups = {g.name: g for g in parse_conf(Path(out.strip())).process_group_configs}
    assert set(groups) == {"state", "api", "p2p", "miner", "on-fatal"}
    effective = load_config(config.run_dir / "node.json")
    assert (effective.p2p_port, effective.api_port) == (p2p, api)
    assert str(config.run_dir / "node.json") in groups["p2p"].process_configs[0].command
    # the long spellings, and the seed's own --node_type
    code, out, err = run("node", "start", "--config", str(config_path), "--node_type",
                         "basic", "--p2p-port", str(p2p), "--dry-run")
    assert code == 0, err
    assert "miner" not in {g.name for g in parse_conf(Path(out.strip())).process_group_configs}
    assert load_config(config.run_dir / "node.json").p2p_port == p2p
    # a p2p port that is taken is refused before anything starts
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        code, _, err = run("node", "start", "-c", str(config_path), "-p", str(taken),
                           "--dry-run")
        one_line_error(code, err, f"p2p cannot listen on 127.0.0.1:{taken}", "--p2p-port")



def test_bus_keys_and_a_gateway_host_that_does_not_know_its_chain_host(
        run: Run, short_tmp: Path) -> None:
    """`node keys` makes the bus key once and prints it; a gateway host (`--services api`,
    tcp:// endpoints) must name the chain host's key before anything starts."""
    config_path = dev_config(short_tmp)
    code, out, err = run("node", "keys", "--config", str(config_path), "--json")
    assert code == 0, err
    keys = json.loads(out)
    assert len(bytes.fromhex(keys["bus_key"])) == 32 and keys["bus_server_key"] == keys["bus_key"]
    code, again, _ = run("node", "keys", "--config", str(config_path))
    assert code == 0 and again.split()[:3] == ["bus", "key", keys["bus_key"]]
    doc = json.loads(config_path.read_text())
    doc["endpoints"] = {"state": "tcp://10.0.0.1:7101", "events": "tcp://10.0.0.1:7102"}
    config_path.write_text(json.dumps(doc))
    code, _, err = run("node", "start", "-c", str(config_path), "--services", "api",
                       "--port", str(free_port()), "--dry-run")
    one_line_error(code, err, "runs no state service", "set bus.server_key")
    doc["bus"] = {"server_key": "ab" * 32}
    config_path.write_text(json.dumps(doc))
    code, out, err = run("node", "start", "-c", str(config_path), "--services", "api",
                         "--port", str(free_port()), "--dry-run")
    assert code == 0, err
    code, out, _ = run("node", "keys", "--config", str(config_path))
    assert f"bus server key  {'ab' * 32}" in out


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


def test_quickstart_creates_then_resumes(run: Run) -> None:
    base = Path(tempfile.mkdtemp(prefix="ccq-", dir="/tmp"))
    try:
        data, port, p2p_port = base / "data", free_port(), free_port()
        code, out, err = run("quickstart", "--data", str(data), "--port", str(port),
                             "--p2p-port", str(p2p_port), "--dry-run")
        assert code == 0, err
        assert "Genesis block has been mined: nonce=" in err
        developer = (data / "developer.txt").read_text().strip()
        assert f"developer account {developer} (genesis balance 1000000000)" in out
        assert f"http://127.0.0.1:{port}/" in out and f"make clean-data DATA={data}" in out
        assert f"ccoin send --data {data} --from {developer}" in out
        assert out.strip().endswith("run/supervisord.conf")
        genesis = (data / "genesis.json").read_text()
        config = json.loads((data / "node.json").read_text())
        assert (config["api"]["port"], config["p2p"]["port"]) == (port, p2p_port)

        # a second run resumes the same chain; a new --port and --p2p-port are remembered
        port2, p2p_port2 = free_port(), free_port()  # not port + 1: that one may be taken
        code, out, err = run("quickstart", "--data", str(data), "--port", str(port2),
                             "--p2p-port", str(p2p_port2), "--dry-run")
        assert code == 0, err
        assert "resuming" in out and "Genesis block" not in err
        assert (data / "genesis.json").read_text() == genesis
        config = json.loads((data / "node.json").read_text())
        assert (config["api"]["port"], config["p2p"]["port"]) == (port2, p2p_port2)

        # a directory that is not a ccoin data dir is left alone
        other = base / "other"
        other.mkdir()
        (other / "precious.txt").write_text("x")
        code, _, err = run("quickstart", "--data", str(other), "--dry-run")
        one_line_error(code, err, "not a ccoin data dir")
    finally:
        shutil.rmtree(base, ignore_errors=True)
