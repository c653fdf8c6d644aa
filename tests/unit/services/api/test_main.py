"""`python -m services.api` (`services.api.__main__`, through `runtime.service.run_server`):
a config or genesis that cannot be read ends the process with one line and status 2,
before anything listens."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.api.__main__ import main


@pytest.fixture(autouse=True)
def process_state() -> Iterator[None]:
    """`main` sets up the process (JSON logging on the root logger, a SIGTERM handler):
    give the test process its own back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    sigterm = signal.getsignal(signal.SIGTERM)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    signal.signal(signal.SIGTERM, sigterm)


def test_unreadable_config_is_one_line_and_status_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--config", str(tmp_path / "missing.json")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ccoin-api: ")


def test_unreadable_genesis_is_one_line_and_status_2(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"app": {"base_path": str(tmp_path)}}))
    with pytest.raises(SystemExit) as info:
        main(["--config", str(config), "--log-level", "WARNING"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ccoin-api: ") and "genesis" in err[-1]
