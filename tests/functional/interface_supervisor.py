"""interface_supervisor: the generated supervisord.conf (read back by supervisord's own parser)
and node control over supervisord's XML-RPC socket, with a real supervisord running small
stand-in programs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from common.crypto import PrivateKey
from runtime.config import load_config
from runtime.keystore import Keystore
from runtime.ports import free_port
from tools import supervisor as sv
from tools.cli import node as node_cmd
from tools.cli.util import CliError, api_url_of
from tools.devchain import create_dev_chain


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: a unix socket path must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ccsv-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def parse_conf(conf: Path) -> ServerOptions:
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return options


# --- which services ----------------------------------------------------------------------------


def test_select_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sv, "service_available", lambda name: name != "p2p")
    assert sv.select_services("basic") == ["state", "api"]
    assert sv.select_services("validator") == ["state", "api", "miner"]
    assert sv.select_services("validator", ("api",)) == ["api"]
    monkeypatch.setattr(sv, "service_available", lambda name: True)
    assert sv.select_services("validator") == ["state", "api", "p2p", "miner"]
    with pytest.raises(sv.SupervisorError, match="only on a validator"):
        sv.select_services("basic", ("miner",))
    with pytest.raises(sv.SupervisorError, match="unknown service"):
        sv.select_services("basic", ("web",))
    with pytest.raises(sv.SupervisorError, match="unknown node type"):
        sv.select_services("miner")


# --- the generated config ------------------------------------------------------------------------


def test_conf_as_supervisord_reads_it(short_tmp: Path) -> None:
    base = short_tmp / "my 100% node"  # a space and a `%` survive supervisord's expansions
    paths = sv.Paths(base / "run", base / "logs")
    conf = sv.write_conf(paths, sv.programs(base / "node.json", ["state", "api", "miner"]))
    options = parse_conf(conf)
    assert options.server_configs[0]["file"] == str(paths.sock)
    assert (options.pidfile, options.logfile) == (str(paths.pidfile), str(paths.log))
    assert options.nodaemon
    groups = {g.name: g for g in options.process_group_configs}
    assert [(n, groups[n].priority) for n in ("state", "api", "miner")] == [
        ("state", 10), ("api", 20), ("miner", 30)]
    for name, group in groups.items():
        (p,) = group.process_configs
        assert p.command.split()[:3] == [sys.executable, "-m", f"services.{name}"]
        assert p.command.endswith(f"--config '{base / 'node.json'}'")
        assert p.directory == str(sv.PACKAGE_ROOT)
        assert p.autorestart is not False and p.startsecs == 1 and p.startretries == 10
        assert p.stopsignal == signal.SIGTERM and p.stopwaitsecs == 10
        assert p.stopasgroup and p.killasgroup and p.redirect_stderr
        assert p.stdout_logfile == str(paths.log_dir / f"{name}.log")


def test_socket_path_too_long(short_tmp: Path) -> None:
    base = short_tmp / ("x" * 120)
    with pytest.raises(sv.SupervisorError, match="too long"):
        sv.write_conf(sv.Paths(base / "run", base / "logs"), [])


def dev_config(short_tmp: Path, port: int | None = None) -> Path:
    """A dev chain whose API port is free (not 8000: a node the user runs may hold it)."""
    return create_dev_chain(short_tmp / "n", api_port=port or free_port()).config_path


def test_port_override_writes_an_effective_config(short_tmp: Path) -> None:
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    override = free_port()
    conf = node_cmd.prepare_start(config, "validator", override)[0]
    effective = config.run_dir / "node.json"
    cmd = parse_conf(conf).process_group_configs[0].process_configs[0].command
    assert str(effective) in cmd
    again = load_config(effective)
    assert again.api_port == override
    assert (again.base_path, again.genesis_file(), again.password_file) == (
        config.base_path, config.genesis_file(), config.password_file)
    assert api_url_of(config) == f"http://127.0.0.1:{override}"
    # a later start without --port drops the override
    node_cmd.prepare_start(config, "validator", None)
    assert not effective.exists() and api_url_of(config) == f"http://127.0.0.1:{config.api_port}"


def test_start_preflight_errors(short_tmp: Path) -> None:
    config_path = dev_config(short_tmp)
    config = load_config(config_path)
    doc = json.loads(config_path.read_text())

    # a validator whose key is not an authority of the chain
    stranger = PrivateKey.generate()
    Keystore(config.keystore_dir).save(stranger, "pw", 2**10)
    doc["client"]["account_address"] = stranger.address.hex()
    config_path.write_text(json.dumps(doc))
    with pytest.raises(CliError, match="not an authority"):
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

    # no genesis file
    config.genesis_file().unlink()
    with pytest.raises(Exception, match="cannot read genesis file"):
        node_cmd.prepare_start(load_config(config_path), "basic", None)


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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if pred():
                    return
            except sv.NotRunning:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.paths.log.read_text() if self.paths.log.exists() else "")

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
        deadline = time.monotonic() + 10
        while not sv.leftover_services([config_path]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sv.leftover_services([config_path]) == [(orphan.pid, "state")]
        with pytest.raises(CliError, match=f"still running \\(state pid {orphan.pid}\\)"):
            node_cmd.prepare_start(config, "validator", None)
    finally:
        orphan.kill()
        orphan.wait(5)
    assert sv.leftover_services([config_path]) == []
