"""A wire-protocol peer for the process-level p2p tests, and chains for it to serve.

- `ScriptedPeer` speaks the wire protocol from a plain blocking DEALER socket, for tests
  of whole processes (nodes started by `tests.framework.node.TestNode`): a correct
  handshake with its own node key, a chain served on request, or any frame at all.
  (In-process tests use `tests.framework.wire_peer.WirePeer`, whose message builders it
  shares.)
- `ChainBuilder` seals blocks of a dev chain in the test process, by the rules state
  applies; `submit_blocks` imports them into a running node's state.
- `python -m tests.framework.scripted_peer peer ENDPOINT ...` runs a scripted peer as its
  own process, so a test can start it inside a network namespace (another source IP
  address): it handshakes, or (`--misbehave`) handshakes, sends garbage until it is banned
  and comes back under new node keys on new sockets; it prints one JSON line of what
  happened.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import zmq

from common import consensus, wire
from common import messages as m
from common.crypto import KeyType, PrivateKey, Signer
from common.genesis import Genesis, genesis_block
from common.ledger import Overlay, apply_transactions, credit_coinbase, finish
from common.merkle import merkle_root
from common.statehash import from_scratch
from common.types import Account, Block, BlockHeader, Transaction
from services.p2p import curve
from tests.framework.wire_peer import ack_message, blocks_reply, hello_message

if TYPE_CHECKING:  # the peer as a process (`main`) needs none of a node's machinery
    from tests.framework.node import TestNode

W = TypeVar("W", bound=wire.WireMessage)
SEND_TIMEOUT_MS = 5000


class ScriptedPeer:
    """A wire-protocol peer under the test's control, on one DEALER socket."""

    def __init__(self, endpoint: str, *, network_id: int, genesis: bytes,
                 key: PrivateKey | None = None, listen: str = "",
                 curve: tuple[bytes, bytes, bytes] | None = None) -> None:
        """`curve`: (the node's server key, our public key, our secret key), raw bytes."""
        self.endpoint = endpoint
        self.curve = curve
        self.network_id = network_id
        self.genesis = genesis
        self.signer = Signer(key or PrivateKey.generate(KeyType.ED25519))
        self.listen = listen
        self.nonce = os.urandom(wire.NONCE_LEN)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = self._open()
        self.received: list[wire.WireMessage] = []

    @property
    def node_id(self) -> bytes:
        return self.signer.public_key

    def _open(self) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # a link the node refuses (a banned address) may leave no pipe to queue on: a send
        # then fails after this long (zmq.Again) instead of blocking the peer for good
        sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        if self.curve is not None:
            server, public, secret = self.curve
            curve.make_client(sock, public, secret, server)
        sock.connect(self.endpoint)
        return sock

    def close(self) -> None:
        self.sock.close(0)

    # --- raw frames -----------------------------------------------------------------------

    def send_raw(self, frame: bytes) -> None:
        self.sock.send(frame)

    def send(self, msg: wire.WireMessage) -> bytes:
        frame = wire.encode(msg)
        self.sock.send(frame)
        return frame

    def recv(self, timeout: float = 2.0) -> wire.WireMessage | None:
        if not self.sock.poll(int(timeout * 1000)):
            return None
        msg = wire.decode(self.sock.recv())
        self.received.append(msg)
        return msg

    def expect(self, kind: type[W], timeout: float = 5.0) -> W:
        """The next message of `kind` (others are kept in `received` and skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.recv(left)
            if isinstance(msg, kind):
                return msg
        raise TimeoutError(f"no {kind.__name__} within {timeout:g} s; got "
                           f"{[type(x).__name__ for x in self.received[-5:]]}")

    # --- protocol -------------------------------------------------------------------------

    def hello(self, *, network_id: int | None = None, genesis: bytes | None = None,
              height: int = 0, head: bytes = bytes(32), total_weight: int = 0,
              version: int = wire.PROTOCOL_VERSION) -> bytes:
        msg = hello_message(
            self.signer, network_id=self.network_id if network_id is None else network_id,
            genesis=self.genesis if genesis is None else genesis, nonce=self.nonce,
            height=height, head=head, total_weight=total_weight, listen=self.listen,
            curve_key=self.curve[1] if self.curve is not None else b"", version=version)
        self.sent_hello = self.send(msg)
        return self.sent_hello

    def handshake(self, **hello: Any) -> wire.Hello:
        """Hello, the node's hello and ack, our ack: a complete handshake."""
        self.hello(**hello)
        theirs = self.expect(wire.Hello)
        their_frame = wire.encode(theirs)
        ack = self.expect(wire.HelloAck)
        assert wire.verify_ack(ack, theirs.node_id, self.nonce, their_frame), "bad node ack"
        self.send(ack_message(self.signer, theirs.nonce, self.sent_hello))
        return theirs

    def serve_blocks(self, chain: ChainBuilder, until: Callable[[], bool],
                     timeout: float = 20.0) -> int:
        """Answer the node's block requests from `chain` (and its pings) until `until()`;
        returns how many GBL were answered."""
        answered = 0
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "the node did not fetch the chain in time"
            msg = self.recv(0.2)
            if isinstance(msg, wire.GetBlocks):
                self.send(blocks_reply(msg, chain.genesis_hash, chain.blocks, chain.weight))
                answered += 1
            elif isinstance(msg, wire.Ping):
                self.send(wire.Pong(msg.nonce, chain.head.height, chain.head.hash,
                                    chain.weight))
        return answered


class ChainBuilder:
    """Sealed blocks of a PoA dev chain, built in the test process with the very rules state
    applies (common.ledger), so a test can make a long chain, a fork, or a block broken in
    one precise way, without waiting for a miner."""

    def __init__(self, genesis: Genesis, signer: Signer) -> None:
        self.genesis = genesis
        self.signer = signer
        self.accounts: dict[bytes, Account] = dict(genesis.initial_accounts())
        self.value = from_scratch(self.accounts.items())
        self.head: BlockHeader = genesis_block(genesis).header
        self.genesis_hash = self.head.hash
        self.blocks: list[Block] = []
        self.weight = 0  # total weight of the chain up to `head`

    def fork(self) -> ChainBuilder:
        """A builder continuing from this one's head (a side branch from here)."""
        other = ChainBuilder.__new__(ChainBuilder)
        other.genesis, other.signer = self.genesis, self.signer
        other.accounts, other.value = dict(self.accounts), self.value
        other.head, other.blocks = self.head, list(self.blocks)
        other.genesis_hash, other.weight = self.genesis_hash, self.weight
        return other

    def next(self, txs: tuple[Transaction, ...] = (), *, timestamp: int | None = None,
             extra: bytes = b"") -> Block:
        parent = self.head
        ts = timestamp if timestamp is not None else max(parent.timestamp + 1,
                                                         int(time.time() * 1000) - 60_000)
        overlay = Overlay(lambda a: self.accounts.get(a, Account()))
        fees = apply_transactions(overlay, txs, self.genesis.network_id)
        credit_coinbase(overlay, self.signer.address, self.genesis.reward + fees)
        changes = finish(overlay, fees, self.value)
        header = BlockHeader(parent.height + 1, parent.hash, ts, self.signer.address,
                             merkle_root([t.id for t in txs]), changes.state_root,
                             self.genesis.difficulty, 0, extra)
        header = consensus.with_signer(header, self.signer)
        solved = consensus.solve_proof(header, 1 << 24)
        assert solved is not None
        block = Block(consensus.sign_header(solved, self.signer), txs)
        self.accounts.update(changes.after)
        self.value = changes.state_value
        self.head = block.header
        self.blocks.append(block)
        self.weight += consensus.block_weight(self.genesis, block.header, self.genesis.miners)
        return block

    def extend(self, count: int) -> list[Block]:
        return [self.next() for _ in range(count)]


def submit_blocks(node: TestNode, blocks: list[Block], chunk: int = 100) -> None:
    """Import blocks into a node's state directly (as p2p would after verifying them)."""
    for start in range(0, len(blocks), chunk):
        part = tuple(b.raw for b in blocks[start:start + chunk])
        result = node.bus("state").request(m.SubmitBlocks(part), m.SubmitBlocksResult,
                                           timeout=60)
        bad = [o for o in result.outcomes if o.status == "error"]
        assert not bad, bad[0]


# --- a scripted peer as a process (`python -m tests.framework.scripted_peer peer`) ------------


def _misbehave(peer: ScriptedPeer, wait: float) -> wire.Bye | None:
    """Send undecodable frames (a malformed PNG costs 20) until the node says `BYE banned`."""
    deadline = time.monotonic() + 3 * wait
    while time.monotonic() < deadline:
        try:
            for _ in range(10):
                peer.send_raw(b"PNG\xc1")
        except zmq.Again:
            return None  # the link is gone without a BYE reaching us
        end = min(deadline, time.monotonic() + wait)
        while (left := end - time.monotonic()) > 0:
            msg = peer.recv(left)
            if isinstance(msg, wire.Bye) and msg.code == "banned":
                return msg
    return None


def run_peer(endpoint: str, *, network_id: int, genesis: bytes, misbehave: bool, attempts: int,
             wait: float) -> dict[str, Any]:
    """What `python -m tests.framework.scripted_peer peer` reports (see `main`)."""
    report: dict[str, Any] = {}
    if misbehave:
        hostile = ScriptedPeer(endpoint, network_id=network_id, genesis=genesis)
        try:
            try:
                hostile.handshake()
                report["first_acked"] = True
            except TimeoutError:
                report["first_acked"] = False
            bye = _misbehave(hostile, wait) if report["first_acked"] else None
            report["banned"] = bye is not None
            report["bye_reason"] = bye.reason if bye is not None else ""
        finally:
            hostile.close()
    # fresh node keys on fresh sockets (new routing ids), all at once
    peers = [ScriptedPeer(endpoint, network_id=network_id, genesis=genesis)
             for _ in range(attempts)]
    try:
        for p in peers:
            try:
                p.hello()
            except zmq.Again:
                pass  # refused before the hello could even be queued: it will not be acked
        deadline = time.monotonic() + wait
        answered: list[ScriptedPeer] = []
        for p in peers:
            try:
                p.expect(wire.HelloAck, max(0.0, deadline - time.monotonic()))
                answered.append(p)
            except TimeoutError:
                continue
        ready = 0
        for p in answered:  # complete the handshake; the node then sends GPX on a new link
            theirs = next(x for x in p.received if isinstance(x, wire.Hello))
            p.send(ack_message(p.signer, theirs.nonce, p.sent_hello))
            try:
                p.expect(wire.GetPeerAddrs, wait)
                ready += 1
            except TimeoutError:
                pass
        report.update(acked=len(answered), ready=ready, node_ids=[p.node_id.hex() for p in peers])
    finally:
        for p in peers:
            p.close()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.framework.scripted_peer")
    sub = parser.add_subparsers(dest="cmd", required=True)
    peer = sub.add_parser("peer", help="a scripted peer; prints one JSON line: acked and "
                          "ready (how many of the fresh peers got the node's ACK, and then "
                          "its GPX), node_ids; with --misbehave also first_acked, banned, "
                          "bye_reason")
    peer.add_argument("endpoint", help="tcp://HOST:PORT of the node")
    peer.add_argument("--network-id", type=int, required=True)
    peer.add_argument("--genesis", required=True, help="the genesis hash, hex")
    peer.add_argument("--misbehave", action="store_true",
                      help="first handshake and send garbage until banned")
    peer.add_argument("--attempts", type=int, default=1,
                      help="fresh peers (new node key, new socket) that then say hello")
    peer.add_argument("--wait", type=float, default=5.0,
                      help="seconds to wait for each answer")
    args = parser.parse_args(argv)
    report = run_peer(args.endpoint, network_id=args.network_id,
                      genesis=bytes.fromhex(args.genesis), misbehave=args.misbehave,
                      attempts=args.attempts, wait=args.wait)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
