"""interface_readme_quickstart: the README's quickstart block, copy-pasted, works against a
node that `make run` started on non-default API and p2p ports (issue 12).

`make run API_PORT=A P2P_PORT=B DATA=<tmp>/data` starts the node; the block is taken from
README.md as it is and run by bash, line by line (`-e`: any failing line fails the test),
in the temporary directory that holds `data/` (and `.venv`, a link to this checkout's).
Checks: every line succeeds; the client commands found the node through $CCOIN_DATA and
said so; the transfer and both HTTP transactions (node-signed `wallet/send`, `ccoin
sign` piped into `POST /txs`) are confirmed; the node listens on the p2p port given; its
start printed no CRIT line; `ccoin node stop` ends `make run` cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.framework.ports import free_port
from tests.framework.util import ROOT, ccoin, kill_leftovers, log_step, wait_until

pytestmark = pytest.mark.timeout(120)


def quickstart_block() -> str:
    """The first ```sh block under the README's `## Quickstart` heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "README's quickstart has no ```sh block"
    return found.group(1)


def confirmed(api: str, tx_id: str) -> bool:
    return bool(httpx.get(f"{api}/api/v1/txs/{tx_id}").json()["status"] == "confirmed")


def test_readme_quickstart_runs_verbatim_on_other_ports(short_tmp: Path) -> None:
    api_port, p2p_port = free_port(), free_port()
    data = short_tmp / "data"
    (short_tmp / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCOIN_")}
    log_step(f"make run API_PORT={api_port} P2P_PORT={p2p_port} DATA={data}")
    out = (short_tmp / "make.out").open("w+")
    node = subprocess.Popen(["make", "-C", str(ROOT), "run", f"DATA={data}",
                             f"API_PORT={api_port}", f"P2P_PORT={p2p_port}"],
                            stdout=out, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: httpx.get(f"{api}/api/v1/ready", timeout=2).status_code == 200,
                   timeout=60, what="the node of make run to be ready",
                   ignore=(httpx.HTTPError,))

        log_step("the README's quickstart block, through bash")
        done = subprocess.run(["bash", "-e", "-o", "pipefail"], input=quickstart_block(),
                              cwd=short_tmp, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"(node {api} from $CCOIN_DATA=data)" in done.stderr.splitlines()
        assert f"p2p_endpoint  tcp://127.0.0.1:{p2p_port}" in done.stdout
        # the last three lines: the account as JSON, then the two HTTP transactions' ids
        account, wallet_send, signed = (json.loads(line)
                                        for line in done.stdout.strip().splitlines()[-3:])
        assert account["balance"] == 1000
        new = account["address"]
        for tx_id in (wallet_send["id"], signed["id"]):
            wait_until(partial(confirmed, api, tx_id), timeout=30,
                       what="the HTTP transactions to be confirmed")
        assert httpx.get(f"{api}/api/v1/accounts/{new}").json()["balance"] == 1000 + 5 + 7

        log_step("ccoin node stop")
        ccoin("node", "stop", "--data", str(data))
        assert node.wait(30) == 0
        out.seek(0)
        started = out.read()
        assert f"--data {data}" in started and f"{api}/" in started
        assert "CRIT" not in started, started
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(30)
        out.close()
        kill_leftovers(str(data))
