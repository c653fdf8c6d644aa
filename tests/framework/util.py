"""What every functional test shares: the one `wait_until`, the repository root, the `ccoin`
command as a user runs it, step logging, and finding the processes a test left behind.

`wait_until` is the only way a test waits for something: it polls a predicate until it
holds, and on timeout raises with what it waited for and the last value (or error) it saw,
so a failure says how far the system got. No test sleeps to synchronise."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
CCOIN_SCRIPT = Path(sys.executable).parent / "ccoin"

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition a test waited for did not hold in time."""


class _Poll:
    """What `wait_until` and `wait_until_async` keep between tries: the deadline, and the
    last value or ignored error, for the message when the time is up."""

    def __init__(self, timeout: float, what: str,
                 ignore: tuple[type[BaseException], ...]) -> None:
        self.timeout, self.what, self.ignore = timeout, what, ignore
        self.end = time.monotonic() + timeout
        self.last: object = None
        self.error: BaseException | None = None

    def saw(self, value: T) -> T:
        self.last, self.error = value, None
        return value

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """One try: an error of an ignored type counts as "not yet"."""
        try:
            yield
        except self.ignore as exc:
            self.error = exc

    def pause(self, interval: float) -> float:
        """How long to wait before the next try (the last one falls on the deadline); past
        the deadline, WaitTimeout naming what was awaited and what was seen last."""
        left = self.end - time.monotonic()
        if left <= 0:
            seen = (f"last error: {self.error!r}" if self.error is not None
                    else f"last value: {self.last!r}")
            raise WaitTimeout(f"timed out after {self.timeout:g} s waiting for {self.what}; "
                              f"{seen}")
        return min(interval, left)


def wait_until(predicate: Callable[[], T | None], *, timeout: float, what: str,
               interval: float = 0.1, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call `predicate` every `interval` s until it returns something truthy; return that.

    An exception of a type in `ignore` counts as "not yet" (a node restarting refuses
    connections for a while); any other propagates at once. The predicate is called at
    least once, and once more at the deadline, so a slow poll never misses a late success."""
    poll = _Poll(timeout, what, ignore)
    while True:
        with poll.attempt():
            if value := poll.saw(predicate()):
                return value
        time.sleep(poll.pause(interval))


async def wait_until_async(predicate: Callable[[], Any], *,
                           timeout: float, what: str, interval: float = 0.02,
                           ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """`wait_until` for a test running in an event loop: the loop keeps running (the
    services under test live in it) while the predicate is polled."""
    poll = _Poll(timeout, what, ignore)
    while True:
        with poll.attempt():
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if poll.saw(value):
                return value
        await asyncio.sleep(poll.pause(interval))


def log_step(text: str) -> None:
    """A timestamped line in the test's output (pytest shows it on failure, or with -s)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- the ccoin command, as a user runs it ----------------------------------------------------


def ccoin_argv(*args: str) -> list[str]:
    """`ccoin ARGS` through the installed console script (or its entry point)."""
    if CCOIN_SCRIPT.is_file():
        return [str(CCOIN_SCRIPT), *args]
    return [sys.executable, "-c", "import sys; from tools.cli import main; sys.exit(main())",
            *args]


def ccoin(*args: str, timeout: float = 120, check: bool = True,
          ) -> subprocess.CompletedProcess[str]:
    """Run `ccoin ARGS` to completion; with `check`, a non-zero exit fails the test."""
    proc = subprocess.run(ccoin_argv(*args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"ccoin {' '.join(args)}: {proc.stderr}"
    return proc


# --- what a test left behind ----------------------------------------------------------------


def processes_using(marker: str) -> list[int]:
    """Pids of live processes (zombies excluded) whose command line mentions `marker`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if marker.encode() in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            out.append(int(entry))
    return out


def kill_leftovers(marker: str) -> list[int]:
    """SIGKILL every process `processes_using(marker)` finds; return their pids."""
    pids = processes_using(marker)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids
