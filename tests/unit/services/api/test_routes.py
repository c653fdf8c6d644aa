"""Every route against a real state service served in-process (LevelDB in a temporary
directory, the bus over inproc://): the answers are right, and every JSON reply is a valid
instance of the model `/docs` shows for its route, so the documentation and the renderer
cannot drift apart. Milliseconds, no process started."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import msgpack

from common import messages
from common.crypto import PrivateKey, Signer
from services.api import chainhealth, dashboard, node_replies, readiness, replies, schema
from services.api.spec import Shape
from tests.framework import rules
from tests.unit.services.api.support import (
    CHAIN,
    ED,
    StateNode,
    as_json,
    run,
    signed,
    signed_anyway,
    state_node,
)

MODELS: dict[str, Any] = {shape.name: shape.model
                          for module in (replies, node_replies, chainhealth, readiness)
                          for shape in vars(module).values() if isinstance(shape, Shape)}
MODELS["WhoamiOut"] = dashboard.WhoamiOut


def documented_replies(app: Any) -> dict[tuple[str, str, int], Any]:
    """(method, path template, status) -> the model of the JSON reply `/openapi.json`
    documents for it."""
    out = {}
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            for status, response in op.get("responses", {}).items():
                schema_ = response.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and schema_ and "$ref" in schema_:
                    out[(method.upper(), path, int(status))] = \
                        MODELS[schema_["$ref"].rsplit("/", 1)[1]]
    return out


def check(node: StateNode, method: str, template: str, response: httpx.Response,
          status: int = 200) -> dict[str, Any]:
    """`response` has `status` and a body its route's documented model accepts."""
    assert response.status_code == status, (template, response.text)
    body: dict[str, Any] = response.json()
    documented_replies(node.app)[(method, template, status)].model_validate(body)
    CHECKED.add((method, template))
    return body


CHECKED: set[tuple[str, str]] = set()


def verify_proof(txid: str, proof: dict[str, Any]) -> str:
    acc = hashlib.sha256(b"\x00" + bytes.fromhex(txid)).digest()
    for step in proof["steps"]:
        sibling = bytes.fromhex(step["hash"])
        acc = hashlib.sha256(b"\x01" + (sibling + acc if step["left"] else acc + sibling)
                             ).digest()
    return acc.hex()


def test_every_route_answers_what_it_documents(tmp_path: Path) -> None:
    txs = [signed(n) for n in range(6)]

    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,)) as node:
            http = node.http
            # submissions: each form of a transaction, a batch with good and bad items
            one = check(node, "POST", "/api/v1/txs",
                        await http.post("/api/v1/txs", json=as_json(txs[0])), 202)
            assert one == {"id": txs[0].id.hex()}
            raw = await http.post("/api/v1/txs", json={"raw": txs[1].raw.hex()})
            check(node, "POST", "/api/v1/txs", raw, 202)
            steps = [part.split(";dur=") for part in raw.headers["server-timing"].split(", ")]
            assert [name for name, _ in steps] == ["parse", "state", "app"]
            assert all(float(ms) > 0 for _, ms in steps)
            batch = check(node, "POST", "/api/v1/txs/batch", await http.post(
                "/api/v1/txs/batch", json={"txs": [
                    as_json(txs[2]), {"raw": txs[3].raw.hex()},
                    as_json(txs[4], signature="00" * 64), as_json(txs[2]), "nonsense"]}))
            codes = [item.get("status") or item["error"]["code"] for item in batch["results"]]
            assert codes == ["accepted", "accepted", "bad_signature", "duplicate", "malformed"]
            assert batch["accepted"] == 2 and "id" not in batch["results"][4]
            binary = check(node, "POST", "/api/v1/txs/batch", await http.post(
                "/api/v1/txs/batch", content=msgpack.packb([txs[5].raw, b"\x90", txs[3].raw]),
                headers={"content-type": "application/msgpack"}))
            assert [item.get("status") or item["error"]["code"]
                    for item in binary["results"]] == ["accepted", "malformed", "accepted"]
            assert binary["results"][0]["id"] == txs[5].id.hex()
            # asked for in msgpack: the same answer, ids as bytes; refusals of state's (an
            # unfunded sender; an amount of 0 signed all the same, which the gateway reads
            # for its signature only) and one of the gateway's among them
            poor = signed(0, signer=Signer(PrivateKey.generate()))
            body = msgpack.packb([txs[5].raw, b"\x90", poor.raw, signed_anyway(0)])
            as_json_reply = check(node, "POST", "/api/v1/txs/batch", await http.post(
                "/api/v1/txs/batch", content=body,
                headers={"content-type": "application/msgpack"}))
            packed = await http.post("/api/v1/txs/batch", content=body, headers={
                "content-type": "application/msgpack",
                "accept": "application/json;q=0.5, application/msgpack"})
            assert packed.status_code == 200
            assert packed.headers["content-type"] == "application/msgpack"
            in_msgpack = msgpack.unpackb(packed.content)
            assert in_msgpack["results"][2]["id"] == poor.id
            assert in_msgpack["results"][2]["error"]["code"] == "insufficient_funds"
            zero = in_msgpack["results"][3]
            assert "id" not in zero and zero["error"]["code"] == "malformed"
            assert "amount" in zero["error"]["message"]
            assert {**in_msgpack, "results": [
                {**r, "id": r["id"].hex()} if "id" in r else r
                for r in in_msgpack["results"]]} == as_json_reply
            not_json = await http.post("/api/v1/txs/batch", content=msgpack.packb([]))
            assert not_json.json()["error"]["code"] == "malformed"  # no media type: JSON

            pool = check(node, "GET", "/api/v1/mempool", await http.get("/api/v1/mempool"))
            assert pool["count"] == 5 and [t["nonce"] for t in pool["txs"]] == [0, 1, 2, 3, 5]
            mine = check(node, "GET", "/api/v1/mempool", await http.get(
                f"/api/v1/mempool?sender={ED.address.hex()}&limit=2"))
            assert mine["sender"] == ED.address.hex() and len(mine["txs"]) == 2
            pending = check(node, "GET", "/api/v1/txs/{tx_id}",
                            await http.get(f"/api/v1/txs/{txs[3].id.hex()}"))
            assert pending["status"] == "pending" and pending["block"] is None

            # a block with the first two, imported through the state service
            ref = rules.Chain(node.service.chain.genesis)
            block = ref.build_and_apply(txs[:2])
            result = node.service.submit_block(messages.SubmitBlock(block.raw))
            assert result.status == "head"

            status = check(node, "GET", "/api/v1/status", await http.get("/api/v1/status"))
            assert (status["height"], status["head"], status["network_id"]) == \
                (1, block.hash.hex(), CHAIN)
            assert status["mempool"]["count"] == 3 and status["mining"] is False
            count = check(node, "GET", "/api/v1/blocks/count",
                          await http.get("/api/v1/blocks/count"))
            assert count == {"count": 2}
            page = check(node, "GET", "/api/v1/blocks", await http.get("/api/v1/blocks"))
            assert [b["header"]["height"] for b in page["blocks"]] == [1, 0]
            assert page["blocks"][0]["txs"] == [t.id.hex() for t in txs[:2]]
            full = check(node, "GET", "/api/v1/blocks",
                         await http.get("/api/v1/blocks?order=asc&full=true&start=1"))
            assert full["blocks"][0]["txs"][1]["id"] == txs[1].id.hex()
            by_height = check(node, "GET", "/api/v1/blocks/{ref}",
                              await http.get("/api/v1/blocks/1"))
            by_hash = check(node, "GET", "/api/v1/blocks/{ref}",
                            await http.get(f"/api/v1/blocks/0x{block.hash.hex()}"))
            assert by_height == by_hash and by_hash["on_main_chain"] is True

            confirmed = check(node, "GET", "/api/v1/txs/{tx_id}",
                              await http.get(f"/api/v1/txs/{txs[1].id.hex()}"))
            assert (confirmed["status"], confirmed["height"], confirmed["index"]) == \
                ("confirmed", 1, 1)
            proof = check(node, "GET", "/api/v1/txs/{tx_id}/proof",
                          await http.get(f"/api/v1/txs/{txs[1].id.hex()}/proof"))
            assert verify_proof(txs[1].id.hex(), proof) == by_hash["header"]["tx_root"]

            account = check(node, "GET", "/api/v1/accounts/{address}",
                            await http.get(f"/api/v1/accounts/{ED.address.hex()}"))
            assert (account["nonce"], account["pending_nonce"]) == (2, 4)
            history = check(node, "GET", "/api/v1/accounts/{address}/txs", await http.get(
                f"/api/v1/accounts/{ED.address.hex()}/txs?limit=1"))
            assert history["total"] == 2 and history["next"] == "1:1"
            assert history["items"][0]["id"] == txs[1].id.hex()
            older = check(node, "GET", "/api/v1/accounts/{address}/txs", await http.get(
                f"/api/v1/accounts/{ED.address.hex()}/txs?before={history['next']}"))
            assert [i["id"] for i in older["items"]] == [txs[0].id.hex()]
            assert older["items"][0]["amount"] == 10 and older["next"] is None

            tips = check(node, "GET", "/api/v1/chain/tips", await http.get("/api/v1/chain/tips"))
            assert tips["tips"][0]["status"] == "active"
            consensus = check(node, "GET", "/api/v1/consensus",
                              await http.get("/api/v1/consensus?window=10"))
            assert consensus["consensus"] == "pow" and consensus["window"] == 10
            samples = check(node, "GET", "/api/v1/mempool/history",
                            await http.get("/api/v1/mempool/history"))
            assert isinstance(samples["samples"], list)
            peers = check(node, "GET", "/api/v1/peers", await http.get("/api/v1/peers"))
            assert peers["p2p"] is False
            mining = check(node, "GET", "/api/v1/mining", await http.get("/api/v1/mining"))
            assert mining["validator"] is False
            health = check(node, "GET", "/health", await http.get("/health"))
            assert health["status"] == health["state"] == "ok"
            ready = check(node, "GET", "/api/v1/ready", await http.get("/api/v1/ready"))
            assert ready["ready"] is True and ready["checks"]["miner"]["status"] == "skip"
            whoami = check(node, "GET", "/api/v1/dashboard/whoami",
                           await http.get("/api/v1/dashboard/whoami"))
            assert whoami["admin"] is True
            assert (await http.get("/api/v1/wallet")).json()["error"]["code"] == "no_wallet"
            CHECKED.add(("GET", "/api/v1/wallet"))  # its shape: test_wallet.py

            metrics = await http.get("/metrics")
            assert metrics.status_code == 200 and "ccoin_chain_height 1.0" in metrics.text

            documented_gets = {(method, path) for method, path, _ in
                               documented_replies(node.app) if method == "GET"}
            assert documented_gets <= CHECKED, documented_gets - CHECKED

    run(scenario)


def test_examples_of_the_path_parameters_are_accepted(tmp_path: Path) -> None:
    """A path parameter's documented example is not refused as malformed (a lookup may
    find nothing: not_found is an answer)."""

    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            for param, url in ((schema.TX_ID, "/api/v1/txs/{}"),
                               (schema.TX_ID, "/api/v1/txs/{}/proof"),
                               (schema.ACCOUNT, "/api/v1/accounts/{}"),
                               (schema.ACCOUNT, "/api/v1/accounts/{}/txs"),
                               (schema.BLOCK_REF, "/api/v1/blocks/{}")):
                response = await node.http.get(url.format(param.example))
                assert response.status_code in (200, 404), (url, response.text)
            response = await node.http.get(
                f"/api/v1/accounts/{schema.ACCOUNT.example}/txs?before={schema.BEFORE.example}")
            assert response.status_code == 200

    run(scenario)
