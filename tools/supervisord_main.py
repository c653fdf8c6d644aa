"""supervisord, with logging that a full disk cannot kill (`python -m tools.supervisord_main
-n -c run/supervisord.conf`: what `ccoin node start` and a devnet run).

supervisord writes its own log (run/supervisord.log), each service's output (logs/<service>
.log) and, in the foreground, a copy of its log to stdout, all through its own loggers
(`supervisor.loggers`). When a write fails (ENOSPC), the logger prints the traceback to
stderr; when stderr is on the full disk too, that print raises out of the logger, out of
supervisord's main loop, and supervisord exits 1, leaving every service running unsupervised
and `ccoin node status` saying "node is not running" (issue 10: reproduced with the data dir
on a full tmpfs and a service logging). Rolling a log over (`doRollover`, called outside the
logger's own `try`) raises the same way when its file cannot be flushed.

So before supervisord's own `main` runs, its handlers are made unable to raise:

- a write that fails is said in one line on stderr when that log first fails, and in one
  line when it is written again (never a traceback per line); if stderr cannot take even
  that, it is dropped;
- a rollover that fails is such a failure too; a log file its failed rollover left closed
  is opened again at the next line; closing or reopening a log (at shutdown, on SIGUSR2)
  whose last lines cannot be flushed is one too, not an exit status of 1.

supervisord goes on reading every service's output (a service never blocks on a full pipe,
and never sees its writes fail) and supervising; the lines written while the disk is full
are lost, there being nowhere to keep them. Keeping the logs elsewhere was the other way
(`logfile=/dev/null`, syslog), but the operator's `ccoin node logs` and the FATAL listener
read these files, and a full disk must not take them away once space returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from supervisor import loggers

_failing: dict[str, str] = {}  # log name -> why its writes fail, while they do
_failed_now = False  # the emit in progress failed (supervisord runs one thread)


def _name(handler: Any) -> str:
    return str(getattr(handler, "baseFilename", "") or "its standard output")


def _say(text: str) -> None:
    """One line on stderr, if stderr takes it."""
    try:
        sys.stderr.write(f"supervisord: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def handle_error(self: Any) -> None:
    """`Handler.handleError`: a failed write is news once per log, never an exception."""
    global _failed_now
    _failed_now = True
    exc = sys.exc_info()[1]
    name = _name(self)
    if name not in _failing:
        _failing[name] = f"{type(exc).__name__}: {exc}"
        _say(f"cannot write {name} ({_failing[name]}); its lines are lost until it can "
             "(the services run on)")


_emit = loggers.Handler.emit


def emit(self: Any, record: Any) -> None:
    """`Handler.emit`, saying so when a log that failed is written again; a log file a
    failed rollover left closed is opened again first."""
    global _failed_now
    _failed_now = False
    if getattr(self, "baseFilename", None) and self.stream.closed:
        try:
            self.stream = open(self.baseFilename, "ab")  # noqa: SIM115 (the handler keeps it)
        except OSError:
            pass  # the write fails on the closed stream: said as such
    _emit(self, record)
    name = _name(self)
    if not _failed_now and name in _failing:
        del _failing[name]
        _say(f"writes {name} again")


_rollover = loggers.RotatingFileHandler.doRollover
_close = loggers.Handler.close
_reopen = loggers.FileHandler.reopen


def do_rollover(self: Any) -> None:
    """`RotatingFileHandler.doRollover`, a failure of which is a failed write like any."""
    try:
        _rollover(self)
    except Exception:
        self.handleError()


def _failure_is_a_failed_write(method: Callable[..., None]) -> Callable[..., None]:
    def wrapped(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception:
            self.handleError()
    return wrapped


def harden() -> None:
    """Make supervisord's log handlers unable to raise (the module docstring)."""
    loggers.Handler.handleError = handle_error  # type: ignore[method-assign]
    loggers.Handler.emit = emit  # type: ignore[method-assign]
    loggers.Handler.close = _failure_is_a_failed_write(_close)  # type: ignore[method-assign]
    loggers.FileHandler.reopen = _failure_is_a_failed_write(  # type: ignore[method-assign]
        _reopen)
    loggers.RotatingFileHandler.doRollover = do_rollover  # type: ignore[method-assign]


def main() -> None:
    harden()
    from supervisor import supervisord

    supervisord.main()  # reads sys.argv, as `python -m supervisor.supervisord` would


if __name__ == "__main__":
    main()
