"""`ccoin genesis init` (tools/cli/genesis.py), in process: the seed's own genesis example
(comments and all) mines the genesis block where the services look for it, idempotently;
another chain in the same data dir, a malformed file or a missing one is one line of error
and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.config import load_genesis
from tests.conftest import Run, one_line_error
from tests.framework.rules import address, genesis_doc

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
    # the seed's difficulty 4 counts hex digits: `pow_hash=0000...`, as its README shows
    assert fields["pow_hash"].startswith("0000")
    assert len(fields["hash"]) == 64
    # the genesis went where the services look for it, and a node config was written
    assert (data / "genesis.json").read_text() == SEED_GENESIS
    assert json.loads((data / "node.json").read_text())["genesis"] == "genesis.json"
    assert (data / "chain").is_dir()
    # the seed's two authorities: one line of warning, and the command still succeeds
    (warning,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: 2 authorities tolerate no failure")

    # idempotent: the same genesis again gives the same block, and says it was there
    code, out2, err = run("genesis", "init", "--genesis", str(gfile), "--data", str(data),
                          "--json")
    assert code == 0, err
    again = json.loads(out2)
    assert again["hash"] == fields["hash"] and again["pow_hash"] == fields["pow_hash"]
    assert again["created"] is False
    # and from the node config alone: no second "has been mined", but how to start over
    code, out3, err = run("genesis", "init", "--config", str(data / "node.json"))
    assert code == 0, err
    assert out3 == (f"Genesis block already exists: hash={fields['hash']} in {data / 'chain'}; "
                    "the chain is unchanged\n")
    assert "to start a new chain instead: stop the node, remove" in err
    assert "warning" not in err  # said once, when the chain was made


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


@pytest.mark.parametrize("miners, line", [
    (3, "3 authorities: the chain moves while at least 2 are online (it tolerates 1 offline)"),
    (1, "1 authority: the chain stops while it is offline"),
    (0, None),
])
def test_genesis_init_says_how_many_authorities_may_fail(run: Run, tmp_path: Path,
                                                          miners: int, line: str | None) -> None:
    doc = genesis_doc(miners=[address(100 + i) for i in range(miners)])
    gfile = tmp_path / "genesis.json"
    gfile.write_text(json.dumps(doc))
    code, out, err = run("genesis", "init", "--genesis", str(gfile), "--data",
                         str(tmp_path / "data"))
    assert code == 0 and out.startswith("Genesis block has been mined"), err
    assert "warning" not in err
    assert (line in err.splitlines()) if line else "authorit" not in err


def test_genesis_init_writes_the_ports(run: Run, tmp_path: Path) -> None:
    """--port and --p2p-port go into the node.json genesis init writes, and into an
    existing one on a later run."""
    gfile = tmp_path / "genesis.json"
    gfile.write_text(json.dumps(genesis_doc()))
    data = tmp_path / "data"
    code, _, err = run("genesis", "init", "--genesis", str(gfile), "--data", str(data),
                       "--port", "8123", "--p2p-port", "30444")
    assert code == 0, err
    doc = json.loads((data / "node.json").read_text())
    assert (doc["api"]["port"], doc["p2p"]["port"]) == (8123, 30444)
    code, _, err = run("genesis", "init", "--data", str(data), "--p2p-port", "30555")
    assert code == 0, err
    assert "set p2p.port in" in err
    doc = json.loads((data / "node.json").read_text())
    assert (doc["api"]["port"], doc["p2p"]["port"]) == (8123, 30555)
    code, _, err = run("genesis", "init", "--data", str(data), "--p2p-port", "70000")
    assert code == 2 and "not a port number" in err


def test_genesis_max_peers_is_optional_and_other_fields_required(run: Run,
                                                                 tmp_path: Path) -> None:
    """README: `max_peers` may be left out (0: the node's default); a required field left
    out is an error naming it."""
    doc = genesis_doc()
    doc.pop("max_peers", None)
    gfile = tmp_path / "genesis.json"
    gfile.write_text(json.dumps(doc))
    code, out, err = run("genesis", "init", "--genesis", str(gfile), "--data",
                         str(tmp_path / "a"))
    assert code == 0 and out.startswith("Genesis block has been mined"), err
    assert load_genesis(gfile).max_peers == 0
    for field in ("network_id", "miners", "block_mining", "genesis_block", "alloc"):
        broken = dict(doc)
        broken.pop(field)
        gfile.write_text(json.dumps(broken))
        code, _, err = run("genesis", "init", "--genesis", str(gfile), "--data",
                           str(tmp_path / field))
        one_line_error(code, err, "missing field", field)
