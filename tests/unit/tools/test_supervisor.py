"""The supervisord side of a node (tools/supervisor.py): which services a node type runs, and
the generated supervisord.conf as supervisord's own parser reads it back (priorities, the
exact command, restart and stop policy, log files, paths with spaces and `%`, a control
socket with a password and, as root, a user: no CRIT line at start). (A real
supervisord controlling stand-in programs: functional/interface_supervisor.py.)"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from tools import supervisor as sv
from tools.unixrpc import read_credentials


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
        assert p.autorestart is not False
        assert (p.startsecs, p.startretries) == (sv.START_SECS, sv.START_RETRIES) == (2, 2)
        assert p.stopsignal == signal.SIGTERM and p.stopwaitsecs == 10
        assert p.stopasgroup and p.killasgroup and p.redirect_stderr
        assert p.stdout_logfile == str(paths.log_dir / f"{name}.log")


def test_conf_leaves_supervisord_nothing_critical_to_say(short_tmp: Path) -> None:
    """supervisord logs CRIT at every start for a control socket without a password and,
    as root, for a config naming no user: the conf has both (the socket stays 0700), the
    file is the user's alone, and Control reads the password back."""
    paths = sv.Paths(short_tmp / "run", short_tmp / "logs")
    conf = sv.write_conf(paths, sv.programs(short_tmp / "node.json", ["state"]))
    options = parse_conf(conf)
    (server,) = options.server_configs
    assert server["username"] == "ccoin" and len(server["password"]) == 32
    assert server["chmod"] == 0o700
    assert (conf.stat().st_mode & 0o777) == 0o600
    assert read_credentials(conf) == (server["username"], server["password"])
    assert options.uid == (0 if os.geteuid() == 0 else None)
    options.set_uid_or_exit()  # what supervisord does at start: nothing critical to say
    assert options.parse_criticals == []
    again = sv.write_conf(paths, sv.programs(short_tmp / "node.json", ["state"]))
    assert read_credentials(again) != (server["username"], server["password"])  # per run
    assert read_credentials(short_tmp / "missing.conf") is None


def test_the_fatal_listener_is_an_event_listener_of_fatal_states(short_tmp: Path) -> None:
    paths = sv.Paths(short_tmp / "run", short_tmp / "logs")
    paths.run_dir.mkdir(parents=True)
    paths.fatal_record.write_text("{}")  # an earlier run's
    plain = parse_conf(sv.write_conf(paths, sv.programs(short_tmp / "node.json", ["state"])))
    assert not paths.fatal_record.exists()
    assert [g.name for g in plain.process_group_configs] == ["state"]
    conf = sv.write_conf(paths, sv.programs(short_tmp / "node.json", ["state"]), watch=True)
    groups = {g.name: g for g in parse_conf(conf).process_group_configs}
    listener = groups[sv.LISTENER]
    assert [e.__name__ for e in listener.pool_events] == ["ProcessStateFatalEvent"]
    assert listener.priority < groups["state"].priority  # up first, stopped last
    (p,) = listener.process_configs
    assert p.command.split()[:3] == [sys.executable, "-m", "tools.fatal"]
    assert f"--record {paths.fatal_record}" in p.command
    assert p.stderr_logfile == str(paths.listener_log)


def test_socket_path_too_long(short_tmp: Path) -> None:
    base = short_tmp / ("x" * 120)
    with pytest.raises(sv.SupervisorError, match="too long"):
        sv.write_conf(sv.Paths(base / "run", base / "logs"), [])

