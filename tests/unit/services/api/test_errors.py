"""The gateway's one error shape (`services.api.errors`): every failure is
`{"error": {"code", "message"}}` with the status its error class declares, FastAPI's own
refusals included; 405 names the allowed methods; 429/503 say when to retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from common.errors import REGISTRY, CcoinError, http_status
from services.api.app import create_app
from tests.unit.services.api.support import (
    TO,
    as_json,
    offline_config,
    run,
    serving,
    signed,
    state_node,
)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    retry = response.headers.get("retry-after")
    assert (retry == "1") == (status in (429, 503)), (status, retry)


def test_app_error_shapes(tmp_path: Path) -> None:
    """What the gateway refuses by itself, before (or without) asking state."""
    app = create_app(offline_config(tmp_path), 1337, body_limit=64 * 1024)

    async def scenario() -> None:
        async with serving(app) as http:
            cases: list[tuple[str, str, dict[str, Any], int, str]] = [
                ("GET", "/nope", {}, 404, "not_found"),
                ("DELETE", "/api/v1/status", {}, 405, "method_not_allowed"),
                ("GET", "/api/v1/blocks?limit=101", {}, 400, "malformed"),
                ("GET", "/api/v1/blocks?limit=true", {}, 400, "malformed"),
                ("GET", "/api/v1/blocks?start=-5", {}, 400, "malformed"),
                ("GET", "/api/v1/blocks/nope", {}, 400, "malformed"),
                ("GET", "/api/v1/txs/1234", {}, 400, "malformed"),
                ("GET", "/api/v1/accounts/xyz", {}, 400, "malformed"),
                ("GET", "/api/v1/accounts/" + "ab" * 20 + "/txs?before=1", {}, 400,
                 "malformed"),
                ("GET", "/api/v1/mempool?limit=100000", {}, 400, "malformed"),
                ("GET", "/api/v1/mempool?sender=12", {}, 400, "malformed"),
                ("GET", "/api/v1/events?types=head,nope", {}, 400, "malformed"),
                ("GET", "/api/v1/events?types=" + "head," * 50, {}, 400, "malformed"),
                ("POST", "/api/v1/txs", {"content": b"{"}, 400, "malformed"),
                ("POST", "/api/v1/txs", {"content": b"x" * 70_000}, 413, "too_large"),
                ("POST", "/api/v1/txs", {"json": as_json(signed(), amount=True)}, 400,
                 "malformed"),
                ("POST", "/api/v1/txs", {"json": as_json(signed(), signature="00" * 64)}, 400,
                 "bad_signature"),
                ("POST", "/api/v1/txs", {"json": as_json(signed(chain_id=1))}, 400,
                 "wrong_chain"),
                ("POST", "/api/v1/txs/batch", {"content": b"[]"}, 400, "malformed"),
                ("POST", "/api/v1/peers", {"json": {"endpoint": "tcp://10.0.0.7:1"}}, 503,
                 "p2p_unavailable"),
                ("POST", "/api/v1/sync", {}, 503, "p2p_unavailable"),
                ("POST", "/api/v1/mining/start", {}, 409, "not_a_validator"),
                ("POST", "/api/v1/mining/stop", {"headers": {"X-Forwarded-For": "1.2.3.4"}},
                 403, "forbidden"),
                ("GET", "/api/v1/wallet", {}, 409, "no_wallet"),
                ("POST", "/api/v1/wallet/send", {"json": {"to": TO.hex(), "amount": 1}}, 409,
                 "no_wallet"),
            ]
            for method, url, kw, status, code in cases:
                assert_error(await http.request(method, url, **kw), status, code)
            mining = (await http.get("/api/v1/mining")).json()
            assert mining["mining"] is False and mining["validator"] is False

    run(scenario)


def test_405_names_the_methods_the_path_takes(tmp_path: Path) -> None:
    app = create_app(offline_config(tmp_path), 1337)

    async def scenario() -> None:
        async with serving(app) as http:
            for method, url, allowed in (("DELETE", "/api/v1/status", "GET"),
                                         ("GET", "/api/v1/txs/batch", "POST"),
                                         ("PUT", "/api/v1/peers", "GET, POST"),
                                         ("POST", "/api/v1/txs/" + "ab" * 32, "GET")):
                response = await http.request(method, url)
                assert_error(response, 405, "method_not_allowed")
                assert response.headers["allow"] == allowed, (url, response.headers)

    run(scenario)


def test_chunked_body_over_the_limit(tmp_path: Path) -> None:
    app = create_app(offline_config(tmp_path), 1337, body_limit=64 * 1024)

    async def scenario() -> None:
        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 10_000

        async with serving(app) as http:
            response = await http.post("/api/v1/txs/batch", content=chunks())
            assert_error(response, 413, "too_large")

    run(scenario)


def test_every_registered_error_answers_with_its_declared_status(tmp_path: Path) -> None:
    """A route that raises any error of the registry answers that error's code with the
    status its class declares: the registry is the only table of statuses."""
    app = create_app(offline_config(tmp_path), 1337)

    async def raise_it(code: str) -> None:
        raise REGISTRY[code]("raised by a test route")

    async def crash() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test/raise/{code}", raise_it)
    app.add_api_route("/test/crash", crash)

    async def scenario() -> None:
        async with serving(app, raise_app_exceptions=False) as http:
            for code, cls in REGISTRY.items():
                assert_error(await http.get(f"/test/raise/{code}"), cls.http_status, code)
            # a bug is a 500 `internal` that says nothing of the exception
            response = await http.get("/test/crash")
            assert_error(response, 500, "internal")
            assert "a bug" not in response.text

    run(scenario)


def test_every_wire_error_code_has_a_4xx_or_503_status() -> None:
    tx_codes = ("malformed", "too_large", "bad_signature", "wrong_chain", "nonce_too_low",
                "nonce_gap", "insufficient_funds", "duplicate", "underpriced", "not_found",
                "forbidden", "invalid_transaction")
    for code in tx_codes:
        assert code in REGISTRY
        assert 400 <= http_status(code) < 500, code
    assert http_status("pool_full") == 503
    assert http_status("unavailable") == 503
    assert http_status("something_new") == 500


def test_errors_state_sends_back_keep_their_class_and_status(tmp_path: Path) -> None:
    """An error state answers with crosses the bus by code and leaves the gateway as the
    same class, with its status: not_found for an unknown transaction or block."""

    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            assert_error(await node.http.get("/api/v1/txs/" + "ab" * 32), 404, "not_found")
            assert_error(await node.http.get("/api/v1/blocks/99"), 404, "not_found")
            tx = signed()  # its sender has no funds on this chain
            response = await node.http.post("/api/v1/txs", json={"raw": tx.raw.hex()})
            assert_error(response, http_status("insufficient_funds"), "insufficient_funds")

    run(scenario)


def test_an_error_of_an_unknown_code_keeps_its_status() -> None:
    from services.api.errors import error_response

    err = CcoinError("from a newer node")
    err.code = "brand_new"  # type: ignore[misc]
    err.http_status = 422  # type: ignore[misc]
    response = error_response(err)
    assert response.status_code == 422 and b"brand_new" in response.body
