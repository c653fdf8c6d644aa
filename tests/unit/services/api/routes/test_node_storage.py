"""What a client sees of state's storage problems (services/state/storage.py), through the
gateway over the real state service in-process: 503 `storage_unavailable` for a
submission (never 500), readiness failing on `storage` with the reason, `GET /status`'s
`storage` member, and the `ccoin_storage_*` metrics; `/health` (liveness) stays 200 but
says `degraded` while the problem can clear by itself, and is 503 for damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.framework.stored_chain import ENOSPC, CorruptReads, FailingWrites, free_space_as_n
from tests.unit.services.api.support import ED, as_json, run, signed, state_node

HUGE_MB = 10**7  # 10 TB: more than any test disk has free


async def _json(http: httpx.AsyncClient, path: str, status: int) -> Any:
    r = await http.get(path)
    assert r.status_code == status, r.text
    return r.json()


async def _refused(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    r = await http.post("/api/v1/txs", json=body)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "storage_unavailable"
    assert r.headers.get("retry-after")
    message: str = r.json()["error"]["message"]
    return message


def test_low_disk_space_is_503_and_named_by_readiness_status_and_metrics(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,),
                              config={"chain": {"min_free_mb": HUGE_MB}}) as node:
            http = node.http
            message = free_space_as_n(await _refused(http, as_json(signed(0))))
            assert message.startswith("disk space low: N MB free ")
            assert "chain.min_free_mb" in message
            ready = await _json(http, "/api/v1/ready", 503)
            assert ready["checks"]["storage"]["status"] == "fail"
            assert free_space_as_n(ready["checks"]["storage"]["detail"]) == message
            assert f"storage: {message}" in map(free_space_as_n, ready["reasons"])
            storage = (await _json(http, "/api/v1/status", 200))["storage"]
            assert storage["ok"] is False and free_space_as_n(storage["problem"]) == message
            assert storage["min_free_bytes"] == HUGE_MB * 2**20 > storage["free_bytes"] > 0
            metrics = dict(line.split(" ", 1) for line in (await http.get("/metrics")).text
                           .splitlines() if line.startswith("ccoin_storage_"))
            assert float(metrics["ccoin_storage_ok"]) == 0
            assert float(metrics["ccoin_storage_min_free_bytes"]) == HUGE_MB * 2**20
            assert float(metrics["ccoin_storage_free_bytes"]) > 0
            health = await _json(http, "/health", 200)  # alive: it clears by itself
            assert health["status"] == "degraded"
            assert free_space_as_n(health["storage"]) == message
            assert health["error"]["code"] == "storage_unavailable"

    run(scenario)


def test_a_failed_write_is_503_not_500(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,)) as node:
            http = node.http
            r = await http.post("/api/v1/txs", json=as_json(signed(0)))
            assert r.status_code == 202, r.text
            assert (await _json(http, "/api/v1/status", 200))["storage"]["ok"] is True
            store = node.service.chain.store
            store.db = FailingWrites(store.db).fail(ENOSPC)
            assert "No space left on device" in await _refused(http, as_json(signed(1)))
            r = await http.post("/api/v1/txs/batch", json={"txs": [as_json(signed(1))]})
            assert r.status_code == 503, r.text
            ready = await _json(http, "/api/v1/ready", 503)
            assert "No space left on device" in ready["checks"]["storage"]["detail"]
            first = signed(0).id.hex()
            assert (await _json(http, f"/api/v1/txs/{first}", 200))["status"] == "pending"
            health = await _json(http, "/health", 200)
            assert health["status"] == "degraded"
            assert "No space left on device" in health["storage"]

    run(scenario)


def test_damage_found_at_run_time_fails_health_with_the_remedy(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,)) as node:
            http = node.http
            assert (await _json(http, "/health", 200))["storage"] == "ok"
            store = node.service.chain.store
            store.db = CorruptReads(store.db)
            r = await http.get("/api/v1/accounts/" + "ab" * 20)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "storage_unavailable"
            health = await _json(http, "/health", 503)
            assert health["status"] == "unavailable" and health["state"] == "ok"
            assert "is damaged" in health["storage"] and "ccoin node check" in health["storage"]
            assert health["error"]["code"] == "storage_unavailable"
            assert "is damaged" in await _refused(http, as_json(signed(0)))

    run(scenario)
