"""`ccoin node logs`: a node's logs, merged by time, filtered, and followed.

Each service writes JSON lines to `<data dir>/logs/<service>.log` (`runtime.service.
JsonFormatter`: ts, level, service, logger, msg, and request_id, peer, height, hash, exc
when they apply); supervisord writes its own text log to `run/supervisord.log`. This
module reads those files the way an operator needs them:

- the tail of each file is read backwards in blocks from its end, until enough matching
  lines are found or the file's start is reached, so the tail of a 100 MB log costs a few
  blocks, not 100 MB;
- the files' lines are merged by timestamp, keeping each file's own order;
- a line that is not a JSON record (a crash traceback written to stderr before logging
  was set up, a stray print) is kept as it is, attributed to its file, and ordered next to
  its neighbours: it takes the time of the next timed line of its file, or the file's
  modification time when nothing follows it (a crash's last words);
- `-f` polls every file, reopening one that was rotated (new inode) or truncated (smaller
  than what was read), and picking up one that appears later.

The parsing, filtering, formatting, tailing and merging are small functions over plain
values and open files; `cmd_logs` is the only part that prints or sleeps.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import re
import sys
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from runtime.bus import VALID_REQUEST_ID
from runtime.config import NodeConfig
from tools import supervisor as sv
from tools.cli.util import CliError, UsageError, note, require_config

SERVICES = ("state", "p2p", "miner", "api", "discovery")
SUPERVISORD = "supervisord"
SOURCES = (*SERVICES, SUPERVISORD)
LEVELS: Mapping[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40,
                             "critical": 50}
# supervisord's (CRIT, ERRO, WARN, INFO, DEBG, TRAC, BLAT) and other common spellings
LEVEL_ALIASES: Mapping[str, str] = {"warn": "warning", "crit": "critical", "fatal": "critical",
                                    "erro": "error", "err": "error", "debg": "debug",
                                    "trac": "debug", "blat": "debug"}
FIELDS = ("request_id", "peer", "height", "hash")  # shown as key=value after the message
CORE = frozenset({"ts", "level", "service", "logger", "msg", "exc"})
BLOCK = 64 * 1024  # bytes read at a time, backwards, by the tail
MAX_READ = 1024 * 1024  # bytes read from one file per poll when following
POLL_INTERVAL = 0.2
_SUPERVISORD_LINE = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ([A-Z]{4}) (.*)", re.DOTALL)


Kind = Literal["json", "supervisord", "raw"]


# --- one line ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of one log file.

    `kind` is "json" for a service's JSON record, "supervisord" for a line of supervisord's
    log, "raw" for anything else. `ts` orders the line among the other files' lines: its
    own time, or for a raw line a neighbour's (see the module docstring). `record` holds the
    parsed fields (empty for a raw line)."""

    source: str
    text: str
    kind: Kind
    ts: float
    record: Mapping[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> str | None:
        value = self.record.get("level")
        return normalize_level(value) if isinstance(value, str) else None

    @property
    def msg(self) -> str:
        if self.kind == "raw":
            return self.text
        value = self.record.get("msg", "")
        return value if isinstance(value, str) else json.dumps(value)


def normalize_level(name: str) -> str | None:
    """"warning" for "WARN", "Warning", ...; None for a name that is no level."""
    low = name.strip().lower()
    low = LEVEL_ALIASES.get(low, low)
    return low if low in LEVELS else None


def parse_line(text: str, source: str, default_ts: float) -> Entry:
    """The entry for one line of `source`'s file; `default_ts` orders it if it is raw."""
    if source == SUPERVISORD:
        m = _SUPERVISORD_LINE.fullmatch(text)
        if m:
            try:
                ts = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                return Entry(source, text, "raw", default_ts)
            record = {"ts": round(ts, 3), "level": normalize_level(m[2]) or m[2].lower(),
                      "service": SUPERVISORD, "msg": m[3]}
            return Entry(source, text, "supervisord", ts, record)
    elif text.startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, dict):
            value = doc.get("ts")
            if (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value)):
                return Entry(source, text, "json", float(value), doc)
    return Entry(source, text, "raw", default_ts)


# --- filtering ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    """What `--level`, `--grep` and `--request-id` let through.

    A raw line has no level, so `--level` keeps it (a crash traceback is exactly what one
    looks for among the warnings); it has no request id either, so `--request-id` drops
    it. `--grep` looks at a record's message and at a raw line's whole text."""

    min_level: int = 0
    grep: str = ""
    request_id: str | None = None

    def matches(self, entry: Entry) -> bool:
        if self.request_id is not None and entry.record.get("request_id") != self.request_id:
            return False
        if self.min_level:
            level = entry.level
            if level is not None and LEVELS[level] < self.min_level:
                return False
        return not self.grep or self.grep.casefold() in entry.msg.casefold()


# --- formatting --------------------------------------------------------------------------------


def format_time(ts: float) -> str:
    """HH:MM:SS.mmm in local time."""
    secs, millis = divmod(round(ts * 1000), 1000)
    return time.strftime("%H:%M:%S", time.localtime(secs)) + f".{millis:03d}"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def format_entry(entry: Entry, width: int = 0) -> str:
    """`HH:MM:SS.mmm service LEVEL msg key=value ...`, a traceback indented below it; a
    raw line as it is, under the time and level columns, after its file's name."""
    if entry.kind == "raw":
        return f"{'':12} {entry.source:<{width}} {'':8} {entry.text}"
    rec = entry.record
    service = rec.get("service")
    level = entry.level or _value(rec.get("level", "-"))
    head = (f"{format_time(entry.ts)} "
            f"{service if isinstance(service, str) else entry.source:<{width}} "
            f"{level.upper():<8} ")
    extras = [f"{key}={_value(rec[key])}" for key in FIELDS if key in rec]
    extras += [f"{key}={_value(value)}" for key, value in rec.items()
               if key not in CORE and key not in FIELDS]
    lines = [head + " ".join([entry.msg.replace("\n", "\n    "), *extras])]
    exc = rec.get("exc")
    if exc:
        lines += ["    " + line for line in _value(exc).splitlines()]
    return "\n".join(lines)


def json_line(entry: Entry) -> str:
    """The line itself for a JSON record; otherwise a JSON object standing for it, so that
    `--json` output stays one JSON object per line: supervisord's fields, or
    `{"ts", "service", "raw"}` for a raw line (ts: the time it is ordered by)."""
    if entry.kind == "json":
        return entry.text
    if entry.kind == "supervisord":
        return json.dumps(dict(entry.record))
    return json.dumps({"ts": round(entry.ts, 3), "service": entry.source, "raw": entry.text})


# --- reading -----------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


def reverse_lines(f: BinaryIO, end: int, block: int = BLOCK) -> Generator[str, None, None]:
    """The lines of `f` before offset `end`, last first, read in blocks backwards from `end`:
    only as much of the file is read as the caller consumes (plus one block). The empty
    "line" after a final newline is not one."""
    pos = end
    pieces: list[bytes] = []  # the line being read back, its pieces last first
    first = True
    while pos > 0:
        size = min(block, pos)
        pos -= size
        f.seek(pos)
        chunk = f.read(size)
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            pieces.append(chunk)
            continue
        last = parts[-1] + b"".join(reversed(pieces))
        if last or not first:
            yield _decode(last)
        first = False
        for raw in reversed(parts[1:-1]):
            yield _decode(raw)
        pieces = [parts[0]]
    line = b"".join(reversed(pieces))
    if line or not first:
        yield _decode(line)


def complete_end(f: BinaryIO, end: int, block: int = BLOCK) -> int:
    """The offset just after the last newline before `end` (0 if none): where a line still
    being written starts."""
    pos = end
    while pos > 0:
        size = min(block, pos)
        pos -= size
        f.seek(pos)
        i = f.read(size).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return 0


def tail_file(f: BinaryIO, source: str, n: int, filt: Filter, end: int, mtime: float,
              block: int = BLOCK) -> list[Entry]:
    """The last `n` lines of `f` (before `end`) that `filt` lets through, in file order.
    A raw line is ordered by the next timed line of the file, or by `mtime` (the file's
    modification time) when none follows."""
    found: list[Entry] = []
    next_ts = mtime
    if n <= 0:
        return found
    # a line without the request id's text cannot carry it: skip it unparsed (the id, as
    # the gateway accepts it, needs no escaping in JSON; a raw line never matches an id)
    rid = filt.request_id or ""
    quick = rid if rid.isascii() and VALID_REQUEST_ID.fullmatch(rid.encode()) else None
    lines = reverse_lines(f, end, block)
    try:
        for text in lines:
            if quick is not None and quick not in text:
                continue
            entry = parse_line(text, source, next_ts)
            if entry.kind != "raw":
                next_ts = min(next_ts, entry.ts)  # (min: even if the clock stepped back)
            if filt.matches(entry):
                found.append(entry)
                if len(found) == n:
                    break
    finally:
        lines.close()
    found.reverse()
    return found


def merge(streams: Iterable[Sequence[Entry]]) -> list[Entry]:
    """The entries of several files in time order; each file's own order is kept, and of
    two lines with the same time the one from the earlier stream comes first."""
    return list(heapq.merge(*streams, key=lambda e: e.ts))


def last(entries: Sequence[Entry], n: int) -> list[Entry]:
    return list(entries[-n:]) if n > 0 else []


# --- following ---------------------------------------------------------------------------------


class Follower:
    """Reads what is appended to one log file, by path: a file that appears later is read
    from its start; one replaced by another (rotation: a new inode, or none at the path) is
    read to its end, then the new one from its start; one that shrank below what was read
    (truncation) is read again from its start. A line is returned once complete."""

    __slots__ = ("file", "inode", "last_ts", "partial", "path", "pos", "source")

    def __init__(self, source: str, path: Path, file: BinaryIO | None = None,
                 pos: int = 0, last_ts: float | None = None) -> None:
        self.source = source
        self.path = path
        self.file = file
        self.inode = os.fstat(file.fileno()).st_ino if file is not None else None
        self.pos = pos
        self.partial = b""
        self.last_ts = time.time() if last_ts is None else last_ts

    @classmethod
    def at_end(cls, source: str, path: Path) -> Follower:
        """Following `path` from its last complete line on (or from its start once it
        exists)."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - held open while following
        except FileNotFoundError:
            return cls(source, path)
        st = os.fstat(f.fileno())
        return cls(source, path, f, complete_end(f, st.st_size), st.st_mtime)

    def poll(self) -> list[Entry]:
        """The lines completed since the last poll."""
        lines: list[str] = []
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self.file is not None:
            if st is None or st.st_ino != self.inode:  # rotated or removed: finish it
                lines += self._read(to_eof=True)
                if self.partial:
                    lines.append(_decode(self.partial))
                self.close()
            elif st.st_size < self.pos:  # truncated
                self.pos = 0
                self.partial = b""
        if self.file is None and st is not None:
            try:
                self.file = open(self.path, "rb")  # noqa: SIM115 - held open while following
            except FileNotFoundError:
                pass
            else:
                self.inode = os.fstat(self.file.fileno()).st_ino
                self.pos = 0
                self.partial = b""
        if self.file is not None:
            lines += self._read()
        return [self._entry(text) for text in lines]

    def _entry(self, text: str) -> Entry:
        entry = parse_line(text, self.source, self.last_ts)
        if entry.kind != "raw":
            self.last_ts = entry.ts
        return entry

    def _read(self, to_eof: bool = False) -> list[str]:
        assert self.file is not None
        self.file.seek(self.pos)
        data = self.file.read() if to_eof else self.file.read(MAX_READ)
        if not data:
            return []
        self.pos += len(data)
        parts = (self.partial + data).split(b"\n")
        self.partial = parts.pop()
        return [_decode(p) for p in parts]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = None
        self.inode = None


# --- the command --------------------------------------------------------------------------------


def level_arg(text: str) -> int:
    """`--level NAME` as the least level shown."""
    name = normalize_level(text)
    if name is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level "
                                         f"(one of {', '.join(LEVELS)})")
    return LEVELS[name]


def select_sources(names: Sequence[str]) -> tuple[str, ...]:
    """The logs asked for, in the canonical order; all of them when none is named."""
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise UsageError(f"unknown service {unknown[0]!r} (one of {', '.join(SOURCES)})")
    return tuple(s for s in SOURCES if s in names) if names else SOURCES


def log_path(config: NodeConfig, source: str) -> Path:
    paths = sv.Paths.of(config)
    return paths.log if source == SUPERVISORD else paths.program_log(source)


def _write(lines: Iterable[str]) -> None:
    text = "\n".join(lines)
    if text:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def cmd_logs(args: argparse.Namespace) -> int:
    config = require_config(args)
    sources = select_sources(args.services)
    filt = Filter(args.level or 0, args.grep or "", args.request_id)
    if not config.log_dir.is_dir():
        raise CliError(f"no logs yet: {config.log_dir} does not exist "
                       "(start the node with `ccoin node start`)")
    followers = [Follower.at_end(s, log_path(config, s)) for s in sources]
    try:
        present = [fl for fl in followers if fl.file is not None]
        if not present and not args.follow:
            raise CliError(f"no logs yet in {config.log_dir} "
                           f"(none of {', '.join(s + '.log' for s in sources)})")
        width = max(len(fl.source) for fl in present or followers)

        def show(entries: Iterable[Entry]) -> None:
            _write(json_line(e) if args.json else format_entry(e, width) for e in entries)

        streams = []
        for fl in present:
            assert fl.file is not None
            end = fl.pos if args.follow else os.fstat(fl.file.fileno()).st_size
            streams.append(tail_file(fl.file, fl.source, args.lines, filt, end, fl.last_ts))
        show(last(merge(streams), args.lines))
        if not args.follow:
            return 0
        if not present:
            note(f"waiting for logs in {config.log_dir} ...")
        try:
            while True:
                time.sleep(POLL_INTERVAL)
                show(e for e in merge(fl.poll() for fl in followers) if filt.matches(e))
        except KeyboardInterrupt:
            return 0  # Ctrl-C is how following ends
    finally:
        for fl in followers:
            fl.close()
