"""The p2p wire catalogue: every message ccoin nodes exchange with each other.

Nodes talk ZeroMQ over TCP (a ROUTER bound to accept, a DEALER per outbound peer). A message
is exactly one ZeroMQ frame, ccoin's "HEADER+BODY": a 3-character ASCII header naming the
message (`HEL`, `TXS`, `BLK`, ...) followed by the canonical msgpack array of its fields in
declaration order (docs/protocol.md §1 and §13). Each message is a frozen, slotted dataclass
registered in `MESSAGEMAP` under its `msgtype` (as in Bitcoin Core's functional test
framework). Each field's type and bounds are declared once, in its annotation
(`common.fields`, as the bus messages and the domain types declare theirs), and checked by
the constructor and the decoder alike, so a decoded message, like one we build, is always
well formed, and an error names the field (`HEL.listen must be "" or tcp://host:port`).

Decoding is strict, because the bytes come from strangers: the frame must fit
`MAX_MESSAGE` (also every p2p socket's `zmq.MAXMSGSIZE`, past which ZeroMQ silently drops
the connection), the header must be known (`UnknownMessage`), the body must fit the
message's own bound (`TooLarge`) and be canonical msgpack (`Malformed`: a hash of the bytes
is a hash of the value), with the right number of fields of the right types.

Blocks and transactions travel as their consensus encodings (§3, §5); this module checks
only their size, and the p2p service decodes and verifies them.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from enum import StrEnum
from typing import Annotated, Any, ClassVar, TypeVar

from common import crypto
from common.encoding import pack, unpack_canonical
from common.errors import Malformed, TooLarge, UnknownMessage
from common.fields import (
    U32,
    U63,
    U64,
    Check,
    Hash32,
    Len,
    LenIn,
    Printable,
    Range,
    converter,
    spec_of,
    to_wire,
    validate,
)
from common.fields import build as build_record
from common.types import MAX_BLOCK_BYTES, MAX_TX_BYTES

PROTOCOL_VERSION = 1
HEADER_LEN = 3
HASH_LEN = crypto.HASH_LEN
NODE_ID_LEN = 32  # an Ed25519 public key
CURVE_KEY_LEN = 32  # a Curve25519 public key (raw, not z85)
NONCE_LEN = 32

MAX_TXS_PER_MESSAGE = 1000
MAX_BLOCKS_PER_MESSAGE = 500
MAX_HEADERS_PER_MESSAGE = 2000  # as Bitcoin's `headers`
MAX_HEADER_BYTES = 4096  # a header's encoding (§5) at its longest (RSA seal, a checkpoint's
                         # vote) is 3,905 bytes
MAX_LOCATOR = 64
MAX_PEX = 64
MAX_ENDPOINT = 255
MAX_AGENT = 64
MAX_REASON = 256
MAX_BYE_CODE = 32

# The largest frame any peer may send: one maximal block with room for its envelope. It is
# set as zmq.MAXMSGSIZE on every p2p socket, so a bigger frame never reaches the decoder:
# ZeroMQ drops the sender's connection instead.
MAX_MESSAGE = MAX_BLOCK_BYTES + 1024 * 1024
# Bounds of the bodies that carry many transactions (each <= MAX_TX_BYTES, plus a
# bin16/array header) and of the fixed-size messages.
_TXS_BODY = MAX_TXS_PER_MESSAGE * (MAX_TX_BYTES + 3) + 5
_SMALL_BODY = 1024

ACK_DOMAIN = "ccoin/p2p-hello"

# "tcp://host:port": host a DNS name, an IPv4 address or a bracketed IPv6 address.
_ENDPOINT = re.compile(r"tcp://([A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})")


def is_endpoint(text: str) -> bool:
    """`tcp://host:port` with a port in 1..65535."""
    match = _ENDPOINT.fullmatch(text)
    return match is not None and 1 <= int(match.group(2)) <= 65535


# --- field declarations (common.fields) -------------------------------------------------------

_GOOD_ENDPOINTS = ("tcp://127.0.0.1:30333", "tcp://node-1.example.org:1", "tcp://[::1]:65535")
_BAD_ENDPOINTS = ("http://x:1", "tcp://h:0", "tcp://127.0.0.1:65536", "tcp://a b:1", "")
Endpoint = Annotated[str, Len(0, MAX_ENDPOINT), Check(
    is_endpoint, "tcp://host:port", _GOOD_ENDPOINTS, _BAD_ENDPOINTS)]
Listen = Annotated[str, Len(0, MAX_ENDPOINT), Check(  # where a node accepts; "" if it won't say
    lambda text: text == "" or is_endpoint(text), '"" or tcp://host:port',
    ("", *_GOOD_ENDPOINTS), _BAD_ENDPOINTS[:-1])]
NodeId = Annotated[bytes, Len(NODE_ID_LEN, NODE_ID_LEN)]
CurveKey = Annotated[bytes, LenIn(0, CURVE_KEY_LEN)]  # empty: the node runs without Curve
Nonce = Annotated[bytes, Len(NONCE_LEN, NONCE_LEN)]
Signature = Annotated[bytes, Len(crypto.ED25519_SIGNATURE_LEN, crypto.ED25519_SIGNATURE_LEN)]
TxBytes = Annotated[bytes, Len(1, MAX_TX_BYTES)]  # a transaction's encoding (§3)
BlockBytes = Annotated[bytes, Len(1, MAX_BLOCK_BYTES)]  # a block's encoding (§5)
HeaderBytes = Annotated[bytes, Len(1, MAX_HEADER_BYTES)]  # a block header's encoding (§5)

_ENDPOINT_CHECK = converter(spec_of(Endpoint))


def check_endpoint(endpoint: Any, name: str = "endpoint") -> str:
    """A peer's listening address, `tcp://host:port` (port 1..65535)."""
    return str(_ENDPOINT_CHECK(endpoint, name))


def parse_peer_uri(uri: str) -> tuple[str, bytes]:
    """`tcp://host:port` or `tcp://host:port#<64 hex>` (a CurveZMQ server key, needed to dial
    a Curve-enabled node whose key is not known from discovery or PEX)."""
    if type(uri) is not str:
        raise Malformed("peer address must be a string")
    endpoint, _, key_hex = uri.partition("#")
    check_endpoint(endpoint)
    if not key_hex:
        return endpoint, b""
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if len(key) != CURVE_KEY_LEN:
        raise Malformed(f"curve key after '#' must be {2 * CURVE_KEY_LEN} hex characters")
    return endpoint, key


# --- the catalogue ----------------------------------------------------------------------------


class WireMessage:
    """Base of every p2p message: `msgtype` is its 3-byte header, `max_body` the most bytes
    its encoded body may take. Construction checks every field against its declaration, as
    decoding does, so a message we build is one a peer accepts."""

    msgtype: ClassVar[bytes]
    max_body: ClassVar[int]
    label: ClassVar[str]  # "HEL.": what errors put before a field's name
    __slots__ = ()

    def __post_init__(self) -> None:
        validate(self, self.label)

    def fields(self) -> list[Any]:
        return to_wire(self)


MESSAGEMAP: dict[bytes, type[WireMessage]] = {}
W = TypeVar("W", bound=WireMessage)


@typing.dataclass_transform(frozen_default=True)
def wire_message(msgtype: str, max_body: int) -> typing.Callable[[type[W]], type[W]]:
    """Class decorator: a frozen slotted dataclass registered in `MESSAGEMAP`."""
    header = msgtype.encode("ascii")
    if len(header) != HEADER_LEN or not msgtype.isupper():
        raise ValueError(f"bad message header {msgtype!r}")

    def wrap(cls: type[W]) -> type[W]:
        if header in MESSAGEMAP:
            raise ValueError(f"message {msgtype} registered twice")
        dc = dataclasses.dataclass(frozen=True, slots=True)(cls)
        dc.msgtype = header
        dc.max_body = max_body
        dc.label = msgtype + "."
        MESSAGEMAP[header] = dc
        return dc

    return wrap


def encode(msg: WireMessage) -> bytes:
    """The frame: header + canonical msgpack body."""
    body = pack(msg.fields())
    if len(body) > msg.max_body:
        raise TooLarge(f"{msg.msgtype.decode()} body of {len(body)} bytes > {msg.max_body}")
    return msg.msgtype + body


def decode(frame: bytes) -> WireMessage:
    """Parse one untrusted frame; every failure is `Malformed` (`UnknownMessage`,
    `TooLarge` are kinds of it)."""
    if len(frame) > MAX_MESSAGE:
        raise TooLarge(f"frame of {len(frame)} bytes > {MAX_MESSAGE}")
    if len(frame) <= HEADER_LEN:
        raise Malformed("frame shorter than a header and a body")
    header = bytes(frame[:HEADER_LEN])
    cls = MESSAGEMAP.get(header)
    if cls is None:
        shown = header.decode("ascii", "replace") if header.isascii() else header.hex()
        raise UnknownMessage(f"unknown message header {shown!r}")
    body = frame[HEADER_LEN:]
    if len(body) > cls.max_body:
        raise TooLarge(f"{header.decode()} body of {len(body)} bytes > {cls.max_body}")
    msg: WireMessage = build_record(cls, unpack_canonical(bytes(body), cls.max_body), cls.label)
    return msg


def header_of(frame: bytes) -> bytes:
    """The 3-byte header, for rate limiting before decoding."""
    return bytes(frame[:HEADER_LEN])


# --- messages ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PeerAddr:
    """A node as PEX and discovery describe it; `curve_key` empty when it runs without
    CurveZMQ."""

    node_id: NodeId
    endpoint: Endpoint
    curve_key: CurveKey

    def __post_init__(self) -> None:
        validate(self)

    def fields(self) -> list[Any]:
        return [self.node_id, self.endpoint, self.curve_key]


@wire_message("HEL", _SMALL_BODY)
class Hello(WireMessage):
    """First message both ways. A node refuses a peer with another `network_id` or
    `genesis`, its own `node_id`, or another major `version`. `listen` is where the sender
    accepts connections ("" when it does not say), `curve_key` its CurveZMQ server key ("" =
    no Curve). `nonce` is a fresh challenge the peer signs in its `ACK`."""

    version: U32
    network_id: U32
    genesis: Hash32
    head: Hash32
    height: U63
    total_weight: U64
    node_id: NodeId
    listen: Listen
    curve_key: CurveKey
    nonce: Nonce
    agent: Annotated[str, Len(0, MAX_AGENT), Printable()]


@wire_message("ACK", _SMALL_BODY)
class HelloAck(WireMessage):
    """Proof of the node key: an Ed25519 signature by the sender's `node_id` over
    `ack_payload(peer's hello nonce, sender's own hello frame)`. The handshake is complete
    when each side has sent its hello and accepted the other's ack."""

    signature: Signature


def ack_payload(peer_nonce: bytes, own_hello_frame: bytes) -> bytes:
    """What an `ACK` signs: the peer's challenge and (the hash of) everything the signer
    claimed in its hello, so its listen address and curve key are authenticated too."""
    return pack([ACK_DOMAIN, peer_nonce, crypto.sha256(own_hello_frame)])


def verify_ack(ack: HelloAck, node_id: bytes, own_nonce: bytes, peer_hello_frame: bytes) -> bool:
    return crypto.verify(crypto.KeyType.ED25519, node_id,
                         ack_payload(own_nonce, peer_hello_frame), ack.signature)


@wire_message("PNG", _SMALL_BODY)
class Ping(WireMessage):
    """Liveness and latency; carries the sender's tip so a peer learns it is behind."""

    nonce: U64
    height: U63
    head: Hash32
    total_weight: U64


@wire_message("PON", _SMALL_BODY)
class Pong(WireMessage):
    """Answer to `PNG`, echoing its nonce."""

    nonce: U64
    height: U63
    head: Hash32
    total_weight: U64


@wire_message("TXS", _TXS_BODY)
class Txs(WireMessage):
    """A batch of transactions (their encodings, §3) the sender's state accepted."""

    txs: Annotated[tuple[TxBytes, ...], Len(1, MAX_TXS_PER_MESSAGE)]


@wire_message("BLK", MAX_BLOCK_BYTES + 64)
class NewBlock(WireMessage):
    """A new block (its full encoding, §5) and the sender's total weight with it as head."""

    block: BlockBytes
    total_weight: U64


@wire_message("GBL", 4 + MAX_LOCATOR * (HASH_LEN + 2) + 32)
class GetBlocks(WireMessage):
    """Ask for main-chain blocks after the first `locator` hash the peer knows (head first,
    exponentially sparser, genesis last), oldest first, at most `limit`. `request` is echoed
    in the `BLS` reply."""

    request: U32
    locator: Annotated[tuple[Hash32, ...], Len(1, MAX_LOCATOR)]
    limit: Annotated[int, Range(1, MAX_BLOCKS_PER_MESSAGE)]


@wire_message("BLS", MAX_MESSAGE - HEADER_LEN)
class Blocks(WireMessage):
    """Reply to `GBL`: blocks oldest first (possibly none: nothing after the locator), and
    the sender's tip, so the asker knows whether more remain."""

    request: U32
    blocks: Annotated[tuple[BlockBytes, ...], Len(0, MAX_BLOCKS_PER_MESSAGE)]
    height: U63
    head: Hash32
    total_weight: U64


@wire_message("GHD", 4 + MAX_LOCATOR * (HASH_LEN + 2) + 32)
class GetHeaders(WireMessage):
    """Ask for main-chain headers after the first `locator` hash the peer knows (as `GBL`),
    oldest first, at most `limit`. Sent by a node syncing with assume-valid (§13.5) to learn
    which blocks are ancestors of the assumed block before it fetches them. `request` is
    echoed in the `HDS` reply."""

    request: U32
    locator: Annotated[tuple[Hash32, ...], Len(1, MAX_LOCATOR)]
    limit: Annotated[int, Range(1, MAX_HEADERS_PER_MESSAGE)]


@wire_message("HDS", MAX_HEADERS_PER_MESSAGE * (MAX_HEADER_BYTES + 3) + 128)
class Headers(WireMessage):
    """Reply to `GHD`: header encodings oldest first (possibly none), and the sender's tip."""

    request: U32
    headers: Annotated[tuple[HeaderBytes, ...], Len(0, MAX_HEADERS_PER_MESSAGE)]
    height: U63
    head: Hash32
    total_weight: U64


@wire_message("GPX", _SMALL_BODY)
class GetPeerAddrs(WireMessage):
    """PEX request: ask for addresses of other nodes."""


@wire_message("PEX", MAX_PEX * (NODE_ID_LEN + MAX_ENDPOINT + CURVE_KEY_LEN + 12) + 8)
class PeerAddrs(WireMessage):
    """PEX reply: nodes the sender is connected to (or knows to be alive)."""

    peers: Annotated[tuple[PeerAddr, ...], Len(0, MAX_PEX)]


@wire_message("BYE", _SMALL_BODY)
class Bye(WireMessage):
    """The sender closes the link; `code` says why (a `ByeCode`, or a code from a newer
    peer: the field is a string so that it can say something we do not know yet)."""

    code: Annotated[str, Len(0, MAX_BYE_CODE), Printable()]
    reason: Annotated[str, Len(0, MAX_REASON), Printable()]


class ByeCode(StrEnum):
    """Why a link is closed (`Bye.code`). A code not listed here, from a newer peer, is still
    a valid `Bye`: the field is a string so that it can say something we do not know yet."""

    WRONG_NETWORK = "wrong_network"  # another network id or genesis hash
    VERSION = "version"  # incompatible protocol version
    SELF = "self"  # connected to itself
    DUPLICATE = "duplicate"  # already connected to this node
    TOO_MANY_PEERS = "too_many_peers"
    BANNED = "banned"  # score fell below the floor, or still banned
    HANDSHAKE = "handshake"  # a message before the handshake, a bad ack, or a timeout
    TIMEOUT = "timeout"  # nothing received for a while
    SLOW = "slow"  # it does not read what we send
    SHUTDOWN = "shutdown"
