"""The bus message catalogue: every request, reply and event that crosses ZeroMQ inside a
node, all registered in one `CATALOGUE` under a short type name.

The envelope, the version and the codec are in `envelope`; the messages by concern in
`state` (the state service's requests and replies), `sync` (those of p2p's sync),
`authorities` (votes), `control` (p2p and miner control) and `events` (what state
publishes). Import them from here: `from common import messages`, `messages.GetStatus()`,
`messages.decode(raw)`. Each message is a frozen,
slotted dataclass whose field annotations declare what a valid value is (`common.fields`);
docs/protocol.md §10-11 describe the envelope and list the catalogue.
"""

from __future__ import annotations

from common.messages.authorities import (
    AuthoritiesReply,
    AuthorityChange,
    GetAuthorities,
    OpenProposal,
    OwnProposal,
    SetProposal,
)
from common.messages.control import (
    ASSUME_VALID_OFF,
    AddPeer,
    AddPeerReply,
    AssumeValidInfo,
    GetMining,
    GetPeers,
    MiningReply,
    PeerEntry,
    PeersReply,
    SetMining,
    SyncNow,
)
from common.messages.envelope import (
    BUS_VERSION,
    CATALOGUE,
    MAX_SIZE,
    ErrorReply,
    Message,
    Ok,
    ServicePing,
    ServicePong,
    catalogue_shape,
    decode,
    encode,
    fingerprint,
    message,
)
from common.messages.events import (
    HeadEvent,
    ReorgEvent,
    TxsEvent,
    TxsRemovedEvent,
)
from common.messages.state import (
    AccountChange,
    AccountReply,
    AccountTxsReply,
    BlockPageReply,
    BlockRangeReply,
    BlockReply,
    BlockResult,
    GetAccount,
    GetAccountTxs,
    GetBlock,
    GetBlockRange,
    GetMempool,
    GetSigners,
    GetStatus,
    GetTemplate,
    GetTips,
    GetTx,
    GetTxProof,
    GetTxs,
    HistoryEntry,
    MempoolReply,
    PagedBlock,
    ProofStep,
    SignerEntry,
    SignersReply,
    StatusReply,
    SubmitBlock,
    SubmitResult,
    SubmitTxs,
    TemplateReply,
    TipEntry,
    TipsReply,
    TxProofReply,
    TxRefusal,
    TxReply,
    TxsReply,
)
from common.messages.sync import (
    BlockOutcome,
    GetBlocksAfter,
    GetHeadersAfter,
    GetLocator,
    HasBlocks,
    HasBlocksReply,
    HeaderRangeReply,
    LocatorReply,
    SubmitBlocks,
    SubmitBlocksResult,
)

__all__ = [
    "ASSUME_VALID_OFF",
    "AccountChange", "AccountReply", "AccountTxsReply", "AddPeer", "AddPeerReply",
    "AssumeValidInfo",
    "AuthoritiesReply", "AuthorityChange", "GetAuthorities", "OpenProposal", "OwnProposal",
    "SetProposal",
    "BUS_VERSION", "BlockOutcome", "BlockPageReply",
    "BlockRangeReply", "BlockReply", "BlockResult", "CATALOGUE", "ErrorReply", "GetAccount",
    "GetAccountTxs", "GetBlock", "GetBlockRange", "GetBlocksAfter", "GetHeadersAfter",
    "GetLocator", "GetMempool",
    "GetMining", "GetPeers", "GetSigners", "GetStatus", "GetTemplate", "GetTips", "GetTx",
    "GetTxProof", "GetTxs", "HasBlocks", "HasBlocksReply", "HeaderRangeReply", "HeadEvent",
    "HistoryEntry",
    "LocatorReply", "MAX_SIZE", "MempoolReply", "Message", "MiningReply", "Ok", "PagedBlock",
    "PeerEntry",
    "PeersReply", "ProofStep", "ReorgEvent", "ServicePing", "ServicePong", "SetMining",
    "SignerEntry", "SignersReply", "StatusReply", "SubmitBlock", "SubmitBlocks",
    "SubmitBlocksResult", "SubmitResult", "SubmitTxs", "SyncNow", "TemplateReply", "TipEntry",
    "TipsReply", "TxProofReply", "TxReply", "TxRefusal", "TxsEvent", "TxsRemovedEvent", "TxsReply",
    "catalogue_shape", "decode", "encode", "fingerprint", "message",
]
