"""The OpenAPI document (`services.api.openapi`) and what the routes really accept: every
route's documented request body is a declared shape, its documented example is accepted by
that route, and a member the model does not have is refused, so docs and parser cannot
drift apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from common.errors import Malformed
from services.api import schema
from services.api.app import create_app
from services.api.spec import Shape
from tests.unit.services.api.support import offline_config, run, serving, state_node

SHAPES = {shape.name: shape for shape in schema.REQUEST_SHAPES}
PARSE_REFUSALS = ("malformed", "too_large")  # what a parser says; other codes come later


def request_bodies(doc: dict[str, Any]) -> list[tuple[str, str, list[Shape]]]:
    """(method, path, the shapes its body may take) of every documented request body."""
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody")
            if body is None:
                continue
            schema_ = body["content"]["application/json"]["schema"]
            refs = [s["$ref"] for s in schema_.get("oneOf", [schema_])]
            names = [ref.rsplit("/", 1)[1] for ref in refs]
            assert all(name in SHAPES for name in names), (path, names)  # declared shapes only
            out.append((method.upper(), path, [SHAPES[name] for name in names]))
    return out


def test_openapi_documents_the_routes(tmp_path: Path) -> None:
    app = create_app(offline_config(tmp_path), 1337)

    async def scenario() -> None:
        async with serving(app) as http:
            doc = (await http.get("/openapi.json")).json()
            paths = doc["paths"]
            for path in ("/health", "/metrics", "/api/v1/status", "/api/v1/blocks",
                         "/api/v1/blocks/{ref}", "/api/v1/txs", "/api/v1/txs/batch",
                         "/api/v1/txs/{tx_id}", "/api/v1/accounts/{address}",
                         "/api/v1/mempool", "/api/v1/mining", "/api/v1/mining/start",
                         "/api/v1/wallet", "/api/v1/wallet/send", "/api/v1/events"):
                assert path in paths, path
            schemas = doc["components"]["schemas"]
            for name in ("TxIn", "RawTxIn", "BatchIn", "SendIn", "PeerIn", "ErrorOut",
                         "BlockOut"):
                assert name in schemas, name
            assert "HTTPValidationError" not in schemas
            # FastAPI's 422 is gone (invalid input is 400 `malformed`); a route's own stays
            assert all("422" not in op["responses"] or "ErrorOut" in str(op["responses"]["422"])
                       for ops in paths.values() for op in ops.values())
            assert "422" in paths["/api/v1/peers"]["post"]["responses"]
            body = paths["/api/v1/txs"]["post"]["requestBody"]["content"]["application/json"]
            assert [s["$ref"] for s in body["schema"]["oneOf"]] == [
                "#/components/schemas/TxIn", "#/components/schemas/RawTxIn"]
            batch = paths["/api/v1/txs/batch"]["post"]["requestBody"]["content"]
            assert batch["application/json"]["schema"] == {"$ref": "#/components/schemas/BatchIn"}
            binary = batch["application/msgpack"]["schema"]
            assert binary["format"] == "binary" and "msgpack array of bins" in binary["description"]
            assert "admin" in paths["/api/v1/wallet/send"]["post"]["tags"]
            assert set(paths["/api/v1/wallet/send"]["post"]["responses"]) >= {"202", "403"}
            docs = await http.get("/docs")
            assert docs.status_code == 200 and "swagger" in docs.text.lower()
            # everything the page loads comes from this node (no CDN: nodes run offline)
            refs = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", docs.text)
            assert refs and all(r.startswith("/") for r in refs), refs
            for ref in refs:
                if ref.startswith("/docs/assets/"):
                    asset = await http.get(ref)
                    assert asset.status_code == 200 and len(asset.content) > 1000, ref
                    again = await http.get(ref, headers={"If-None-Match": asset.headers["etag"]})
                    assert again.status_code == 304
            missing = await http.get("/docs/assets/swagger-ui.js.map")
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
            assert (await http.get("/redoc")).status_code == 404

    run(scenario)


@pytest.mark.parametrize("shape", schema.REQUEST_SHAPES, ids=lambda s: s.name)
def test_model_and_parser_know_the_same_fields(shape: Shape) -> None:
    doc = shape.model.model_json_schema()
    assert set(doc["properties"]) == shape.names
    required = {f.name for f in shape.fields if f.must_be_sent}
    assert set(doc.get("required", ())) == required
    assert shape.examples, f"{shape.name} documents no example"
    for example in shape.examples:
        shape.model.model_validate(example)  # the example is what the docs say
        shape.parse(example)  # and what the parser takes
        with pytest.raises(Malformed, match="unknown field"):
            shape.parse({**example, "not_a_field": 1})
        for name in required:
            with pytest.raises(Malformed, match="missing field"):
                shape.parse({k: v for k, v in example.items() if k != name})


def test_every_route_accepts_its_documented_example_and_refuses_other_fields(
        tmp_path: Path) -> None:
    """Walks the document: each route's request body examples, posted to that very route
    of a gateway over a real state service, pass its parser (a transaction is accepted);
    with a member the model does not have, the route answers 400 `malformed`."""

    async def scenario() -> None:
        async with state_node(tmp_path, funded=(schema.EXAMPLE_SIGNER.address,)) as node:
            bodies = request_bodies(node.app.openapi())
            assert {path for _, path, _ in bodies} == {
                "/api/v1/txs", "/api/v1/txs/batch", "/api/v1/wallet/send", "/api/v1/peers",
                "/api/v1/consensus/proposals"}
            for method, path, shapes in bodies:
                for shape in shapes:
                    for example in shape.examples:
                        response = await node.http.request(method, path, json=example)
                        body = response.json()
                        code = body.get("error", {}).get("code") if response.is_error else ""
                        assert code not in PARSE_REFUSALS, (path, shape.name, body)
                        if path.startswith("/api/v1/txs"):
                            assert response.is_success, (path, body)
                            assert body.get("accepted", 1) == len(example.get("txs", [1]))
                        extra = {**example, "not_a_field": 1}
                        response = await node.http.request(method, path, json=extra)
                        assert response.status_code == 400, (path, response.text)
                        error = response.json()["error"]
                        assert error["code"] == "malformed" and "not_a_field" in error["message"]

    run(scenario)
