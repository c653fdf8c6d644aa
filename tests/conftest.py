"""Suite-wide setup, the in-process `ccoin` runner the CLI tests share, and a short
temporary directory for what puts a unix socket in it."""

from __future__ import annotations

import io
import re
import shutil
import signal
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.framework.browser import clean_artifacts
from tests.framework.ports import claims_dir
from tools import cli

# `run("balance", addr, stdin=...)` -> (exit status, stdout, stderr)
Run = Callable[..., tuple[int, str, str]]

# A suite started in the background of a non-interactive shell (`bash .ci/run &`, nohup)
# inherits SIGINT ignored, and so would every node and devnet it starts: Python keeps an
# ignored SIGINT ignored. The tests stop devnets with Ctrl-C (SIGINT), as a user at a
# terminal does, so the suite restores the disposition a terminal's foreground job has;
# children then start with SIGINT at its default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run starts with no screenshots from an earlier one (once, before any worker)."""
    if not hasattr(session.config, "workerinput"):
        clean_artifacts()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, name the run here, so the controller knows where its workers
    claim ports (tests/framework/ports.py) and can clean that up at the end."""
    if not hasattr(config, "workerinput") and getattr(config.option, "testrunuid", "") is None:
        config.option.testrunuid = uuid.uuid4().hex


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test keeps a node id of its own. schemathesis names each API operation's test
    `test_fuzz[GET /path]` but, under pytest 9, builds all their node ids from the bare
    function name; pytest-xdist hands tests to its workers by node id and would run just one
    of them. Such a test's node id is rebuilt from its full name."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.parent is not None:
            item._id = item.parent.id.child(item.name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run is over (its controller finishes last): forget the ports its workers took."""
    run = getattr(session.config.option, "testrunuid", None)
    if run and not hasattr(session.config, "workerinput"):
        shutil.rmtree(claims_dir(run) or "", ignore_errors=True)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run `ccoin ARGS` in process, with no password, API or data dir from the
    environment; return (exit status, stdout, stderr). `stdin=` feeds standard input."""
    monkeypatch.delenv("CCOIN_PASSWORD", raising=False)
    monkeypatch.delenv("CCOIN_API", raising=False)
    monkeypatch.delenv("CCOIN_DATA", raising=False)

    def go(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return go


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory under /tmp: a unix socket path (supervisord's, a node's bus) must
    stay under ~100 bytes, which pytest's own tmp_path does not promise."""
    path = Path(tempfile.mkdtemp(prefix="cct-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def one_line_error(code: int, err: str, *needles: str) -> str:
    """A failed `ccoin` run said so in one `error: ...` line (containing each needle). A
    client command may first have said which node it talks to (`(node URL from --data
    DIR)`, tools/cli/client.py): that line is context, not part of the error."""
    assert code != 0
    lines = err.strip().splitlines()
    if len(lines) == 2 and re.fullmatch(r"\(node \S+ from .+\)", lines[0]):
        lines = lines[1:]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
