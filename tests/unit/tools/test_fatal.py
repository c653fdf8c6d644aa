"""The FATAL listener's parts (tools/fatal.py): the reason read from a service's log, the
record (the first failure wins), and supervisord's event-listener protocol. (The listener
under a real supervisord, and `node start` ending with its line:
functional/interface_supervisor.py and feature_node_ready.py.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

from tools import fatal


def write_log(path: Path, *lines: object) -> Path:
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else str(x)) + "\n"
                            for x in lines))
    return path


def test_the_reason_is_the_last_error_or_a_crashs_last_words(tmp_path: Path) -> None:
    log = tmp_path / "p2p.log"
    write_log(log, {"level": "info", "msg": "starting"},
              {"level": "error", "msg": "fatal: cannot listen on tcp://0.0.0.0:1: denied"},
              {"level": "info", "msg": "stopping"}, "")
    assert fatal.reason_from_log(log) == "cannot listen on tcp://0.0.0.0:1: denied"
    write_log(log, {"level": "info", "msg": "starting"}, "Traceback (most recent call last):",
              '  File "x.py", line 1', "ValueError: bad thing")
    assert fatal.reason_from_log(log) == "ValueError: bad thing"
    write_log(log, "ccoin-state: config file /x/node.json not found")
    assert fatal.reason_from_log(log) == "ccoin-state: config file /x/node.json not found"
    write_log(log, {"level": "info", "msg": "starting"})
    assert fatal.reason_from_log(log) == "it exited at every start"
    assert fatal.reason_from_log(tmp_path / "missing.log") == "it exited at every start"
    write_log(log, {"level": "critical", "msg": "x" * 1000})
    assert len(fatal.reason_from_log(log)) == fatal.MAX_REASON


def test_the_first_failure_is_recorded_and_kept(tmp_path: Path) -> None:
    record = tmp_path / "fatal.json"
    assert fatal.read_record(record) is None
    first = fatal.Fatal("state", "store: disk full", "/d/logs/state.log")
    assert fatal.write_record(record, first)
    assert not fatal.write_record(record, fatal.Fatal("api", "later", "/d/logs/api.log"))
    assert fatal.read_record(record) == first
    assert first.line() == ("state failed, so the node stopped: store: disk full "
                            "(log: /d/logs/state.log)")
    record.write_text("{not json")
    assert fatal.read_record(record) is None


def test_events_follow_supervisords_listener_protocol() -> None:
    payloads = ["processname:p2p groupname:p2p from_state:BACKOFF",
                "processname:api groupname:api from_state:BACKOFF"]
    stdin = io.StringIO("".join(
        f"ver:3.0 server:supervisor serial:{i} pool:on-fatal poolserial:{i} "
        f"eventname:PROCESS_STATE_FATAL len:{len(p)}\n{p}" for i, p in enumerate(payloads)))
    stdout = io.StringIO()
    seen = []
    for event in fatal._events(stdin, stdout):
        seen.append(event)
        # each event is acknowledged only after it was handled
        assert stdout.getvalue().count("RESULT 2\nOK") == len(seen) - 1
    assert [e["processname"] for e in seen] == ["p2p", "api"]
    assert seen[0] == {"processname": "p2p", "groupname": "p2p", "from_state": "BACKOFF"}
    # READY before each event and once more before the end of input
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"
