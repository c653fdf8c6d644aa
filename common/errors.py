"""The typed error tree. Every error carries the wire/HTTP `code` of DESIGN §6."""

from __future__ import annotations


class CcoinError(Exception):
    """Base of every expected failure; `code` is what crosses the bus and the REST API."""

    code = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def message(self) -> str:
        return str(self)


class Malformed(CcoinError):
    """input is not a well-formed value of the expected shape"""

    code = "malformed"


class TooLarge(Malformed):
    """input exceeds a size bound"""

    code = "too_large"


class NotFound(CcoinError):
    """no such object"""

    code = "not_found"


class Forbidden(CcoinError):
    """admin route: loopback or bearer token required"""

    code = "forbidden"


class Refused(CcoinError):
    """understood, but this node will not do it (e.g. dial itself or a banned peer)"""

    code = "refused"


class Unavailable(CcoinError):
    """a service did not answer in time"""

    code = "unavailable"


# --- transactions ---------------------------------------------------------------------------


class InvalidTransaction(CcoinError):
    """transaction is invalid"""

    code = "invalid_transaction"


class BadSignature(InvalidTransaction):
    """signature does not verify"""

    code = "bad_signature"


class WrongChain(InvalidTransaction):
    """transaction is for another chain id"""

    code = "wrong_chain"


class NonceTooLow(InvalidTransaction):
    """nonce already used"""

    code = "nonce_too_low"


class NonceGap(InvalidTransaction):
    """nonce is ahead of the sender's next nonce"""

    code = "nonce_gap"


class InsufficientFunds(InvalidTransaction):
    """balance does not cover amount + fee"""

    code = "insufficient_funds"


class Duplicate(CcoinError):
    """already known"""

    code = "duplicate"


class Underpriced(CcoinError):
    """replacement or admission needs a higher fee"""

    code = "underpriced"


class PoolFull(CcoinError):
    """mempool is full and the fee does not beat the cheapest pending transaction"""

    code = "pool_full"


# --- blocks ---------------------------------------------------------------------------------


class InvalidBlock(CcoinError):
    """block is invalid"""

    code = "invalid_block"


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


ALL_CODES: dict[str, type[CcoinError]] = {}


def _collect(cls: type[CcoinError]) -> None:
    ALL_CODES[cls.code] = cls
    for sub in cls.__subclasses__():
        _collect(sub)


_collect(CcoinError)


def error_from_code(code: str, message: str) -> CcoinError:
    """Rebuild a typed error from what crossed the bus."""
    cls = ALL_CODES.get(code, CcoinError)
    err = cls(message)
    if cls is CcoinError:
        err.code = code  # type: ignore[misc]  # unknown code from a newer peer: keep it
    return err
