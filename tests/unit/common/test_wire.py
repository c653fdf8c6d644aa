"""The p2p wire catalogue (common/wire.py): every message round-trips byte for byte, and
every kind of bad frame is refused with its typed error."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.encoding import pack
from common.errors import Malformed, TooLarge
from common.types import MAX_BLOCK_BYTES, MAX_TX_BYTES

H = bytes(range(32))
ADDR = wire.PeerAddr(b"\x07" * 32, "tcp://127.0.0.1:30333", b"\x08" * 32)

SAMPLES: list[wire.WireMessage] = [
    wire.Hello(1, 1337, H, H[::-1], 12, 24, b"\x01" * 32, "tcp://node.example:30333",
               b"\x02" * 32, b"\x03" * 32, "ccoin/0.1.0"),
    wire.Hello(1, 0, H, H, 0, 0, b"\x01" * 32, "", b"", b"\x00" * 32, ""),
    wire.HelloAck(b"\x04" * 64),
    wire.Ping(2**64 - 1, 5, H, 10),
    wire.Pong(0, 5, H, 10),
    wire.Txs((b"\x93\x01\x02\x03", b"x" * MAX_TX_BYTES)),
    wire.NewBlock(b"\x92\x90\x90", 2**64 - 1),
    wire.GetBlocks(7, (H, H[::-1]), 500),
    wire.Blocks(7, (b"\x92\x90\x90",), 3, H, 6),
    wire.Blocks(8, (), 0, H, 0),
    wire.GetHeaders(9, (H,), wire.MAX_HEADERS_PER_MESSAGE),
    wire.Headers(9, (b"\x9d" + b"x" * 40, b"y" * wire.MAX_HEADER_BYTES), 3, H, 6),
    wire.Headers(10, (), 0, H, 0),
    wire.GetPeerAddrs(),
    wire.PeerAddrs((ADDR, wire.PeerAddr(b"\x09" * 32, "tcp://[::1]:1", b""))),
    wire.PeerAddrs(()),
    wire.Bye("banned", "score below the floor"),
]


def test_catalogue_is_complete_and_headers_are_three_ascii_letters() -> None:
    assert {type(s) for s in SAMPLES} == set(wire.MESSAGEMAP.values())
    for header, cls in wire.MESSAGEMAP.items():
        assert cls.msgtype == header and len(header) == 3 and header.isupper()
    required = {b"HEL", b"PNG", b"PON", b"TXS", b"BLK", b"GBL", b"BLS", b"GPX", b"PEX", b"BYE"}
    assert required <= set(wire.MESSAGEMAP)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: wire.WireMessage) -> None:
    frame = wire.encode(msg)
    assert frame[:3] == msg.msgtype
    assert frame[3:] == pack(msg.fields())  # the body is the canonical field array
    back = wire.decode(frame)
    assert back == msg and type(back) is type(msg)
    assert wire.encode(back) == frame


def test_known_bytes() -> None:
    """A fixed vector per framing rule: header, then a msgpack array in field order."""
    assert wire.encode(wire.GetPeerAddrs()) == b"GPX\x90"
    assert wire.encode(wire.Bye("self", "")) == b"BYE\x92\xa4self\xa0"
    ping = wire.encode(wire.Ping(1, 2, bytes(32), 4))
    assert ping == b"PNG\x94\x01\x02\xc4\x20" + bytes(32) + b"\x04"


def _frame(header: bytes, fields: list[object]) -> bytes:
    return header + msgpack.packb(fields, use_bin_type=True)


@pytest.mark.parametrize("frame, error", [
    (b"", Malformed),
    (b"PNG", Malformed),  # a header and no body
    (b"XYZ\x90", wire.UnknownMessage),
    (b"png\x90", wire.UnknownMessage),
    (b"\xff\xfe\xfd\x90", wire.UnknownMessage),
    (b"PNG\xc1", Malformed),  # never-used msgpack byte
    (b"PNG\x94\x01\x02", Malformed),  # truncated
    (b"GPX\x90\x90", Malformed),  # trailing bytes
    (b"GPX\xdc\x00\x00", Malformed),  # a 0-array in array16 form: not canonical
    (b"PNG\x94\xcc\x01\x02\xc4\x20" + bytes(32) + b"\x04", Malformed),  # 1 as uint8
    (_frame(b"PNG", [1, 2, bytes(32)]), Malformed),  # a field short
    (_frame(b"PNG", [1, 2, bytes(32), 4, 5]), Malformed),  # a field too many
    (_frame(b"PNG", [True, 2, bytes(32), 4]), Malformed),  # bool is not an int
    (_frame(b"PNG", [1, 2, "x" * 32, 4]), Malformed),  # str is not bytes
    (_frame(b"PNG", [-1, 2, bytes(32), 4]), Malformed),  # out of range
    (_frame(b"PNG", [1, 2, bytes(31), 4]), Malformed),  # a hash of the wrong length
    (b"PNG" + msgpack.packb([1, 2, bytes(32), 4.0]), Malformed),  # float for an int
    (b"PNG" + msgpack.packb({"nonce": 1}), Malformed),  # a map, not an array
    (_frame(b"HEL", [1, 1, H, H, 0, 0, H, "http://x:1", b"", H, ""]), Malformed),  # endpoint
    (_frame(b"HEL", [1, 1, H, H, 0, 0, H, "", b"\x01" * 31, H, ""]), Malformed),  # curve key
    (_frame(b"HEL", [1, 1, H, H, 0, 0, H, "", b"", H, "a\nb"]), Malformed),  # unprintable
    (_frame(b"ACK", [b"\x00" * 63]), Malformed),
    (_frame(b"TXS", [[]]), Malformed),  # an empty batch
    (_frame(b"TXS", [[b"x" * (MAX_TX_BYTES + 1)]]), TooLarge),
    (_frame(b"TXS", [[b"\x90"] * (wire.MAX_TXS_PER_MESSAGE + 1)]), TooLarge),
    (_frame(b"GBL", [1, [], 10]), Malformed),  # an empty locator
    (_frame(b"GBL", [1, [H] * (wire.MAX_LOCATOR + 1), 10]), TooLarge),
    (_frame(b"GBL", [1, [H], 0]), Malformed),
    (_frame(b"GBL", [1, [H], wire.MAX_BLOCKS_PER_MESSAGE + 1]), Malformed),
    (_frame(b"GHD", [1, [], 10]), Malformed),  # an empty locator
    (_frame(b"GHD", [1, [H] * (wire.MAX_LOCATOR + 1), 10]), TooLarge),
    (_frame(b"GHD", [1, [H], 0]), Malformed),
    (_frame(b"GHD", [1, [H], wire.MAX_HEADERS_PER_MESSAGE + 1]), Malformed),
    (_frame(b"HDS", [1, [b""], 0, H, 0]), Malformed),  # an empty header
    (_frame(b"HDS", [1, [b"x" * (wire.MAX_HEADER_BYTES + 1)], 0, H, 0]), TooLarge),
    (_frame(b"HDS", [1, [b"x"] * (wire.MAX_HEADERS_PER_MESSAGE + 1), 0, H, 0]), TooLarge),
    (_frame(b"HDS", [1, [b"x"], 0, bytes(31), 0]), Malformed),  # a head of 31 bytes
    (_frame(b"HDS", [1, [b"x"], -1, H, 0]), Malformed),
    (_frame(b"PEX", [[[H, "tcp://h:1"]]]), Malformed),  # a peer address of two fields
    (_frame(b"PEX", [[[H, "tcp://h:0", b""]]]), Malformed),  # port 0
    (_frame(b"PEX", [[[H, "tcp://h:1", b""]] * (wire.MAX_PEX + 1)]), TooLarge),
    (_frame(b"BYE", ["x" * 33, ""]), TooLarge),
])
def test_bad_frames_are_refused_with_a_typed_error(frame: bytes, error: type[Exception],
                                                   ) -> None:
    with pytest.raises(error):
        wire.decode(frame)


@pytest.mark.parametrize("frame, text", [
    (_frame(b"HEL", [1, 1, H, H, 0, 0, H, "http://x:1", b"", H, ""]),
     'HEL.listen must be "" or tcp://host:port'),
    (_frame(b"TXS", [[b"\x90", b"x" * (MAX_TX_BYTES + 1)]]), "TXS.txs[1] longer than 2048 bytes"),
    (_frame(b"PEX", [[[H, "tcp://h:0", b""]]]), "PEX.peers[0].endpoint must be tcp://host:port"),
    (_frame(b"GBL", [1, [H], 0]), "GBL.limit out of range [1, 500]"),
    (_frame(b"GHD", [1, [H], 2001]), "GHD.limit out of range [1, 2000]"),
    (_frame(b"PNG", [1, 2, bytes(32)]), "PNG must be an array of 4 fields"),
])
def test_a_refusal_names_the_message_and_the_field(frame: bytes, text: str) -> None:
    with pytest.raises(Malformed) as info:
        wire.decode(frame)
    assert text in info.value.message


def test_size_bounds() -> None:
    """Over a message's own body bound: TooLarge before any parsing; over the frame bound
    (the sockets' MAXMSGSIZE): TooLarge at once."""
    assert wire.MAX_MESSAGE > MAX_BLOCK_BYTES  # one maximal block always fits a frame
    with pytest.raises(TooLarge):
        wire.decode(b"PNG" + b"\x90" * (wire.Ping.max_body + 1))
    with pytest.raises(TooLarge):
        wire.decode(b"BLS" + bytes(wire.MAX_MESSAGE))
    with pytest.raises(TooLarge):  # our own encoder refuses what peers would refuse
        wire.encode(wire.Blocks(1, (b"y" * MAX_BLOCK_BYTES,) * 2, 0, H, 0))
    big = wire.NewBlock(b"z" * MAX_BLOCK_BYTES, 1)
    assert len(wire.encode(big)) <= wire.MAX_MESSAGE


def test_constructors_check_fields_like_the_decoder() -> None:
    with pytest.raises(Malformed):
        wire.Ping(True, 0, H, 0)  # type: ignore[arg-type]
    with pytest.raises(Malformed):
        wire.Txs([b"x"])  # type: ignore[arg-type]  # a list, not a tuple
    with pytest.raises(Malformed):
        wire.PeerAddrs(("tcp://h:1",))  # type: ignore[arg-type]
    with pytest.raises(Malformed, match="PNG.nonce must be an integer"):
        wire.Ping(True, 0, H, 0)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        wire.Bye("a", "b").code = "c"  # type: ignore[misc]


@pytest.mark.parametrize("uri, ok", [
    ("tcp://127.0.0.1:30333", True),
    ("tcp://node-1.example.org:1", True),
    ("tcp://[::1]:65535", True),
    ("tcp://127.0.0.1:65536", False),
    ("tcp://127.0.0.1", False),
    ("udp://127.0.0.1:1", False),
    ("tcp://a b:1", False),
    ("tcp://127.0.0.1:1#" + "ab" * 32, True),
    ("tcp://127.0.0.1:1#abc", False),
])
def test_peer_uris(uri: str, ok: bool) -> None:
    if ok:
        endpoint, key = wire.parse_peer_uri(uri)
        assert uri.startswith(endpoint) and len(key) in (0, 32)
    else:
        with pytest.raises(Malformed):
            wire.parse_peer_uri(uri)


def test_hello_ack_binds_the_nonce_and_the_whole_hello() -> None:
    key = Signer(PrivateKey.generate(KeyType.ED25519))
    their_nonce = b"\x05" * 32
    hello = wire.encode(wire.Hello(1, 1, H, H, 0, 0, key.public_key, "", b"", b"\x06" * 32,
                                   "a"))
    ack = wire.HelloAck(key.sign(wire.ack_payload(their_nonce, hello)))
    assert wire.verify_ack(ack, key.public_key, their_nonce, hello)
    assert not wire.verify_ack(ack, key.public_key, b"\x00" * 32, hello)  # replayed elsewhere
    forged = hello.replace(b"\xa1a", b"\xa1b")  # the agent changed after signing
    assert not wire.verify_ack(ack, key.public_key, their_nonce, forged)
    other = PrivateKey.generate(KeyType.ED25519).public_key
    assert not wire.verify_ack(ack, other, their_nonce, hello)
