"""interface_supervisor: node control over supervisord's XML-RPC socket, with a real
supervisord running small stand-in programs: status, a killed service restarted, stop and
restart, shutdown that leaves nothing behind, a crashing service going FATAL, a second start
on a running data dir refused, and orphans of a killed supervisord found. (The generated
supervisord.conf and `node start`'s checks: tests/unit/tools/.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.config import load_config
from tests.framework.node import TestNode
from tests.framework.util import wait_until
from tools import supervisor as sv
from tools.cli import node as node_cmd
from tools.cli.util import CliError


def dev_config(short_tmp: Path) -> Path:
    return TestNode.create(short_tmp / "n").config_path


# --- control of a real supervisord ---------------------------------------------------------------

SLEEPER = (sys.executable, "-c", "import time; time.sleep(600)")
CRASHER = (sys.executable, "-c", "raise SystemExit(3)")


class Supervised:
    def __init__(self, base: Path, programs: list[sv.Program], startretries: int = 10) -> None:
        self.paths = sv.Paths(base / "run", base / "logs")
        conf = sv.write_conf(self.paths, programs)
        conf.write_text(conf.read_text().replace("startretries=10",
                                                 f"startretries={startretries}"))
        self.proc = subprocess.Popen(sv.supervisord_argv(conf), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.control = sv.Control(self.paths)

    def wait(self, pred: Callable[[], bool], timeout: float = 30.0) -> None:
        try:
            wait_until(pred, timeout=timeout, what="supervisord's services to get there",
                       ignore=(sv.NotRunning,))
        except TimeoutError:
            print(self.paths.log.read_text() if self.paths.log.exists() else "")
            raise

    def states(self) -> dict[str, str]:
        return {p.name: p.state for p in self.control.status()}

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.control.status()}

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


@pytest.fixture
def supervised(short_tmp: Path) -> Iterator[Supervised]:
    node = Supervised(short_tmp, [sv.Program("state", 10, SLEEPER),
                                  sv.Program("api", 20, SLEEPER)])
    yield node
    node.close()


def test_control_status_restart_and_shutdown(supervised: Supervised) -> None:
    s = supervised
    s.wait(lambda: s.states() == {"state": "RUNNING", "api": "RUNNING"})
    assert [p.name for p in s.control.status()] == ["state", "api"]  # priority order
    assert s.control.is_running()
    assert s.control.pidfile_pid() == s.proc.pid == s.control.supervisord_pid()
    first = s.pids()

    # a killed service comes back with a new pid (autorestart)
    os.kill(first["state"], signal.SIGKILL)
    s.wait(lambda: s.states()["state"] == "RUNNING" and s.pids()["state"] != first["state"])

    s.control.stop("api")
    assert s.states()["api"] == "STOPPED" and not alive(first["api"])
    with pytest.raises(sv.SupervisorError, match="api is not running"):
        s.control.stop("api")
    s.control.restart("api")  # restart also starts a stopped service
    assert s.states()["api"] == "RUNNING"
    before = s.pids()
    s.control.restart()
    after = s.pids()
    assert all(after[n] != before[n] for n in after)
    with pytest.raises(sv.SupervisorError, match="no such service 'web'"):
        s.control.status("web")

    children = list(s.pids().values())
    assert s.control.shutdown() == s.proc.pid
    assert s.proc.wait(10) == 0
    assert not any(alive(pid) for pid in children)
    assert not s.control.is_running()
    with pytest.raises(sv.NotRunning, match="node is not running"):
        s.control.status()


def test_a_service_that_keeps_crashing_goes_fatal(short_tmp: Path) -> None:
    node = Supervised(short_tmp, [sv.Program("state", 10, SLEEPER),
                                  sv.Program("miner", 30, CRASHER)], startretries=1)
    try:
        node.wait(lambda: node.states().get("miner") == "FATAL")
        assert node.states()["state"] == "RUNNING"
    finally:
        node.close()


def test_second_start_on_the_same_data_dir_is_refused(short_tmp: Path) -> None:
    config = load_config(dev_config(short_tmp))
    node = Supervised(config.base_path, [sv.Program("state", 10, SLEEPER)])
    try:
        node.wait(lambda: node.states() == {"state": "RUNNING"})
        with pytest.raises(CliError, match="already running on .*supervisord pid"):
            node_cmd.prepare_start(config, "validator", None)
    finally:
        node.close()
    node_cmd.prepare_start(config, "validator", None)  # stopped: fine again


def test_orphans_of_a_killed_supervisord_are_refused(short_tmp: Path) -> None:
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    # looks like `python -m services.state --config node.json` to /proc
    orphan = subprocess.Popen([*SLEEPER, "-m", "services.state", "--config",
                               str(config_path)])
    try:
        found = wait_until(lambda: sv.leftover_services([config_path]), timeout=10,
                           interval=0.05, what="the orphan to be found")
        assert found == [(orphan.pid, "state")]
        with pytest.raises(CliError, match=f"still running \\(state pid {orphan.pid}\\)"):
            node_cmd.prepare_start(config, "validator", None)
    finally:
        orphan.kill()
        orphan.wait(5)
    assert sv.leftover_services([config_path]) == []

