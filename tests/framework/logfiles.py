"""Node log directories written by hand, for the tests of `ccoin node logs`: JSON records
as the services write them, supervisord's text log, a crash traceback before logging was
set up, and a reader for a command's output lines while it follows the logs."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

TRACEBACK = ["Traceback (most recent call last):",
             '  File "/x/services/state/__main__.py", line 4, in <module>',
             "ModuleNotFoundError: No module named 'plyvel'"]


def rec(ts: float, service: str, msg: str, level: str = "info", **extra: Any) -> str:
    return json.dumps({"ts": ts, "level": level, "service": service,
                       "logger": f"ccoin.{service}", "msg": msg, **extra})


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end)
    return path


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def messages(out: str, width: int = len("supervisord")) -> list[str]:
    """The message column of `format_entry` lines (for a raw line, its text), and the
    lines of a traceback indented below a record, stripped."""
    column = 12 + 1 + width + 1 + 8 + 1
    return [line.strip() if line.startswith("    ") and not line.startswith(" " * 12)
            else line[column:] for line in out.splitlines()]


class Lines:
    """A process's stdout lines, read by a thread, waited for with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.stream = proc.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.stream or ():
            self.queue.put(line.rstrip("\n"))

    def next(self, timeout: float = 10.0) -> str:
        return self.queue.get(timeout=timeout)


def make_node_dir(base: Path) -> Path:
    """A data dir with a node.json and three services' logs that interleave in time, with a
    crash traceback before logging was set up in state.log, and supervisord's text log."""
    (base / "node.json").write_text(json.dumps({"app": {"base_path": str(base)}}))
    logs = base / "logs"
    write(logs / "state.log", [*TRACEBACK,
                               rec(100.0, "state", "starting"),
                               rec(103.0, "state", "head 1 aa txs=0", height=1),
                               rec(106.0, "state", "head 2 bb txs=1", request_id="r-1")])
    write(logs / "miner.log", [rec(101.0, "miner", "mining as poa"),
                               rec(104.0, "miner", "mining stopped", request_id="r-1"),
                               rec(105.0, "miner", "state unavailable", "warning")])
    write(logs / "api.log", [rec(102.0, "api", "serving"),
                             rec(104.5, "api", "POST /api/v1/mining/stop 200 1.0ms",
                                 "debug", request_id="r-1"),
                             rec(107.0, "api", "unhandled KeyError", "error",
                                 exc="Traceback (most recent call last):\nKeyError: 'x'")])
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(99))
    write(base / "run" / "supervisord.log",
          [f"{stamp},500 INFO spawned: 'state' with pid 7",
           f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(108))},000 "
           "WARN exited: api (exit status 1; not expected)"])
    os.utime(logs / "state.log", (109, 109))
    return base
