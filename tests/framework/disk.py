"""`SmallDisk`: a real, small filesystem to fill and free (a tmpfs of a few MB mounted for
the test: root only), for the storage-fault tests (issue 10). Filling it is a file written
until the kernel says ENOSPC; freeing it is that file removed."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from types import TracebackType

PAGE = 4096  # tmpfs hands out space by the page


def unavailable_reason() -> str:
    """Why no tmpfs can be mounted here ("" when it can)."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs (a disk to fill) needs root, as CI runs the suite"
    return ""


class SmallDisk:
    """A tmpfs of `size_mb` mounted at `path` for the life of the `with` block."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.filler = path / "filler"

    def __enter__(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0755",
                        "tmpfs", str(self.path)], check=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # lazily: a process of a failed test may still hold a file open in it
        subprocess.run(["umount", "-l", str(self.path)], check=False)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take all the free space but `leave` bytes (rounded down to pages): with 0, the
        next write that needs a new page fails with ENOSPC."""
        with open(self.filler, "ab", buffering=0) as f:
            for chunk in (1 << 20, PAGE):
                while self.free_bytes() - chunk >= leave:
                    try:
                        f.write(bytes(chunk))
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)
