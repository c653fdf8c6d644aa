"""The typed error tree, and its registry: one class per failure a caller can tell apart.

Every error that crosses a boundary (the bus, the REST API, the p2p wire) is defined here, so
it is importable from one place whichever side raised it. Each class declares its wire
`code` (DESIGN §6) and the HTTP status the gateway answers with; declaring a `code` is what
registers the class, so `error_from_code` rebuilds exactly the type that was raised, whether
it came back over the bus (`ErrorReply`) or over HTTP (`client.Client`), as httpx maps
transport failures to its own exception types. A catch of `NonceTooLow` works on both.

A code this process does not know (a newer peer's) becomes a plain `CcoinError` that keeps
the code and status it came with.
"""

from __future__ import annotations

from typing import Any, ClassVar

REGISTRY: dict[str, type[CcoinError]] = {}


class CcoinError(Exception):
    """Base of every expected failure; `code` is what crosses the bus and the REST API.

    `remote` is true when the error was rebuilt from what another process sent (a bus
    `ErrorReply` or an HTTP error body), so a command line can say it came from the node."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.remote = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            return  # an intermediate class sharing its parent's code
        known = REGISTRY.get(cls.code)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"error code {cls.code!r} of {cls.__qualname__} is already "
                            f"{known.__qualname__}'s")
        REGISTRY[cls.code] = cls

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


REGISTRY["error"] = CcoinError


def error_class(code: str) -> type[CcoinError] | None:
    """The class registered for `code`, if any."""
    return REGISTRY.get(code)


def error_from_code(code: str, message: str, status: int | None = None) -> CcoinError:
    """Rebuild a typed error from what crossed the bus or HTTP (`remote` is set)."""
    cls = REGISTRY.get(code)
    if cls is None:
        err = CcoinError(message)
        # an unknown code (a newer peer's, or a proxy's HTTP failure): keep what it said
        err.code = code  # type: ignore[misc]
        err.http_status = status or 500  # type: ignore[misc]
    else:
        err = cls.__new__(cls)
        CcoinError.__init__(err, message)
    err.remote = True
    return err


def http_status(code: str) -> int:
    """The HTTP status for an error code; an unknown code is a server-side failure (500)."""
    cls = REGISTRY.get(code)
    return cls.http_status if cls is not None else 500


# --- the request itself is wrong: it will never succeed as sent --------------------------------


class Malformed(CcoinError):
    """input is not a well-formed value of the expected shape"""

    code = "malformed"
    http_status = 400


class TooLarge(Malformed):
    """input exceeds a size bound"""

    code = "too_large"
    http_status = 413


class UnknownMessage(Malformed):
    """frame header names no message of this protocol"""

    code = "unknown_message"


class VersionMismatch(CcoinError):
    """the other side speaks another version of the bus protocol (restart both from one
    installation)"""

    code = "version_mismatch"
    http_status = 500


class NotFound(CcoinError):
    """no such object"""

    code = "not_found"
    http_status = 404


class Forbidden(CcoinError):
    """admin route: loopback or bearer token required"""

    code = "forbidden"
    http_status = 403


class MethodNotAllowed(CcoinError):
    """this path does not take that HTTP method"""

    code = "method_not_allowed"
    http_status = 405


class RateLimited(CcoinError):
    """too many requests from this address; slow down"""

    code = "rate_limited"
    http_status = 429


# --- it conflicts with what the node is or holds: may succeed after a change ------------------


class Refused(CcoinError):
    """understood, but this node will not do it (e.g. dial itself or a banned peer)"""

    code = "refused"
    http_status = 409


class PeerRefused(Refused):
    """the peer could not be linked: it or this node refused the handshake (the message
    says which, and why)"""

    code = "peer_refused"


class PeerWrongNetwork(PeerRefused):
    """the peer runs another network or genesis"""

    code = "peer_wrong_network"


class PeerBanned(PeerRefused):
    """this node has banned the peer, or the peer has banned this node"""

    code = "peer_banned"


class PeerFull(PeerRefused):
    """no peer slot is free: the peer's, or this node's for operator-added peers"""

    code = "peer_full"


class PeerIsSelf(PeerRefused):
    """the endpoint is this node's own"""

    code = "peer_is_self"


class PeerNoP2P(PeerRefused):
    """the node at the page URL given as a peer runs no p2p service: it has no endpoint"""

    code = "peer_no_p2p"


class PeerUrlUnreachable(CcoinError):
    """nothing answered at the page URL given as a peer (no node there, or too slowly)"""

    code = "peer_url_unreachable"
    http_status = 422


class PeerUrlNotCcoin(CcoinError):
    """the page URL given as a peer answered, but not with a ccoin node's status"""

    code = "peer_url_not_ccoin"
    http_status = 422


class PeerUnreachable(CcoinError):
    """no handshake with the peer within the wait: nothing answers there, or too slowly
    (the address stays in the book and is retried)"""

    code = "peer_unreachable"
    http_status = 504


class NotAValidator(CcoinError):
    """this node runs no miner"""

    code = "not_a_validator"
    http_status = 409


class NoPeers(CcoinError):
    """no peer is connected: there is no one to sync from"""

    code = "no_peers"
    http_status = 409


class NoWallet(CcoinError):
    """no node account is configured (client.account_address)"""

    code = "no_wallet"
    http_status = 409


class WrongPassword(CcoinError):
    """wrong password for this key file"""

    code = "wrong_password"
    http_status = 400


class Full(CcoinError):
    """the registry holds as many networks or nodes as it may"""

    code = "full"
    http_status = 429


# --- the node cannot do it right now: retry later ---------------------------------------------


class Unavailable(CcoinError):
    """a service did not answer in time"""

    code = "unavailable"
    http_status = 503


class P2PUnavailable(Unavailable):
    """no p2p service answers on this node"""

    code = "p2p_unavailable"


class WalletUnavailable(Unavailable):
    """the node account's key could not be loaded"""

    code = "wallet_unavailable"


class Internal(CcoinError):
    """a service failed in a way it did not expect (a bug: see its log)"""

    code = "internal"
    http_status = 500


class StorageUnavailable(Unavailable):
    """the node's chain database cannot be used right now (its state service says why in
    its log)"""

    code = "storage_unavailable"


class StoreError(StorageUnavailable):
    """the chain database cannot be used"""

    # no code of its own: a client sees `storage_unavailable` whatever the store's trouble


class StoreCorrupt(StoreError):
    """the chain database is damaged: `ccoin node check` shows how, `ccoin node reindex`
    rebuilds it from its blocks"""

    def __init__(self, message: str = "", damage: str = "") -> None:
        super().__init__(message)
        self.damage = damage or self.message  # what is wrong, without the remedy


class StoreLocked(StoreError):
    """the chain database is in use by another process (its LevelDB lock is held)"""


class StoreWriteFailed(StoreError):
    """a write to the chain database failed (a full disk, an I/O error): state writes nothing
    more until it has reopened the database, which it does by itself once the disk takes
    writes again"""


class DiskSpaceLow(StoreError):
    """the chain database's disk has less free space than `chain.min_free_mb`: transactions
    and blocks are refused until space is freed"""


# --- transactions ---------------------------------------------------------------------------


class InvalidTransaction(CcoinError):
    """transaction is invalid"""

    code = "invalid_transaction"
    http_status = 400


class BadSignature(InvalidTransaction):
    """signature does not verify"""

    code = "bad_signature"


class WrongChain(InvalidTransaction):
    """transaction is for another chain id"""

    code = "wrong_chain"


class NonceTooLow(InvalidTransaction):
    """nonce already used"""

    code = "nonce_too_low"
    http_status = 409


class NonceGap(InvalidTransaction):
    """nonce is ahead of the sender's next nonce"""

    code = "nonce_gap"
    http_status = 409


class InsufficientFunds(InvalidTransaction):
    """balance does not cover amount + fee"""

    code = "insufficient_funds"


class Duplicate(CcoinError):
    """already known"""

    code = "duplicate"
    http_status = 409


class Underpriced(CcoinError):
    """replacement or admission needs a higher fee"""

    code = "underpriced"
    http_status = 409


class PoolFull(CcoinError):
    """mempool is full and the fee does not beat the cheapest pending transaction"""

    code = "pool_full"
    http_status = 503


# --- blocks ---------------------------------------------------------------------------------


class InvalidBlock(CcoinError):
    """block is invalid"""

    code = "invalid_block"
    http_status = 400


class UnknownParent(InvalidBlock):
    """parent block is not known (orphan)"""

    code = "unknown_parent"


class BadHeight(InvalidBlock):
    """height is not parent height + 1"""

    code = "bad_height"


class BadTimestamp(InvalidBlock):
    """timestamp does not rise or is too far in the future"""

    code = "bad_timestamp"


class BadSeal(InvalidBlock):
    """seal signature missing or invalid"""

    code = "bad_seal"


class UnauthorizedSigner(InvalidBlock):
    """signer is not an authority of this chain"""

    code = "unauthorized_signer"


class SignerTooRecent(InvalidBlock):
    """signer sealed one of the last floor(n/2) blocks"""

    code = "signer_too_recent"


class WeakProof(InvalidBlock):
    """HashCash proof has fewer leading zero bits than the difficulty"""

    code = "weak_proof"


class WrongDifficulty(InvalidBlock):
    """difficulty differs from what the rules require"""

    code = "wrong_difficulty"


class BadVote(InvalidBlock):
    """the block's vote is malformed, or not allowed (PoW, too many open, last authority)"""

    code = "bad_vote"


class VoteAlreadyTrue(InvalidBlock):
    """the block votes to authorize an authority or to deauthorize a non-authority"""

    code = "vote_already_true"


class DuplicateVote(InvalidBlock):
    """the block's sealer already cast this vote and it is still open"""

    code = "duplicate_vote"


class BadCheckpoint(InvalidBlock):
    """a checkpoint block does not list the current authorities in order"""

    code = "bad_checkpoint"


class BadTxRoot(InvalidBlock):
    """transactions' Merkle root does not match the header"""

    code = "bad_tx_root"


class BadStateRoot(InvalidBlock):
    """state root after applying the block does not match the header"""

    code = "bad_state_root"


class DuplicateTransaction(InvalidBlock):
    """the same transaction appears twice"""

    code = "duplicate_transaction"


class BlockTooLarge(InvalidBlock):
    """too many transactions or too much extra data"""

    code = "block_too_large"


class BlockTransactionInvalid(InvalidBlock):
    """a transaction in the block is invalid"""

    code = "invalid_block_transaction"


# --- what a client of the REST API waits for ---------------------------------------------------


class TxTimeout(CcoinError):
    """transaction was not confirmed in time"""

    code = "timeout"
    http_status = 504


class TxFailed(CcoinError):
    """the transaction will never be confirmed (rejected, replaced or dropped)"""

    code = "tx_failed"
    http_status = 409

    def __init__(self, message: str = "", info: Any = None) -> None:
        super().__init__(message)
        self.info = info
