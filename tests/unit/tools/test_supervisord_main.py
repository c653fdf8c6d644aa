"""supervisord's loggers once `tools.supervisord_main.harden` ran, writing to a full disk
(Linux's /dev/full: every write fails with ENOSPC): a failed write, a failed rollover and a
stderr that fails too never raise; a log that fails is said once on stderr, and once more
when it is written again. (supervisord itself on /dev/full: tests/functional/
interface_supervisor.py.)"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from supervisor import loggers

from tools import supervisord_main

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")


@pytest.fixture
def hardened(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`harden` for this test only: supervisor's methods are put back afterwards."""
    for cls, name in ((loggers.Handler, "handleError"), (loggers.Handler, "emit"),
                      (loggers.Handler, "close"), (loggers.FileHandler, "reopen"),
                      (loggers.RotatingFileHandler, "doRollover")):
        monkeypatch.setattr(cls, name, getattr(cls, name))
    supervisord_main.harden()
    supervisord_main._failing.clear()
    yield


def record(text: str) -> loggers.LogRecord:
    return loggers.LogRecord(loggers.LevelsByName.INFO, text.encode())


def test_unhardened_a_full_disk_and_a_full_stderr_raise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What killed supervisord: its logger's traceback to a stderr that fails."""
    handler = loggers.FileHandler(str(FULL))
    monkeypatch.setattr(sys, "stderr", open(FULL, "w", buffering=1))  # noqa: SIM115 (as stderr: line-buffered)
    with pytest.raises(OSError, match="No space left on device"):
        handler.emit(record("a service's line\n"))
    with pytest.raises(OSError, match="No space left on device"):
        handler.close()  # its last line cannot be flushed: an exit status of 1 at shutdown


def test_a_failed_write_is_said_once_and_its_end_once(
        hardened: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    said = io.StringIO()
    monkeypatch.setattr(sys, "stderr", said)
    handler = loggers.FileHandler(str(FULL))
    for _ in range(5):
        handler.emit(record("a service's line\n"))
    assert said.getvalue().splitlines() == [
        f"supervisord: cannot write {FULL} (OSError: [Errno 28] No space left on device); "
        "its lines are lost until it can (the services run on)"]
    handler.stream = open(tmp_path / "room", "wb")  # noqa: SIM115 (space came back)
    handler.emit(record("written\n"))
    handler.emit(record("written too\n"))
    assert said.getvalue().splitlines()[1:] == [f"supervisord: writes {FULL} again"]
    handler.close()
    assert (tmp_path / "room").read_bytes() == b"written\nwritten too\n"


def test_nothing_raises_when_stderr_fails_too(
        hardened: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", open(FULL, "w", buffering=1))  # noqa: SIM115 (as stderr: line-buffered)
    handler = loggers.FileHandler(str(FULL))
    for _ in range(3):
        handler.emit(record("a service's line\n"))
    handler.close()


def test_a_rollover_that_fails_is_a_failed_write_and_heals(
        hardened: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The log is due to roll over while its lines cannot be flushed: closing it fails
    (unhardened, out of the logger); the next line, once there is room, reopens the file
    and is written, and the rollover it was due is done."""
    said = io.StringIO()
    monkeypatch.setattr(sys, "stderr", said)
    log = tmp_path / "state.log"
    log.write_bytes(b"older lines\n")  # over maxBytes already
    handler = loggers.RotatingFileHandler(str(log), maxBytes=10, backupCount=1)
    handler.stream.close()
    handler.stream = open(FULL, "ab")  # noqa: SIM115 (the disk is full)
    handler.emit(record("lost " * 4 + "\n"))  # buffered, unflushable, over maxBytes: the
    # rollover is due, and its close fails
    assert handler.stream.closed
    assert said.getvalue().startswith(f"supervisord: cannot write {log} (")
    handler.emit(record("back\n"))  # room again: reopened, written, rolled over
    handler.emit(record("and on\n"))
    handler.close()
    assert (tmp_path / "state.log.1").read_bytes() == b"older lines\nback\n"
    assert log.read_bytes() == b"and on\n"
    assert said.getvalue().splitlines()[1:] == [f"supervisord: writes {log} again"]
