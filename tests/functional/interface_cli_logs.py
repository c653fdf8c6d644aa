"""interface_cli: `ccoin node logs`, the parts (parse, format, tail, merge, follow) on real
temporary files, the command in process on a hand-written log dir, and once end to end
against a real node (state, miner, api processes): an operator's request traced by its
X-Request-ID across the api's and the miner's logs, and `-f` stopped with Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.framework.apinode import RunningNode, running_node, wait_for
from tests.framework.devnet import ccoin, ccoin_argv
from tests.framework.process import ROOT
from tools.cli.logs import (
    BLOCK,
    Entry,
    Filter,
    Follower,
    format_entry,
    json_line,
    merge,
    parse_line,
    reverse_lines,
    tail_file,
)

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


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A data dir with a node.json and three services' logs that interleave in time, with a
    crash traceback before logging was set up in state.log, and supervisord's text log."""
    (tmp_path / "node.json").write_text(json.dumps({"app": {"base_path": str(tmp_path)}}))
    logs = tmp_path / "logs"
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
    write(tmp_path / "run" / "supervisord.log",
          [f"{stamp},500 INFO spawned: 'state' with pid 7",
           f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(108))},000 "
           "WARN exited: api (exit status 1; not expected)"])
    os.utime(logs / "state.log", (109, 109))
    return tmp_path


# --- the parts ---------------------------------------------------------------------------------


def test_parse_line_kinds() -> None:
    e = parse_line(rec(5.25, "miner", "sealed", "WARNING", height=3), "miner", 0.0)
    assert (e.kind, e.ts, e.level, e.msg, e.record["height"]) == ("json", 5.25, "warning",
                                                                   "sealed", 3)
    for text in ("Traceback (most recent call last):", "{not json", '{"msg": "no ts"}',
                 '{"ts": "soon"}', '{"ts": NaN}', "[1, 2]", "", '{"a":' + "[" * 100_000):
        raw = parse_line(text, "state", 42.0)
        assert (raw.kind, raw.ts, raw.text, raw.level) == ("raw", 42.0, text, None)
    sup = parse_line("2026-01-02 03:04:05,678 CRIT Supervisor is running as root.",
                     "supervisord", 0.0)
    assert sup.kind == "supervisord" and sup.level == "critical"
    assert sup.msg == "Supervisor is running as root."
    assert time.localtime(sup.ts)[:6] == (2026, 1, 2, 3, 4, 5)
    assert round(sup.ts % 1, 3) == 0.678
    # a service's file is never read as supervisord's, nor supervisord's as JSON
    assert parse_line("2026-01-02 03:04:05,678 INFO x", "state", 1.0).kind == "raw"
    assert parse_line(rec(1.0, "api", "x"), "supervisord", 2.0).kind == "raw"


def test_format_entry_fields_and_traceback() -> None:
    e = parse_line(rec(1_700_000_000.5, "p2p", "peer added", "warning", request_id="op-7",
                       peer="tcp://10.0.0.2:30333", height=9, hash="ab" * 32, extra=[1]),
                   "p2p", 0.0)
    line = format_entry(e, width=5)
    stamp = time.strftime("%H:%M:%S", time.localtime(1_700_000_000)) + ".500"
    assert line == (f"{stamp} p2p   WARNING  peer added request_id=op-7 "
                    f"peer=tcp://10.0.0.2:30333 height=9 hash={'ab' * 32} extra=[1]")
    crash = parse_line(rec(2.0, "api", "boom", "error", exc="Traceback (most recent call "
                           "last):\n  File \"x\", line 1\nKeyError: 'k'"), "api", 0.0)
    assert format_entry(crash).splitlines()[1:] == [
        "    Traceback (most recent call last):", '      File "x", line 1',
        "    KeyError: 'k'"]
    raw = parse_line("Segmentation fault", "miner", 3.0)
    assert format_entry(raw, width=5) == f"{'':12} miner {'':8} Segmentation fault"
    assert json.loads(json_line(raw)) == {"ts": 3.0, "service": "miner",
                                          "raw": "Segmentation fault"}
    assert json_line(e) == e.text  # a JSON record is printed as it was written


@pytest.mark.parametrize("block", [1, 3, 7, 64, BLOCK])
def test_reverse_lines_is_the_file_backwards(tmp_path: Path, block: int) -> None:
    cases = ["", "\n", "a", "a\n", "a\n\nb", "\n\nx\n\n", "ab\ncd\n" * 5,
             "x" * 200 + "\n" + "y" * 5 + "\n" + "z" * 300, "é€\n\U0001f600\n"]
    for text in cases:
        path = tmp_path / "f.log"
        path.write_bytes(text.encode())
        with open(path, "rb") as f:
            got = list(reverse_lines(f, path.stat().st_size, block))
        want = text.split("\n")
        if want[-1] == "":
            want.pop()
        assert got == want[::-1], (text, block)


class CountingFile(io.FileIO):
    """A real file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A node whose state.log has 200,000 lines (every 20,000th with a request id)."""
    base = tmp_path_factory.mktemp("big")
    (base / "node.json").write_text(json.dumps({"app": {"base_path": str(base)}}))
    lines = [f'{{"ts": {1000 + i / 1000}, "level": "info", "service": "state", '
             f'"logger": "ccoin.state", "msg": "head {i}"'
             + (f', "request_id": "rid-{i}"}}' if i % 20_000 == 0 else "}")
             for i in range(200_000)]
    return write(base / "logs" / "state.log", lines), lines


def test_tail_of_a_big_file_reads_only_its_end(big_log: tuple[Path, list[str]]) -> None:
    path, lines = big_log
    size = path.stat().st_size
    assert size > 15_000_000
    with CountingFile(path) as f:
        got = tail_file(f, "state", 50, Filter(), size, 0.0)
        assert [e.text for e in got] == lines[-50:]
        assert f.read_bytes <= BLOCK  # 50 lines of ~110 bytes: the last block only
    with CountingFile(path) as f:
        got = tail_file(f, "state", 3, Filter(grep="HEAD 1999"), size, 0.0)
        assert [e.msg for e in got] == ["head 199997", "head 199998", "head 199999"]
        got = tail_file(f, "state", 4, Filter(request_id="rid-180000"), size, 0.0)
        assert [e.msg for e in got] == ["head 180000"]  # searched back to the start
    with CountingFile(path) as f:  # a sparse match: read back only as far as needed
        got = tail_file(f, "state", 1, Filter(request_id="rid-160000"), size, 0.0)
        assert [e.msg for e in got] == ["head 160000"] and f.read_bytes < size / 2


def test_command_tail_of_a_big_file(big_log: tuple[Path, list[str]], run: Run) -> None:
    path, lines = big_log
    base = str(path.parent.parent)
    code, out, err = run("node", "logs", "--data", base, "-n", "3")
    assert code == 0 and err == ""
    assert messages(out, 5) == ["head 199997", "head 199998", "head 199999"]
    code, out, _ = run("node", "logs", "--data", base, "-n", "2", "--json")
    assert out.splitlines() == lines[-2:]


def test_merge_orders_by_time_and_keeps_each_files_order() -> None:
    a = [parse_line(rec(t, "state", f"s{t:g}"), "state", 0.0) for t in (1, 3, 3, 5)]
    b = [parse_line(rec(t, "miner", f"m{t:g}"), "miner", 0.0) for t in (2, 3, 6)]
    raw = Entry("api", "oops", "raw", 4.0)
    assert [e.msg for e in merge([a, b, [raw]])] == ["s1", "m2", "s3", "s3", "m3", "oops",
                                                     "s5", "m6"]


def test_command_merges_files_and_keeps_raw_lines(node_dir: Path, run: Run) -> None:
    code, out, err = run("node", "logs", "--data", str(node_dir))
    assert code == 0 and err == ""
    assert messages(out) == [
        "spawned: 'state' with pid 7",
        *TRACEBACK,  # before state's first record, attributed to state
        "starting", "mining as poa", "serving", "head 1 aa txs=0 height=1",
        "mining stopped request_id=r-1", "POST /api/v1/mining/stop 200 1.0ms request_id=r-1",
        "state unavailable", "head 2 bb txs=1 request_id=r-1", "unhandled KeyError",
        "Traceback (most recent call last):", "KeyError: 'x'",
        "exited: api (exit status 1; not expected)"]
    first_raw = out.splitlines()[1]
    assert first_raw.split()[0] == "state" and first_raw.endswith(TRACEBACK[0])
    assert re.match(r"\d\d:\d\d:\d\d\.000 miner\s+WARNING  state unavailable$",
                    out.splitlines()[10])
    code, out, _ = run("node", "logs", "--data", str(node_dir), "-n", "2", "miner", "state")
    assert messages(out, 5) == ["state unavailable", "head 2 bb txs=1 request_id=r-1"]


def test_command_filters(node_dir: Path, run: Run) -> None:
    base = ("node", "logs", "--data", str(node_dir))
    _, out, _ = run(*base, "--level", "warning")
    # raw lines have no level, so a crash traceback stays among the warnings
    assert messages(out) == [*TRACEBACK, "state unavailable", "unhandled KeyError",
                             "Traceback (most recent call last):", "KeyError: 'x'",
                             "exited: api (exit status 1; not expected)"]
    _, out, _ = run(*base, "--level", "ERROR", "api", "miner")
    assert messages(out, 5)[0] == "unhandled KeyError"
    _, out, _ = run(*base, "--grep", "MINING")
    assert messages(out) == ["mining as poa", "mining stopped request_id=r-1",
                             "POST /api/v1/mining/stop 200 1.0ms request_id=r-1"]
    _, out, _ = run(*base, "--grep", "no module named")
    assert messages(out) == [TRACEBACK[-1]]
    _, out, _ = run(*base, "--request-id", "r-1", "--json")
    docs = [json.loads(line) for line in out.splitlines()]
    assert [(d["service"], d["msg"]) for d in docs] == [
        ("miner", "mining stopped"), ("api", "POST /api/v1/mining/stop 200 1.0ms"),
        ("state", "head 2 bb txs=1")]
    _, out, _ = run(*base, "--json", "state", "-n", "5")
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d.get("raw") for d in docs[:2]] == TRACEBACK[1:]
    code, out, err = run(*base, "--request-id", "nobody")
    assert code == 0 and out == "" and err == ""


def test_no_logs_unknown_service_bad_level(tmp_path: Path, run: Run) -> None:
    code, _, err = run("node", "logs", "--data", str(tmp_path / "none"))
    assert code == 1 and err.count("\n") == 1 and "no node config" in err
    (tmp_path / "node.json").write_text(json.dumps({"app": {"base_path": str(tmp_path)}}))
    code, _, err = run("node", "logs", "--data", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and "no logs yet" in err
    (tmp_path / "logs").mkdir()
    code, _, err = run("node", "logs", "--data", str(tmp_path), "miner")
    assert code == 1 and err == f"error: no logs yet in {tmp_path / 'logs'} (none of miner.log)\n"
    code, _, err = run("node", "logs", "--data", str(tmp_path), "state", "ledger")
    assert code == 2 and err == ("error: unknown service 'ledger' (one of state, p2p, miner, "
                                 "api, discovery, supervisord)\n")
    code, _, err = run("node", "logs", "--data", str(tmp_path), "--level", "loud")
    assert code == 2 and err.count("\n") == 1 and "not a level" in err


# --- following ---------------------------------------------------------------------------------


def texts(entries: list[Entry]) -> list[str]:
    return [e.text for e in entries]


def test_follow_appends_partial_lines_truncation_rotation_and_late_files(
        tmp_path: Path) -> None:
    path = write(tmp_path / "miner.log", ["old 1", "old 2", "half"], end="")
    fl = Follower.at_end("miner", path)
    try:
        assert fl.poll() == []
        append(path, [" done", "new 1"])  # the line being written when following began
        assert texts(fl.poll()) == ["half done", "new 1"]
        with open(path, "a") as f:
            f.write("par")
        assert fl.poll() == []  # not a line until its newline
        append(path, ["tial"])
        assert texts(fl.poll()) == ["partial"]
        # truncated (copytruncate), then written again: read from the start
        path.write_text("after truncate\n")
        assert texts(fl.poll()) == ["after truncate"]
        # rotated: the old file's last lines, then the new file from its start
        append(path, ["last of old"])
        path.rename(tmp_path / "miner.log.1")
        write(path, ["first of new"])
        assert texts(fl.poll()) == ["last of old", "first of new"]
        # removed, then back
        path.unlink()
        assert fl.poll() == []
        write(path, [rec(50.0, "miner", "back"), "raw after it"])
        back = fl.poll()
        assert texts(back)[0].endswith('"back"}') and back[1].ts == 50.0  # ordered after it
    finally:
        fl.close()
    late = Follower.at_end("p2p", tmp_path / "p2p.log")
    try:
        assert late.file is None and late.poll() == []
        write(tmp_path / "p2p.log", ["born"])
        assert texts(late.poll()) == ["born"]
    finally:
        late.close()


def test_command_follow(node_dir: Path) -> None:
    """-f prints the tail, then the new lines of every file (one that appears later, one
    truncated); Ctrl-C exits 0 without a word."""
    logs = node_dir / "logs"
    proc = subprocess.Popen(ccoin_argv("node", "logs", "--data", str(node_dir), "-f", "-n", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out = Lines(proc)
    try:
        seen = [out.next()]  # the tail: following has begun
        write(logs / "p2p.log", [rec(200.0, "p2p", "p200")])
        append(logs / "miner.log", [rec(201.0, "miner", "m201")])
        seen += [out.next(), out.next()]
        write(logs / "state.log", [rec(202.0, "state", "s202 after truncation")])
        seen.append(out.next())
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    assert code == 0 and proc.stderr is not None and proc.stderr.read() == ""
    assert messages("\n".join(seen)) == ["exited: api (exit status 1; not expected)", "p200",
                                         "m201", "s202 after truncation"]


# --- end to end: a real node ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("logs"), interval_ms=400) as n:
        yield n


def test_request_id_traced_across_api_and_miner(node: RunningNode) -> None:
    """An operator's action is one line in the gateway's log (even when it succeeds) and
    one in the miner's, both with the request's id."""
    try:
        r = node.http.post("/api/v1/mining/stop", headers={"X-Request-ID": "trace-logs-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "trace-logs-1", r.text
    finally:
        node.http.post("/api/v1/mining/start")
    config = str(node.chain.config_path)

    def traced() -> list[str] | None:
        out = ccoin("node", "logs", "--config", config, "--request-id", "trace-logs-1",
                    timeout=20).stdout
        lines = out.splitlines()
        api = [x for x in lines if re.search(r" api +INFO +POST /api/v1/mining/stop 200 ", x)]
        miner = [x for x in lines if re.search(r" miner +INFO +mining stopped ", x)]
        return lines if api and miner else None

    lines = wait_for("the api's and the miner's lines of trace-logs-1", traced, timeout=10,
                     every=0.3)
    assert all("request_id=trace-logs-1" in line for line in lines), lines
    print("\n".join(lines))


def test_follow_prints_new_lines_and_ctrl_c_exits_zero(node: RunningNode) -> None:
    proc = subprocess.Popen(
        ccoin_argv("node", "logs", "--config", str(node.chain.config_path), "-f",
                   "-n", "3", "--grep", "head ", "state"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out = Lines(proc)
    try:
        seen = [out.next()]  # the tail is out: following has begun
        started_at = node.client.status().height
        while True:
            seen.append(out.next())
            m = re.search(r" state +INFO +head (\d+) ", seen[-1])
            if m and int(m[1]) > started_at:  # written after the command started
                break
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    assert code == 0 and proc.stderr is not None and proc.stderr.read() == ""
    print("\n".join(seen))
