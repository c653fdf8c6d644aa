"""The single-submission routes dispatched by `services.api.hotroutes`, through the gateway
over the real state service: they answer as the FastAPI routes they are declared as (the
edge's request id, Server-Timing and metrics under the route's template, the admin rule of
`/wallet/send`, the one error shape), and every other request still goes to FastAPI."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.unit.services.api.support import ED, TO, as_json, run, signed, state_node


async def _requests_counted(http: httpx.AsyncClient, route: str, status: int) -> float:
    wanted = f'ccoin_api_requests_total{{method="POST",route="{route}",status="{status}"}}'
    for line in (await http.get("/metrics")).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == wanted:
            return float(value)
    return 0.0


def test_a_single_submission_answers_as_its_declared_route(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,)) as node:
            http = node.http
            before = await _requests_counted(http, "/api/v1/txs", 202)
            tx = signed(0)
            r = await http.post("/api/v1/txs", json=as_json(tx),
                                headers={"X-Request-ID": "hot-1"})
            assert r.status_code == 202, r.text
            assert r.json()["id"] == tx.id.hex()
            assert r.headers["x-request-id"] == "hot-1"
            steps = {part.split(";")[0].strip() for part in
                     r.headers["server-timing"].split(",")}
            assert steps == {"parse", "state", "app"}
            assert await _requests_counted(http, "/api/v1/txs", 202) == before + 1
            assert (await http.get(f"/api/v1/txs/{tx.id.hex()}")).json()["status"] == "pending"

            r = await http.post("/api/v1/txs", content=b"{not json")
            assert r.status_code == 400 and r.json()["error"]["code"] == "malformed"
            r = await http.post("/api/v1/txs", json=as_json(tx, signature="00" * 64))
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_signature"
            assert await _requests_counted(http, "/api/v1/txs", 400) >= 2

            # the same path with another method, and the path beside it, are FastAPI's
            r = await http.get("/api/v1/txs")
            assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
            assert (await http.post("/api/v1/txs/batch", json={"txs": []})).status_code == 200

    run(scenario)


def test_the_node_signed_send_keeps_its_admin_rule(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            body = {"to": TO.hex(), "amount": 1}
            r = await node.http.post("/api/v1/wallet/send", json=body,
                                     headers={"X-Forwarded-For": "1.2.3.4"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            r = await node.http.post("/api/v1/wallet/send", json=body)  # admitted: no wallet
            assert r.status_code == 409 and r.json()["error"]["code"] == "no_wallet"
            assert await _requests_counted(node.http, "/api/v1/wallet/send", 403) == 1

    run(scenario)
