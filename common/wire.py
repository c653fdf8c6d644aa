"""The p2p wire catalogue: every message ccoin nodes exchange with each other.

Nodes talk ZeroMQ over TCP (a ROUTER bound to accept, a DEALER per outbound peer). A message
is exactly one ZeroMQ frame, ccoin's "HEADER+BODY": a 3-character ASCII header naming the
message (`HEL`, `TXS`, `BLK`, ...) followed by the canonical msgpack array of its fields in
declaration order (docs/protocol.md §1 and §13). Each message is a frozen, slotted dataclass
registered in `MESSAGEMAP` under its `msgtype` (as in Bitcoin Core's functional test
framework); its constructor checks every field's exact type and bounds, so a decoded
message, like one we build, is always well formed.

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
from typing import Any, ClassVar, TypeVar

from common import crypto
from common.encoding import pack, unpack_canonical
from common.errors import Malformed, TooLarge, UnknownMessage
from common.types import MAX_BLOCK_BYTES, MAX_TX_BYTES

PROTOCOL_VERSION = 1
HEADER_LEN = 3
HASH_LEN = 32
NODE_ID_LEN = 32  # an Ed25519 public key
CURVE_KEY_LEN = 32  # a Curve25519 public key (raw, not z85)
NONCE_LEN = 32
MAX_U32 = 2**32 - 1
MAX_U63 = 2**63 - 1
MAX_U64 = 2**64 - 1

MAX_TXS_PER_MESSAGE = 1000
MAX_BLOCKS_PER_MESSAGE = 500
MAX_LOCATOR = 64
MAX_PEX = 64
MAX_ENDPOINT = 255
MAX_AGENT = 64
MAX_REASON = 256

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



# --- field checks -----------------------------------------------------------------------------


def _int(name: str, value: Any, lo: int, hi: int) -> None:
    if type(value) is not int:  # bool is an int in Python: `true` must not pass as 1
        raise Malformed(f"{name} must be an integer")
    if not lo <= value <= hi:
        raise Malformed(f"{name} out of range [{lo}, {hi}]")


def _bool(name: str, value: Any) -> None:
    if type(value) is not bool:
        raise Malformed(f"{name} must be a boolean")


def _bytes(name: str, value: Any, lo: int, hi: int) -> None:
    if type(value) is not bytes:
        raise Malformed(f"{name} must be bytes")
    if len(value) > hi:
        raise TooLarge(f"{name} longer than {hi} bytes")
    if len(value) < lo:
        raise Malformed(f"{name} must be {lo}..{hi} bytes")


def _str(name: str, value: Any, hi: int) -> None:
    if type(value) is not str:
        raise Malformed(f"{name} must be a string")
    if len(value) > hi:
        raise TooLarge(f"{name} longer than {hi} characters")
    if not value.isprintable():
        raise Malformed(f"{name} has unprintable characters")


def _seq(name: str, value: Any, lo: int, hi: int) -> None:
    if type(value) is not tuple:
        raise Malformed(f"{name} must be an array")
    if len(value) > hi:
        raise TooLarge(f"{name} has more than {hi} items")
    if len(value) < lo:
        raise Malformed(f"{name} needs at least {lo} items")


def _curve_key(name: str, value: Any) -> None:
    _bytes(name, value, 0, CURVE_KEY_LEN)
    if len(value) not in (0, CURVE_KEY_LEN):
        raise Malformed(f"{name} must be empty or {CURVE_KEY_LEN} bytes")


def check_endpoint(endpoint: Any, name: str = "endpoint") -> str:
    """A peer's listening address, `tcp://host:port` (port 1..65535)."""
    _str(name, endpoint, MAX_ENDPOINT)
    match = _ENDPOINT.fullmatch(endpoint)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise Malformed(f"{name} must be tcp://host:port, got {endpoint!r}")
    return str(endpoint)


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
    its encoded body may take."""

    msgtype: ClassVar[bytes]
    max_body: ClassVar[int]
    __slots__ = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type and bounds (raise `Malformed` / `TooLarge`)."""

    def fields(self) -> list[Any]:
        return [_to_wire(getattr(self, f.name))
                for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    @classmethod
    def from_fields(cls, values: tuple[Any, ...]) -> WireMessage:
        return cls(*values)


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
        MESSAGEMAP[header] = dc
        return dc

    return wrap


def _to_wire(value: Any) -> Any:
    if isinstance(value, PeerAddr):
        return value.fields()
    if isinstance(value, tuple):
        return [_to_wire(v) for v in value]
    return value


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
    value = unpack_canonical(bytes(body), cls.max_body)
    count = len(dataclasses.fields(cls))  # type: ignore[arg-type]
    if type(value) is not tuple or len(value) != count:
        raise Malformed(f"{header.decode()} must be an array of {count} fields")
    try:
        return cls.from_fields(value)
    except TypeError as exc:  # a nested value of the wrong shape
        raise Malformed(f"{header.decode()}: {exc}") from None


def header_of(frame: bytes) -> bytes:
    """The 3-byte header, for rate limiting before decoding."""
    return bytes(frame[:HEADER_LEN])


# --- messages ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PeerAddr:
    """A node as PEX and discovery describe it; `curve_key` empty when it runs without
    CurveZMQ."""

    node_id: bytes
    endpoint: str
    curve_key: bytes

    def __post_init__(self) -> None:
        _bytes("node_id", self.node_id, NODE_ID_LEN, NODE_ID_LEN)
        check_endpoint(self.endpoint)
        _curve_key("curve_key", self.curve_key)

    def fields(self) -> list[Any]:
        return [self.node_id, self.endpoint, self.curve_key]

    @staticmethod
    def from_fields(value: Any) -> PeerAddr:
        if type(value) is not tuple or len(value) != 3:
            raise Malformed("peer address must be [node_id, endpoint, curve_key]")
        return PeerAddr(*value)


@wire_message("HEL", _SMALL_BODY)
class Hello(WireMessage):
    """First message both ways. A node refuses a peer with another `network_id` or
    `genesis`, its own `node_id`, or another major `version`. `listen` is where the sender
    accepts connections ("" when it does not say), `curve_key` its CurveZMQ server key ("" =
    no Curve). `nonce` is a fresh challenge the peer signs in its `ACK`."""

    version: int
    network_id: int
    genesis: bytes
    head: bytes
    height: int
    total_weight: int
    node_id: bytes
    listen: str
    curve_key: bytes
    nonce: bytes
    agent: str

    def validate(self) -> None:
        _int("version", self.version, 0, MAX_U32)
        _int("network_id", self.network_id, 0, MAX_U32)
        _bytes("genesis", self.genesis, HASH_LEN, HASH_LEN)
        _bytes("head", self.head, HASH_LEN, HASH_LEN)
        _int("height", self.height, 0, MAX_U63)
        _int("total_weight", self.total_weight, 0, MAX_U64)
        _bytes("node_id", self.node_id, NODE_ID_LEN, NODE_ID_LEN)
        if self.listen != "":
            check_endpoint(self.listen, "listen")
        _curve_key("curve_key", self.curve_key)
        _bytes("nonce", self.nonce, NONCE_LEN, NONCE_LEN)
        _str("agent", self.agent, MAX_AGENT)


@wire_message("ACK", _SMALL_BODY)
class HelloAck(WireMessage):
    """Proof of the node key: an Ed25519 signature by the sender's `node_id` over
    `ack_payload(peer's hello nonce, sender's own hello frame)`. The handshake is complete
    when each side has sent its hello and accepted the other's ack."""

    signature: bytes

    def validate(self) -> None:
        _bytes("signature", self.signature, crypto.ED25519_SIGNATURE_LEN,
               crypto.ED25519_SIGNATURE_LEN)


def ack_payload(peer_nonce: bytes, own_hello_frame: bytes) -> bytes:
    """What an `ACK` signs: the peer's challenge and (the hash of) everything the signer
    claimed in its hello, so its listen address and curve key are authenticated too."""
    return pack([ACK_DOMAIN, peer_nonce, crypto.sha256(own_hello_frame)])


def verify_ack(ack: HelloAck, node_id: bytes, own_nonce: bytes, peer_hello_frame: bytes) -> bool:
    return crypto.verify(crypto.KeyType.ED25519, node_id,
                         ack_payload(own_nonce, peer_hello_frame), ack.signature)


class _Tip(WireMessage):
    """Fields shared by the messages that report the sender's chain tip."""

    __slots__ = ()
    height: int
    head: bytes
    total_weight: int

    def _validate_tip(self) -> None:
        _int("height", self.height, 0, MAX_U63)
        _bytes("head", self.head, HASH_LEN, HASH_LEN)
        _int("total_weight", self.total_weight, 0, MAX_U64)


@wire_message("PNG", _SMALL_BODY)
class Ping(_Tip):
    """Liveness and latency; carries the sender's tip so a peer learns it is behind."""

    nonce: int
    height: int
    head: bytes
    total_weight: int

    def validate(self) -> None:
        _int("nonce", self.nonce, 0, MAX_U64)
        self._validate_tip()


@wire_message("PON", _SMALL_BODY)
class Pong(_Tip):
    """Answer to `PNG`, echoing its nonce."""

    nonce: int
    height: int
    head: bytes
    total_weight: int

    def validate(self) -> None:
        _int("nonce", self.nonce, 0, MAX_U64)
        self._validate_tip()


@wire_message("TXS", _TXS_BODY)
class Txs(WireMessage):
    """A batch of transactions (their encodings, §3) the sender's state accepted."""

    txs: tuple[bytes, ...]

    def validate(self) -> None:
        _seq("txs", self.txs, 1, MAX_TXS_PER_MESSAGE)
        for raw in self.txs:
            _bytes("tx", raw, 1, MAX_TX_BYTES)


@wire_message("BLK", MAX_BLOCK_BYTES + 64)
class NewBlock(WireMessage):
    """A new block (its full encoding, §5) and the sender's total weight with it as head."""

    block: bytes
    total_weight: int

    def validate(self) -> None:
        _bytes("block", self.block, 1, MAX_BLOCK_BYTES)
        _int("total_weight", self.total_weight, 0, MAX_U64)


@wire_message("GBL", 4 + MAX_LOCATOR * (HASH_LEN + 2) + 32)
class GetBlocks(WireMessage):
    """Ask for main-chain blocks after the first `locator` hash the peer knows (head first,
    exponentially sparser, genesis last), oldest first, at most `limit`. `request` is echoed
    in the `BLS` reply."""

    request: int
    locator: tuple[bytes, ...]
    limit: int

    def validate(self) -> None:
        _int("request", self.request, 0, MAX_U32)
        _seq("locator", self.locator, 1, MAX_LOCATOR)
        for h in self.locator:
            _bytes("locator hash", h, HASH_LEN, HASH_LEN)
        _int("limit", self.limit, 1, MAX_BLOCKS_PER_MESSAGE)


@wire_message("BLS", MAX_MESSAGE - HEADER_LEN)
class Blocks(_Tip):
    """Reply to `GBL`: blocks oldest first (possibly none: nothing after the locator), and
    the sender's tip, so the asker knows whether more remain."""

    request: int
    blocks: tuple[bytes, ...]
    height: int
    head: bytes
    total_weight: int

    def validate(self) -> None:
        _int("request", self.request, 0, MAX_U32)
        _seq("blocks", self.blocks, 0, MAX_BLOCKS_PER_MESSAGE)
        for raw in self.blocks:
            _bytes("block", raw, 1, MAX_BLOCK_BYTES)
        self._validate_tip()


@wire_message("GPX", _SMALL_BODY)
class GetPeerAddrs(WireMessage):
    """PEX request: ask for addresses of other nodes."""


@wire_message("PEX", MAX_PEX * (NODE_ID_LEN + MAX_ENDPOINT + CURVE_KEY_LEN + 12) + 8)
class PeerAddrs(WireMessage):
    """PEX reply: nodes the sender is connected to (or knows to be alive)."""

    peers: tuple[PeerAddr, ...]

    def validate(self) -> None:
        _seq("peers", self.peers, 0, MAX_PEX)
        for p in self.peers:
            if not isinstance(p, PeerAddr):
                raise Malformed("peers must be peer addresses")

    @classmethod
    def from_fields(cls, values: tuple[Any, ...]) -> WireMessage:
        (peers,) = values
        _seq("peers", peers, 0, MAX_PEX)
        return cls(tuple(PeerAddr.from_fields(p) for p in peers))


@wire_message("BYE", _SMALL_BODY)
class Bye(WireMessage):
    """The sender closes the link; `code` says why (a `ByeCode`)."""

    code: str
    reason: str

    def validate(self) -> None:
        _str("code", self.code, 32)
        _str("reason", self.reason, MAX_REASON)


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
