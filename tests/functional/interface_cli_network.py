"""interface_cli_network: the operator commands `ccoin peers [add]`, `ccoin sync`, `ccoin
mining [start|stop]` and `ccoin consensus`, run as the real console script against real
nodes.

One devnet for the module (`ccoin devnet --nodes 2 --validators 1`, as the README starts
it): node1 seals a block every 300 ms, node2 is a basic node linked to it. Plus one bare
PoW node (state and api only, with an admin token) for what a node without p2p, miner or
authorities says, and for the token. Admin commands from a non-loopback client are not
tried here (functional/interface_rest.py and interface_rest_routes.py cover the rule itself)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import one_line_error
from tests.framework.network import TestNetwork, free_base_port
from tests.framework.node import TestNode
from tests.framework.rest import RestApi, assert_error
from tests.framework.util import ccoin, wait_until
from tools.devnet import Devnet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

INTERVAL_MS = 300


@dataclass
class Net:
    devnet: Devnet
    validator: RestApi
    basic: RestApi

    @property
    def a(self) -> str:
        return self.devnet.nodes[0].api_url

    @property
    def b(self) -> str:
        return self.devnet.nodes[1].api_url


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    with TestNetwork.up("cccli-", "--nodes", "2", "--validators", "1", "--base-port",
                        str(free_base_port(2)), "--interval-ms", str(INTERVAL_MS)) as network:
        yield Net(network.devnet, *network.apis)


def run(*args: str) -> tuple[int, str, str]:
    """`ccoin ARGS` as a subprocess: (exit status, stdout, stderr)."""
    proc = ccoin(*args, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, f"ccoin {' '.join(args)} exited {code}: {err}"
    assert "Traceback" not in err
    return out


# --- peers -----------------------------------------------------------------------------------


def test_peers_lists_the_other_node(net: Net) -> None:
    basic_id = net.basic.get("/api/v1/peers")["node_id"]
    out = ok("peers", "--api", net.a)
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["node", "id", "endpoint"], out
    row = next(line for line in lines[1:] if line.startswith(basic_id[:16]))
    assert net.devnet.nodes[1].p2p_endpoint in row, row
    assert lines[-1].startswith("1 peer, 0 banned"), out

    # from the basic node, through its config (--data): the validator, as JSON
    doc = json.loads(ok("peers", "--data", str(net.devnet.nodes[1].base_path), "--json"))
    validator_id = net.validator.get("/api/v1/peers")["node_id"]
    assert doc["node_id"] == basic_id
    assert [p["node_id"] for p in doc["peers"]] == [validator_id]


def test_peers_add(net: Net) -> None:
    me = net.devnet.nodes[0].p2p_endpoint
    code, out, err = run("peers", "add", "tcp://no-port", "--api", net.a)
    one_line_error(code, err, "malformed", "tcp://host:port")
    assert out == ""
    # the parent's options reach the subcommand too
    code, _, err = run("peers", "--api", net.a, "add", me)
    one_line_error(code, err, "peer_is_self", "is this node")

    # the answer comes with the handshake: linked now, or linked already
    other = net.devnet.nodes[1].p2p_endpoint
    out = ok("peers", "add", other, "--api", net.a)
    basic_id = net.basic.get("/api/v1/peers")["node_id"]
    assert re.fullmatch(f"(already )?connected to {basic_id} at \\S+ \\((in|out)bound\\)",
                        out.strip()), out
    assert net.validator.status()["peers"] >= 1


# --- sync ------------------------------------------------------------------------------------


def test_sync(net: Net) -> None:
    out = ok("sync", "--api", net.b)
    assert out.startswith(f"sync requested: {net.b} syncs from its best peer now"), out
    before = net.validator.height()
    code, out, err = run("sync", "--wait", "--timeout", "30", "--api", net.b)
    assert code == 0, err
    assert "waiting until" in err
    words = out.split()
    assert words[:4] == ["in", "sync", "at", "height"], out
    assert int(words[4]) >= before


# --- mining ----------------------------------------------------------------------------------


def mining_fields(out: str) -> dict[str, str]:
    """`print_fields` output: key, two or more spaces, value."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.strip().splitlines())


def test_mining_stop_and_start(net: Net) -> None:
    fields = mining_fields(ok("mining", "--api", net.a))
    assert fields["mining"] == "yes"
    assert fields["address"] == net.devnet.nodes[0].account.hex()
    try:
        assert ok("mining", "stop", "--api", net.a).startswith("mining off:")
        assert mining_fields(ok("mining", "--api", net.a))["mining"] == "no"
        stopped = net.validator.height()
        # the behaviour under test is that nothing happens: five intervals without a block
        time.sleep(5 * INTERVAL_MS / 1000)
        # at most the block that was being sealed when the stop came
        assert net.validator.height() <= stopped + 1, "blocks still sealed after `mining stop`"
        assert net.validator.status()["mining"] is False
    finally:
        out = ok("mining", "start", "--api", net.a)
    assert out.startswith("mining on:"), out
    wait_until(lambda: net.validator.height() > stopped, timeout=10, what="sealing resumed")

    # a basic node runs no miner: said as a fact, and `start` is one line of error
    assert "no miner runs on this node" in ok("mining", "--api", net.b)
    code, out, err = run("mining", "start", "--api", net.b)
    one_line_error(code, err, "not_a_validator")


# --- consensus -------------------------------------------------------------------------------


def test_consensus_lists_the_authorities(net: Net) -> None:
    authority = net.devnet.nodes[0].account.hex()
    assert net.validator.get("/api/v1/consensus")["authorities"] == [authority]
    turn = f"{authority[:4]}…{authority[-4:]}'s turn"
    def on_time() -> str | None:  # a loaded machine may make one block late: look again
        out = ok("consensus", "--api", net.a, "--window", "50")
        return out if out.startswith("sealing normally: block ") else None

    out = wait_until(on_time, timeout=30, what="ccoin consensus to say the chain is on time")
    summary, about, header, *rows = out.strip().splitlines()
    assert summary.endswith(turn), summary
    assert about.startswith("proof of authority: 1 authority, it must be online; block "), about
    assert header.split()[:3] == ["authority", "state", "may"], header
    row = next(r for r in rows if authority in r)
    star, address, state, may, sealed, last, _missed, _since = row.split()
    assert (star, address, state, may) == ("*", authority, "live", "yes")
    assert int(sealed) >= 1 and int(last) >= 1


# --- a node with no p2p, no miner, no authorities, and an admin token ----------------------


def test_a_bare_pow_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCOIN_ADMIN_TOKEN", raising=False)
    with TestNode.create(tmp_path, poa=False, config={"api": {"admin_token": "s3cret"}},
                         ) as node:
        node.start("state", "api")
        url, config = node.url, str(node.config_path)
        # no miner: the REST API says so, and refuses to start one
        mining = node.http.get("/api/v1/mining").json()
        assert mining == {**mining, "mining": False, "validator": False}
        assert_error(node.http.post("/api/v1/mining/start"), 409, "not_a_validator")
        # no miner, and a genesis timestamp of 0: block 1 is long overdue, and said so
        summary, about = ok("consensus", "--api", url).strip().splitlines()
        assert summary.startswith("late: block 1 is ") and "(no block since the genesis); " \
            "no miner has found its proof of work yet" in summary, summary
        assert about == ("proof of work: no authorities, any miner may seal block 1 "
                         "(difficulty 4 bits)")
        assert ok("peers", "--api", url).strip() == ("no p2p service answers on this node: "
                                                     "it has no peers")
        # the config's token gets through (to a node that has no p2p to ask) ...
        code, _, err = run("sync", "--config", config)
        one_line_error(code, err, "p2p_unavailable")
        # ... and a wrong one in the environment, which wins, is refused in one line
        monkeypatch.setenv("CCOIN_ADMIN_TOKEN", "wrong")
        code, _, err = run("sync", "--config", config)
        one_line_error(code, err, "forbidden: the bearer token does not match", "CCOIN_ADMIN_TOKEN")
