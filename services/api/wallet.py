"""The node's own account (sosocoin's wallet): its key, loaded once from the keystore.

The gateway signs `POST /wallet/send` transactions with it. The key stays in this process:
no route returns it, it is never logged, and this class's repr names only the address.
A node whose key cannot be loaded (no account configured, no password, wrong password)
still serves every other route; the wallet routes then answer with a code saying why.
"""

from __future__ import annotations

import logging

from common.crypto import KeyType, Signer
from common.errors import CcoinError, NoWallet, WalletUnavailable
from runtime.config import NodeConfig
from runtime.keystore import Keystore

log = logging.getLogger("ccoin.api.wallet")


class NodeWallet:
    __slots__ = ("address", "_signer", "problem")

    def __init__(self, address: bytes, signer: Signer | None, problem: str = "") -> None:
        self.address = address
        self._signer = signer
        self.problem = problem

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
