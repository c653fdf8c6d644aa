"""interface_supervisor: node control over supervisord's XML-RPC socket, with a real
supervisord running small stand-in programs: status, a killed service restarted, stop and
restart, shutdown that leaves nothing behind, a crashing service going FATAL, a second start
on a running data dir refused, and orphans of a killed supervisord found. And supervisord in
the foreground as `ccoin node start` runs it (tools/fatal.py): a FATAL service stops the
node, which exits 1 with one line naming it and why; Ctrl-C, SIGTERM, or the death of
`node start` itself stop it cleanly. A full disk under every log supervisord writes (its
own, a service's, its stdout and stderr: /dev/full) neither stops supervisord nor a service
(issue 10, item 6). (The generated supervisord.conf and `node start`'s checks:
tests/unit/tools/.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.config import load_config
from tests.framework.node import TestNode
from tests.framework.util import kill_leftovers, processes_using, wait_until
from tools import supervisor as sv
from tools.cli import node as node_cmd
from tools.cli.util import CliError
from tools.unixrpc import UnixTransport


def dev_config(short_tmp: Path) -> Path:
    return TestNode.create(short_tmp / "n").config_path


# --- control of a real supervisord ---------------------------------------------------------------

SLEEPER = (sys.executable, "-c", "import time; time.sleep(600)")
CRASHER = (sys.executable, "-c", "raise SystemExit(3)")
FULL = Path("/dev/full")  # every write fails with ENOSPC


def chatty(count: Path) -> tuple[str, ...]:
    """Prints a 200-byte line every 2 ms, and how many it printed to `count`."""
    return (sys.executable, "-c", "import itertools, pathlib, sys, time; "
            "p = pathlib.Path(sys.argv[1]); "
            "[(print('x' * 199, flush=True), p.write_text(str(i)), time.sleep(0.002)) "
            "for i in itertools.count(1)]", str(count))


class Supervised:
    def __init__(self, base: Path, programs: list[sv.Program], startretries: int = 10,
                 output: Path = Path(os.devnull)) -> None:
        """supervisord on `programs`; with `output` = /dev/full, on a full disk: its own log
        and every program's are /dev/full too (symbolic links), as are its stdout and
        stderr."""
        self.paths = sv.Paths(base / "run", base / "logs")
        conf = sv.write_conf(self.paths, programs)
        conf.write_text(conf.read_text().replace(f"startretries={sv.START_RETRIES}",
                                                 f"startretries={startretries}"))
        if output == FULL:
            for log in (self.paths.log, *(self.paths.program_log(p.name) for p in programs)):
                log.symlink_to(FULL)
        with open(output, "w") as out:
            self.proc = subprocess.Popen(sv.supervisord_argv(conf), stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.control = sv.Control(self.paths)

    def wait(self, pred: Callable[[], bool], timeout: float = 30.0) -> None:
        try:
            wait_until(pred, timeout=timeout, what="supervisord's services to get there",
                       ignore=(sv.NotRunning,))
        except TimeoutError:
            # (not when it is /dev/full: reading that never ends)
            print(self.paths.log.read_text() if self.paths.log.is_file() else "")
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
    # the control socket asks for the password in run/supervisord.conf
    anonymous = xmlrpc.client.ServerProxy(
        "http://localhost", transport=UnixTransport(str(s.paths.sock), 5.0))
    with pytest.raises(xmlrpc.client.ProtocolError, match="401"):
        anonymous.supervisor.getState()
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
        # without the listener of `node start` (tools.fatal), the others run on
        node.wait(lambda: node.states() == {"state": "RUNNING", "miner": "FATAL"})
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



@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_stops_neither_supervisord_nor_a_service(short_tmp: Path) -> None:
    """Every log write fails: the service's output is read and lost (it never blocks or
    fails), supervisord's own lines (a service killed and restarted) are lost too, and
    supervisord runs on, answering control requests."""
    count = short_tmp / "printed"
    node = Supervised(short_tmp, [sv.Program("state", 10, chatty(count)),
                                  sv.Program("api", 20, SLEEPER)], output=FULL)
    try:
        node.wait(lambda: node.states() == {"state": "RUNNING", "api": "RUNNING"})

        def printed() -> int:
            try:
                return int(count.read_text() or 0)
            except (OSError, ValueError):
                return 0

        wait_until(lambda: printed() >= 500, timeout=30, what="500 lines printed")
        first = node.pids()
        os.kill(first["api"], signal.SIGKILL)  # supervisord logs the exit and the restart
        node.wait(lambda: node.states()["api"] == "RUNNING" and node.pids()["api"]
                  != first["api"])
        wait_until(lambda: printed() >= 1000, timeout=30, what="500 lines more")
        assert node.proc.poll() is None
        assert node.pids()["state"] == first["state"]  # it never failed on a write
    finally:
        node.close()
    assert node.proc.returncode == 0  # and stops cleanly, its last lines unflushable


# --- supervisord in the foreground, as `ccoin node start` runs it ---------------------------------

# what `ccoin node start` does once its checks passed (`tools.cli` prints the error's line)
FOREGROUND = """
import sys
from pathlib import Path
from tools import supervisor as sv
from tools.fatal import NodeFailed
paths = sv.Paths(Path(sys.argv[2]), Path(sys.argv[3]))
try:
    sys.exit(sv.run_supervisord(Path(sys.argv[1]), paths))
except NodeFailed as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def sleeper(base: Path) -> tuple[str, ...]:
    return (*SLEEPER, str(base))  # the data dir in its command line: found if left behind


def failing_bind(base: Path) -> tuple[str, ...]:
    """Dies at once the way p2p does when its port is taken (runtime.service's last line)."""
    line = ('{"level": "error", "service": "p2p", "msg": "fatal: cannot listen on '
            'tcp://127.0.0.1:1: Address already in use"}')
    return (sys.executable, "-c", f"import sys; print({line!r}, file=sys.stderr); "
                                  "sys.exit(1)", str(base))


def foreground(base: Path, programs: list[sv.Program], startretries: int = 1,
               ) -> tuple[subprocess.Popen[str], Supervised]:
    """`node start` on stand-in programs, in a session of its own (its terminal)."""
    paths = sv.Paths(base / "run", base / "logs")
    conf = sv.write_conf(paths, programs, watch=True)
    conf.write_text(conf.read_text().replace(f"startretries={sv.START_RETRIES}",
                                             f"startretries={startretries}"))
    proc = subprocess.Popen([sys.executable, "-c", FOREGROUND, str(conf), str(paths.run_dir),
                             str(paths.log_dir)], cwd=sv.PACKAGE_ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    watcher = Supervised.__new__(Supervised)  # only its status helpers, on this node
    watcher.paths, watcher.proc, watcher.control = paths, proc, sv.Control(paths)  # type: ignore[assignment]
    return proc, watcher


def test_a_fatal_service_stops_the_node_with_one_line(short_tmp: Path) -> None:
    proc, node = foreground(short_tmp, [sv.Program("state", 10, sleeper(short_tmp)),
                                        sv.Program("p2p", 25, failing_bind(short_tmp))])
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1] == (
        "error: p2p failed, so the node stopped: cannot listen on tcp://127.0.0.1:1: "
        f"Address already in use (log: {short_tmp / 'logs' / 'p2p.log'})")
    assert "gave up: p2p entered FATAL state" in node.paths.log.read_text()
    assert processes_using(str(short_tmp)) == []  # state was stopped with the node
    assert not node.control.is_running()


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "node start killed"])
def test_node_start_stops_cleanly(short_tmp: Path, stop: str) -> None:
    proc, node = foreground(short_tmp, [sv.Program("state", 10, sleeper(short_tmp)),
                                        sv.Program("api", 20, sleeper(short_tmp))])
    try:
        node.wait(lambda: node.states() == {"state": "RUNNING", "api": "RUNNING"})
        supervisord = node.control.supervisord_pid()
        if stop == "ctrl-c":  # the terminal signals the foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        elif stop == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            proc.kill()
        proc.wait(30)
        wait_until(lambda: not alive(supervisord) and not processes_using(str(short_tmp)),
                   timeout=30, what="supervisord and the services to be gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        kill_leftovers(str(short_tmp))
    assert proc.returncode == (-signal.SIGKILL if stop == "node start killed" else 0)
    err = proc.stderr.read() if proc.stderr else ""
    assert "error" not in err
    # nothing critical on a healthy start: the socket has a password, a root run a user
    assert "CRIT" not in err and "CRIT" not in node.paths.log.read_text(), err
    assert not node.paths.fatal_record.exists()
