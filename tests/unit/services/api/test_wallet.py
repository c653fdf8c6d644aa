"""The node's own account (`services.api.wallet`, `routes/wallet.py`): its key loaded from
the keystore or the reason it cannot sign, sends it signs at its pending nonce, and the one
retry when another gateway process took that nonce first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from common import messages
from common.crypto import PrivateKey, Signer
from common.errors import InsufficientFunds, NonceTooLow
from common.types import Transaction
from runtime.config import parse_config
from runtime.keystore import Keystore
from services.api import replies
from services.api.schema import SendRequest
from services.api.wallet import NodeWallet
from tests.unit.services.api.support import (
    CHAIN,
    FUNDS,
    TO,
    code_of,
    gateway_over,
    run,
    state_node,
)


def keystore_config(tmp_path: Path, key: PrivateKey, password: str) -> dict[str, Any]:
    Keystore(tmp_path / "keystore").save(key, "right", n=2**10)
    pw = tmp_path / "pw.txt"
    pw.write_text(password + "\n")
    return {"client": {"account_address": key.address.hex()},
            "keystore": {"password_file": str(pw)}}


@pytest.fixture(autouse=True)
def no_password_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCOIN_PASSWORD", raising=False)


def test_wallet_key_load_failure_is_reported_not_fatal(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    config = parse_config({"app": {"base_path": str(tmp_path)},
                           **keystore_config(tmp_path, key, "wrong")})
    wallet = NodeWallet.load(config)
    assert wallet.address == key.address and not wallet.can_sign
    assert key.secret.hex() not in repr(wallet)
    assert code_of(wallet.require_signer) == "wallet_unavailable"
    assert code_of(NodeWallet.load(parse_config({"app": {"base_path": str(tmp_path)}}))
                   .require_address) == "no_wallet"


def test_send_signs_at_the_pending_nonce(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    wallet_config = keystore_config(tmp_path, key, "right")

    async def scenario() -> None:
        async with state_node(tmp_path, funded=(key.address,), config=wallet_config) as node:
            wallet = (await node.http.get("/api/v1/wallet")).json()
            replies.WALLET_OUT.model.model_validate(wallet)
            assert wallet["address"] == key.address.hex() and wallet["can_sign"] is True
            assert wallet["public_key"] == Signer(key).public_key.hex()
            assert wallet["key_type"] == "ed25519" and key.secret.hex() not in str(wallet)
            sent = []
            for _ in range(2):
                response = await node.http.post("/api/v1/wallet/send",
                                                json={"to": TO.hex(), "amount": 5, "fee": 2})
                assert response.status_code == 202, response.text
                replies.SEND_OUT.model.model_validate(response.json())
                sent.append(response.json())
                steps = server_timing(response)
                assert list(steps) == ["sign", "state", "app"]
                assert 0 < steps["sign"] + steps["state"] <= steps["app"]
            assert [s["nonce"] for s in sent] == [0, 1]
            assert {s["from"] for s in sent} == {key.address.hex()}
            status = (await node.http.get(f"/api/v1/txs/{sent[1]['id']}")).json()
            assert (status["status"], status["amount"], status["fee"]) == ("pending", 5, 2)
            # what the pending sends will spend is not available to the next one
            assert wallet["pending_out"] == 0 and wallet["available"] == FUNDS
            after = (await node.http.get("/api/v1/wallet")).json()
            replies.WALLET_OUT.model.model_validate(after)
            assert (after["balance"], after["pending_out"], after["available"]) == (
                FUNDS, 2 * (5 + 2), FUNDS - 14)

    run(scenario)


def server_timing(response: httpx.Response) -> dict[str, float]:
    """The `Server-Timing` header's steps, in milliseconds."""
    steps = {}
    for part in response.headers["server-timing"].split(", "):
        name, _, dur = part.partition(";dur=")
        steps[name] = float(dur)
    return steps


class FakeAccount:
    """What the test's stand-in for state answers: the pending nonce, and the outcome of
    each submission in turn."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.pending = 0
        self.asked = 0  # GetAccount requests
        self.submitted: list[Transaction] = []

    def account(self, msg: messages.GetAccount) -> messages.AccountReply:
        self.asked += 1
        return messages.AccountReply(msg.address, 10**6, self.pending, self.pending)

    def submit(self, msg: messages.SubmitTxs) -> messages.SubmitResult:
        tx = Transaction.decode(msg.txs[0])
        self.submitted.append(tx)
        code = self.outcomes.pop(0)
        if code == "nonce_too_low":
            self.pending += 1  # another gateway's send took this nonce
        elif not code:
            self.pending = tx.nonce + 1
        return messages.SubmitResult(1, (messages.TxRefusal(0, tx.id, code, code),) if code
                                     else ())


def send_with(tmp_path: Path, outcomes: list[str],
              between: list[str] | None = None) -> tuple[list[Any], FakeAccount]:
    """One send per outcome (its transaction, or the error it raised); before send i + 1,
    the gateway's event hub publishes `between[i]` when it is not ""."""
    state = FakeAccount(list(outcomes))
    signer = Signer(PrivateKey.generate())

    async def scenario() -> list[Any]:
        handlers: dict[Any, Any] = {messages.GetAccount: state.account,
                                    messages.SubmitTxs: state.submit}
        results: list[Any] = []
        async with gateway_over(tmp_path, handlers) as (gw, _):
            gw.wallet = NodeWallet(signer.address, signer)
            while state.outcomes:
                event = between[len(results) - 1] if between and results else ""
                if event:
                    gw.hub.publish(event, {})
                try:
                    results.append((await gw.wallet.send(SendRequest(TO, 5, 1, b""), gw))[0])
                except Exception as exc:  # noqa: BLE001 - the outcome under test
                    results.append(exc)
        return results

    return run(scenario), state


def test_sends_in_a_row_ask_state_for_the_nonce_once(tmp_path: Path) -> None:
    txs, state = send_with(tmp_path, ["", "", ""])
    assert [t.nonce for t in txs] == [0, 1, 2] and state.asked == 1


def test_a_disturbing_event_or_a_refusal_makes_the_next_send_ask_again(
        tmp_path: Path) -> None:
    outcomes = ["", "", "", "", "insufficient_funds", "", "", ""]
    between = ["head", "txs_removed", "", "", "", "reorg", "resync"]
    results, state = send_with(tmp_path, outcomes, between)
    assert isinstance(results[4], InsufficientFunds)
    # asked: the first, after txs_removed (send 3), after the refusal (send 6), after the
    # reorg (send 7) and after the resync (send 8); a head event disturbs nothing
    assert state.asked == 5
    assert [t.nonce for t in results if isinstance(t, Transaction)] == [0, 1, 2, 3, 4, 5, 6]


def test_send_retries_once_when_its_nonce_was_taken(tmp_path: Path) -> None:
    (tx,), state = send_with(tmp_path, ["nonce_too_low", ""])
    assert isinstance(tx, Transaction) and tx.chain_id == CHAIN
    assert [t.nonce for t in state.submitted] == [0, 1] and tx == state.submitted[1]


def test_send_gives_up_after_the_retry(tmp_path: Path) -> None:
    (error,), state = send_with(tmp_path, ["nonce_too_low", "nonce_too_low"])
    assert isinstance(error, NonceTooLow) and len(state.submitted) == 2


def test_send_does_not_retry_other_refusals(tmp_path: Path) -> None:
    (error,), state = send_with(tmp_path, ["insufficient_funds"])
    assert isinstance(error, InsufficientFunds) and len(state.submitted) == 1
