"""What every service process shares (runtime/service.py): here, its garbage collector."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from runtime.service import GC_THRESHOLDS


def test_a_service_starts_with_its_start_up_frozen_and_young_objects_collected_in_rounds(
        tmp_path: Path) -> None:
    # In a process of its own: freezing is for the life of the process.
    script = textwrap.dedent("""
        import gc, json, sys
        from runtime import service
        before = gc.get_threshold()
        service._start("probe", ["--config", sys.argv[1]])
        print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))
    """)
    config = tmp_path / "ccoin.json"
    config.write_text(json.dumps({"app": {"base_path": "data"}}))
    out = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True,
                         text=True, check=True).stdout
    before, after, frozen = json.loads(out)
    assert tuple(before) == (700, 10, 10)
    assert tuple(after) == GC_THRESHOLDS
    assert frozen > 10_000  # the modules imported and everything built before
