"""The node's own account (sosocoin's wallet): its key, loaded once from the keystore, what
its pending sends will spend, and the sends the node signs with it (`POST /wallet/send`).

The key stays in this process: no route returns it, it is never logged, and this class's
repr names only the address. A node whose key cannot be loaded (no account configured, no
password, wrong password) still serves every other route; the wallet routes then answer with
a code saying why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from common import messages
from common.crypto import KeyType, Signer
from common.errors import (
    CcoinError,
    Duplicate,
    NonceTooLow,
    NoWallet,
    Underpriced,
    WalletUnavailable,
    error_from_code,
)
from common.types import Transaction
from runtime.config import NodeConfig
from runtime.keystore import Keystore

if TYPE_CHECKING:
    from services.api.gateway import Gateway
    from services.api.schema import SendRequest

log = logging.getLogger("ccoin.api.wallet")

POOL_PAGE = 1000  # transactions per pool read (state's largest page)
# what state answers when another gateway process took the nonce a send was signed with
NONCE_TAKEN = (NonceTooLow, Duplicate, Underpriced)


class NodeWallet:
    __slots__ = ("address", "_signer", "problem", "_send_lock", "_next")

    def __init__(self, address: bytes, signer: Signer | None, problem: str = "") -> None:
        self.address = address
        self._signer = signer
        self.problem = problem
        self._send_lock = asyncio.Lock()
        # the nonce after this process's last accepted send, and the gateway's event-hub
        # `disturbances` when it was known: a send takes it without asking state, unless a
        # transaction left the pool, a reorg or a missed event came since (it may be wrong)
        self._next: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"NodeWallet({self.address.hex() or '-'}, can_sign={self.can_sign})"

    @staticmethod
    def load(config: NodeConfig) -> NodeWallet:
        """Read and decrypt the configured account's key; never raises."""
        address = config.account_address
        if not address:
            return NodeWallet(b"", None, "no client.account_address in the node config")
        try:
            key = Keystore(config.keystore_dir).load(address, config.password())
        except CcoinError as exc:
            log.warning("node wallet %s cannot sign: %s", address.hex(), exc.message)
            return NodeWallet(address, None, exc.message)
        return NodeWallet(address, Signer(key))

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    @property
    def key_type(self) -> str | None:
        if self._signer is None:
            return None
        return "ed25519" if self._signer.key.key_type == KeyType.ED25519 else "rsa"

    @property
    def public_key(self) -> bytes | None:
        return self._signer.public_key if self._signer is not None else None

    def require_address(self) -> bytes:
        if not self.address:
            raise NoWallet(self.problem)
        return self.address

    def require_signer(self) -> Signer:
        self.require_address()
        if self._signer is None:
            raise WalletUnavailable(f"the node cannot sign: {self.problem}")
        return self._signer

    async def pending_out(self, gw: Gateway) -> int:
        """What the account's transactions in the pool will spend: their amounts and fees
        (queued ones too). The balance minus this is what a new send may still use."""
        address = self.require_address()
        total, offset = 0, 0
        while True:  # the pool's pages of one sender, in nonce order
            page = await gw.ask(messages.GetMempool(offset, POOL_PAGE, address),
                                messages.MempoolReply)
            total += sum(tx.cost for tx in map(Transaction.decode, page.txs))
            if len(page.txs) < POOL_PAGE:
                return total
            offset += len(page.txs)

    async def send(self, req: SendRequest, gw: Gateway) -> tuple[Transaction, float]:
        """Sign a transfer from the node account at its pending nonce and submit it; the
        transaction, and the seconds its signing took (nonce lookup included).

        Sends from this process are serialised, and each knows the nonce after the last
        one, so only the first (or the first after a disturbing event) asks state for it.
        If another gateway process or client took that nonce meanwhile, state refuses the
        send and it is retried once with the nonce state gives."""
        signer = self.require_signer()
        async with self._send_lock:
            for attempt in range(2):
                start = time.perf_counter()
                seen = gw.hub.disturbances
                known = self._next
                self._next = None  # until this send is accepted
                if known is not None and known[1] == seen:
                    nonce = known[0]
                else:
                    account = await gw.ask(messages.GetAccount(signer.address),
                                           messages.AccountReply)
                    nonce = account.pending_nonce
                tx = Transaction.create(signer, chain_id=gw.chain_id, nonce=nonce, to=req.to,
                                        amount=req.amount, fee=req.fee, data=req.data)
                signed = time.perf_counter() - start
                refusal = await gw.submit_one(tx)
                if refusal is None:
                    self._next = (nonce + 1, seen)
                    return tx, signed
                error = error_from_code(refusal.code, refusal.message)
                if attempt or not isinstance(error, NONCE_TAKEN):
                    raise error
        raise AssertionError("unreachable: the second attempt returns or raises")
