"""A service that cannot do its job stops the node, and `ccoin node start` says why.

supervisord restarts a service that dies; one that dies at every start (`startretries`
times in a row, each within `startsecs`) is marked FATAL and left alone, while the rest of
the node runs on without it (DESIGN §10). A node missing a service is not doing its job, and
the console said nothing. So:

- the generated supervisord.conf (tools/supervisor.py) runs this module as an event
  listener on `PROCESS_STATE_FATAL` (`python -m tools.fatal --record FILE --logs DIR`):
  the first service to go FATAL is recorded in run/fatal.json (its name, and the reason
  its log gives: the last error line, or the last line a crash wrote), and supervisord is
  told to shut down (SIGTERM, the same clean stop Ctrl-C makes);
- `ccoin node start` and `ccoin quickstart` run supervisord as their child (`run`) rather
  than becoming it: they forward the signals supervisord acts on, wait for it, and map
  its end to an exit status: 0 for a clean stop, 1 with one line naming the service and
  why when the record is there, 1 when supervisord itself failed.

Every way of running a node's supervisord.conf gets the listener (a devnet's nodes too:
the devnet reports the node stopped, with the record's reason).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from common.errors import CcoinError

TAIL_BYTES = 64 * 1024  # how much of a service's log is searched for the reason
MAX_REASON = 400  # characters of the reason kept
# what supervisord acts on: stop (INT, TERM, QUIT), reload (HUP), reopen its logs (USR2)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR2)


class NodeFailed(CcoinError):
    """a service of the node failed and the node stopped"""


@dataclass(frozen=True, slots=True)
class Fatal:
    """What run/fatal.json holds: the service that went FATAL, why, and its log."""

    service: str
    reason: str
    log: str

    def line(self) -> str:
        return f"{self.service} failed, so the node stopped: {self.reason} (log: {self.log})"


def read_record(path: Path) -> Fatal | None:
    """The record at `path`, or None (none written, or not one of ours)."""
    try:
        doc = json.loads(path.read_text())
        return Fatal(str(doc["service"]), str(doc["reason"]), str(doc["log"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(path: Path, fatal: Fatal) -> bool:
    """Write the record unless one is there already (the first failure is the cause; what
    fails after it is a consequence); True when written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        json.dump({"service": fatal.service, "reason": fatal.reason, "log": fatal.log}, out)
    return True


def _tail_lines(log: Path) -> list[str]:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()


def reason_from_log(log: Path) -> str:
    """Why a service failed, from the end of its log: the last error a service logged
    (`runtime.service` writes `fatal: <error>` before exiting 1), or, when the last words
    are not a JSON record (a traceback, a config error printed before logging began),
    the last of them."""
    for line in reversed(_tail_lines(log)):
        text = line.strip()
        if not text:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            return text[:MAX_REASON]
        if isinstance(doc, dict) and doc.get("level") in ("error", "critical"):
            return str(doc.get("msg", "")).removeprefix("fatal: ")[:MAX_REASON]
    return "it exited at every start"


# --- the event listener (supervisord's protocol: READY, a header line, a payload, RESULT) ---


def _events(stdin: TextIO, stdout: TextIO) -> Iterator[dict[str, str]]:
    """Each event's payload tokens (`processname:p2p groupname:p2p from_state:BACKOFF`),
    acknowledged once the consumer has handled it."""
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return  # supervisord went away
        header = dict(token.split(":", 1) for token in line.split() if ":" in token)
        payload = stdin.read(int(header.get("len", "0")))
        yield dict(token.split(":", 1) for token in payload.split() if ":" in token)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def listen(record: Path, logs: Path, stdin: TextIO = sys.stdin,
           stdout: TextIO = sys.stdout) -> None:
    """Record the first FATAL service and ask supervisord (our parent) to shut down."""
    # stopped with the node: a clean exit, not a "terminated by SIGTERM" in the console
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    supervisord = os.getppid()
    for event in _events(stdin, stdout):
        name = event.get("processname", "?")
        log = logs / f"{name}.log"
        fatal = Fatal(name, reason_from_log(log), str(log))
        if write_record(record, fatal):
            print(f"{name} is FATAL: {fatal.reason}; stopping the node", file=sys.stderr,
                  flush=True)
        if os.getppid() == supervisord:  # never whoever adopted us, were it to have died
            os.kill(supervisord, signal.SIGTERM)


# --- `ccoin node start`: supervisord as a child -------------------------------------------------


def _own_group_dying_with_parent() -> None:
    """In the child, before exec: its own process group, so a Ctrl-C in the terminal
    reaches only `ccoin node start` (which forwards it once), and SIGTERM from the kernel
    if `ccoin node start` dies without stopping it (Linux)."""
    os.setpgid(0, 0)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(argv: list[str], record: Path, supervisord_log: Path) -> int:
    """Run supervisord (`argv`) in the foreground until it exits; 0 after a clean stop.
    A service that went FATAL (`record`, cleared by `supervisor.write_conf`) or a failing
    supervisord raises `NodeFailed`."""
    sys.stdout.flush()
    sys.stderr.flush()
    proc = subprocess.Popen(argv, preexec_fn=_own_group_dying_with_parent)

    def forward(signum: int, _frame: FrameType | None) -> None:
        proc.send_signal(signum)  # does nothing once supervisord has exited

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        status = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    fatal = read_record(record)
    if fatal is not None:
        raise NodeFailed(fatal.line())
    if status < 0:
        raise NodeFailed(f"supervisord was killed by {signal.Signals(-status).name} "
                         f"(see {supervisord_log})")
    if status != 0:
        raise NodeFailed(f"supervisord exited with status {status} (see {supervisord_log})")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.fatal",
                                     description="supervisord event listener: a FATAL "
                                                 "service stops the node")
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--logs", required=True, type=Path)
    args = parser.parse_args(argv)
    listen(args.record, args.logs)


if __name__ == "__main__":
    main()
