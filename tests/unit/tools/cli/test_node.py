"""`ccoin node ...` and `ccoin quickstart` (tools/cli/node.py), in process and without
starting anything: what the node commands say when no node runs, and a quickstart
`--dry-run` that creates a dev chain, then resumes it, and leaves a foreign directory
alone. (Starting a node for real: functional/feature_node_e2e.py, interface_supervisor.py.)"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from runtime.ports import free_port
from tests.conftest import Run, one_line_error


def test_node_commands_without_a_running_node(run: Run, tmp_path: Path) -> None:
    code, _, err = run("node", "status", "--data", str(tmp_path))
    one_line_error(code, err, "no node config")
    (tmp_path / "node.json").write_text(json.dumps({"app": {"base_path": str(tmp_path)}}))
    for cmd in ("status", "stop", "restart"):
        code, _, err = run("node", cmd, "--data", str(tmp_path))
        one_line_error(code, err, "node is not running")
    (tmp_path / "node.json").write_text('{"app": {"base_path": 1}}')
    code, _, err = run("node", "status", "--data", str(tmp_path))
    one_line_error(code, err, "app.base_path")


def test_quickstart_creates_then_resumes(run: Run) -> None:
    base = Path(tempfile.mkdtemp(prefix="ccq-", dir="/tmp"))
    try:
        data, port = base / "data", free_port()
        code, out, err = run("quickstart", "--data", str(data), "--port", str(port),
                             "--dry-run")
        assert code == 0, err
        assert "Genesis block has been mined: nonce=" in err
        developer = (data / "developer.txt").read_text().strip()
        assert f"developer account {developer} (genesis balance 1000000000)" in out
        assert f"http://127.0.0.1:{port}/" in out and "make clean-data" in out
        assert f"ccoin send --data {data} --from {developer}" in out
        assert out.strip().endswith("run/supervisord.conf")
        genesis = (data / "genesis.json").read_text()
        config = json.loads((data / "node.json").read_text())
        assert config["api"]["port"] == port

        # a second run resumes the same chain; a new --port is remembered
        port2 = free_port()  # not port + 1: that one may be taken
        code, out, err = run("quickstart", "--data", str(data), "--port", str(port2),
                             "--dry-run")
        assert code == 0, err
        assert "resuming" in out and "Genesis block" not in err
        assert (data / "genesis.json").read_text() == genesis
        assert json.loads((data / "node.json").read_text())["api"]["port"] == port2

        # a directory that is not a ccoin data dir is left alone
        other = base / "other"
        other.mkdir()
        (other / "precious.txt").write_text("x")
        code, _, err = run("quickstart", "--data", str(other), "--dry-run")
        one_line_error(code, err, "not a ccoin data dir")
    finally:
        shutil.rmtree(base, ignore_errors=True)
