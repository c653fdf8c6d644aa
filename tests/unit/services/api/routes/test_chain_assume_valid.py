"""Assume-valid sync as the gateway shows it (services/api/routes/chain.py `GET /status`,
services/api/metrics.py), from the real p2p node's status over the real bus: the block, what
sync is doing about it and what it skipped; null in the status when no p2p service answers.
A sync that skips signatures is tested in tests/unit/services/p2p/test_assumevalid.py and,
through the REST API, in tests/functional/p2p_network.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.api import replies
from tests.unit.services.api.support import offline_app, run, state_node

ASSUMED = bytes.fromhex("6a" * 32)


async def status_of(http: Any) -> dict[str, Any]:
    r = await http.get("/api/v1/status")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    replies.STATUS_OUT.model.model_validate(body)
    return body


async def metrics_of(http: Any) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    return {name: float(value) for name, value in
            (line.split(" ", 1) for line in text.splitlines() if line.startswith("ccoin_sync_"))}


def test_a_configured_block_not_yet_found_is_shown_with_nothing_skipped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, p2p=True,
                              p2p_settings={"assume_valid": ASSUMED}) as node:
            body = await status_of(node.http)
            assert body["assume_valid"] == {"block": ASSUMED.hex(), "state": "searching",
                                            "height": None, "signatures_skipped": 0,
                                            "blocks_skipped": 0}
            assert await metrics_of(node.http) == {
                "ccoin_sync_assume_valid": 1.0, "ccoin_sync_assume_valid_reached": 0.0,
                "ccoin_sync_signatures_skipped_total": 0.0,
                "ccoin_sync_assume_valid_blocks_total": 0.0}

    run(scenario)


def test_without_a_block_it_is_off_and_without_p2p_unknown(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path / "p2p", p2p=True) as node:
            body = await status_of(node.http)
            assert body["assume_valid"] == {"block": None, "state": "off", "height": None,
                                            "signatures_skipped": 0, "blocks_skipped": 0}
            assert (await metrics_of(node.http))["ccoin_sync_assume_valid"] == 0.0
        async with state_node(tmp_path / "alone") as node:
            body = await status_of(node.http)
            assert body["p2p"] is False and body["assume_valid"] is None
            assert await metrics_of(node.http) == {}  # unknown: no series rather than zeros
        async with offline_app(tmp_path / "offline") as http:  # nothing behind it at all
            assert "ccoin_sync_" not in (await http.get("/metrics")).text

    run(scenario)
