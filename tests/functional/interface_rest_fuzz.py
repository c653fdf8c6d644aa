"""interface_rest_fuzz: property-based fuzzing of the REST API from its own OpenAPI spec
(schemathesis: valid and invalid inputs for every documented operation) against a real
node. Properties: no 5xx (except a documented 503 `p2p_unavailable`/`unavailable`, which
mean "this service is not here now"), every error is `{"error": {"code", "message"}}`,
responses match the spec, and no service process restarted.

Bounded: a few examples per operation (about 20 s in all); the endless event stream is
left out (functional/interface_events.py covers it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from runtime.config import NodeConfig
from services.api.app import create_app
from tests.framework.node import TestNode

SPEC = create_app(NodeConfig(base_path=Path("/nonexistent")), 1337).openapi()
# a request that breaks the schema may also be refused as too large (413) or, for an admin
# route, forbidden; every refusal carries its code (checked below)
# Transactions: a schema-valid body is still refused unless it carries a real signature
# and fits the account (bad_signature, insufficient_funds...); a peer's schema-valid page
# URL may name no node (422 peer_url_unreachable): "valid data accepted" cannot hold there,
# the other checks do.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({
    "checks": {"negative_data_rejection": {
        "expected-statuses": [400, 403, 404, 405, 409, 413, 429]}},
    "operations": [{"include-path-regex": "^/api/v1/(txs|wallet/send|peers)$",
                    "checks": {"positive_data_acceptance": {"enabled": False}}}],
})
SCHEMA = schemathesis.openapi.from_dict(SPEC, config=CONFIG).exclude(path="/api/v1/events")
RETRY_LATER = {"p2p_unavailable", "unavailable", "pool_full", "wallet_unavailable"}
STARTED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("fuzz"), interval_ms=500) as n:
        n.start("state", "miner", "api")
        STARTED.update(n.pids())
        yield n


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_fuzz(case: Any, node: TestNode) -> None:
    response = case.call(base_url=node.url, timeout=15)
    status = response.status_code
    if status >= 400 and not (case.path == "/metrics"):
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"error"}, response.text[:300]
        err = body["error"]
        assert isinstance(err.get("code"), str) and err["code"], body
        assert isinstance(err.get("message"), str) and err["message"], body
        if status >= 500:
            assert status == 503 and err["code"] in RETRY_LATER, body
    # the spec and the behaviour agree (schema, status codes, content types)
    case.validate_response(response, excluded_checks=[not_a_server_error])


def test_no_service_restarted(node: TestNode) -> None:
    assert node.alive() and node.pids() == STARTED
    assert node.http.get("/health").json() == {**node.http.get("/health").json(),
                                               "status": "ok", "state": "ok"}
