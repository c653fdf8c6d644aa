"""Listening ports for the functional tests: free right now (`runtime.ports`), and, when the
suite runs in several pytest-xdist workers, claimed by this worker so no other worker of the
same run hands out the same port before either has bound it.

A claim is a file created with O_EXCL in a directory named after the run
(`PYTEST_XDIST_TESTRUNUID`, shared by the workers of one run); tests/conftest.py removes it
when the run ends. In a single process `runtime.ports` alone already never hands out a port
twice."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from runtime import ports
from tools import devnet

ATTEMPTS = 200


def claims_dir(run: str | None = None) -> Path | None:
    """Where the workers of run `run` (default: this worker's) record the ports they took
    (None: not under xdist)."""
    run = run or os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return Path(tempfile.gettempdir()) / f"ccoin-test-ports-{run}" if run else None


def _claim(wanted: Iterable[int]) -> bool:
    where = claims_dir()
    if where is None:
        return True
    where.mkdir(exist_ok=True)
    taken: list[Path] = []
    for port in wanted:
        path = where / str(port)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            for claimed in taken:
                claimed.unlink()
            return False
        taken.append(path)
    return True


def free_port() -> int:
    """One free port below the ephemeral range, no other worker's."""
    for _ in range(ATTEMPTS):
        port = ports.free_port()
        if _claim([port]):
            return port
    raise RuntimeError("no free port left that another worker has not claimed")


def free_base_port(nodes: int) -> int:
    """A base port for a devnet of `nodes` nodes (`ccoin devnet --base-port`): every port
    of its layout free, and no other worker's."""
    for _ in range(ATTEMPTS):
        base = devnet.free_base_port(nodes)
        api, p2p, discovery = devnet.ports(base, nodes)
        if _claim([*api, *p2p, discovery]):
            return base
    raise RuntimeError(f"no free ports for a devnet of {nodes} left")
