"""`ccoin node logs` (tools/cli/logs.py): the parts (parse, format, read backwards, tail,
merge, follow) on real temporary files, and the command in process on a hand-written log
dir: merged by time, filtered by level, text and request id, raw lines kept in place, a
200,000-line file tailed by reading only its end."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.framework.logfiles import TRACEBACK, append, make_node_dir, messages, rec, write
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


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    return make_node_dir(tmp_path)


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
