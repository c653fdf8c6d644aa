"""What /proc says about a node's processes: whether a pid is alive or only a zombie, and
the services a supervisord killed with SIGKILL left running (Linux; elsewhere nothing is
found and a live pid is trusted)."""

from __future__ import annotations

import os
from pathlib import Path


def leftover_services(config_files: list[Path]) -> list[tuple[int, str]]:
    """(pid, service) of live `python -m services.X --config F` processes for one of
    `config_files`: what a supervisord killed with SIGKILL leaves running (holding the
    database lock and the api port). Linux only; elsewhere nothing is found."""
    wanted = {str(f.resolve()) for f in config_files}
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        args = argv.split("\0")
        try:
            module = args[args.index("-m") + 1]
            config = args[args.index("--config") + 1]
        except (ValueError, IndexError):
            continue
        if module.startswith("services.") and config in wanted and not reaped(int(entry)):
            found.append((int(entry), module.removeprefix("services.")))
    return sorted(found)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reaped(pid: int) -> bool:
    """True when `pid` is a zombie (exited, not yet reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
