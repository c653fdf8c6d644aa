"""feature_state_service: the state service as a process, over real ZeroMQ sockets: typed
requests and errors on the bus, events published after the commit and numbered per topic,
and a SIGKILL that loses neither the chain nor the pool."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from common import consensus, crypto
from common import messages as m
from common.encoding import unpack_canonical
from common.errors import Malformed, NotFound
from common.types import Block, BlockHeader, Transaction, block_raw
from runtime.bus import SyncBusClient, parse_event
from runtime.keystore import Keystore
from tests.framework.events import subscribe
from tests.framework.node import TestNode
from tools.devchain import DevChain


@pytest.fixture
def node(tmp_path: Path) -> Iterator[TestNode]:
    node = TestNode.create(tmp_path / "n", interval_ms=1000).start("state")
    yield node
    assert node.stop()["state"] == 0, node.tail()


def seal(dev: DevChain, client: SyncBusClient) -> Block:
    tpl = client.request(m.GetTemplate(dev.validator.address, int(time.time() * 1000), b""),
                         m.TemplateReply)
    signer = crypto.Signer(dev.validator)
    header = consensus.with_signer(BlockHeader.from_fields(unpack_canonical(tpl.header)), signer)
    solved = consensus.solve_proof(header, 1 << 22)
    assert solved is not None
    block = Block.decode(block_raw(consensus.sign_header(solved, signer), tpl.body))
    assert len(block.txs) == tpl.count
    return block


def test_submit_seal_and_query(node: TestNode) -> None:
    dev, client = node.chain, node.bus("state")
    status = client.request(m.GetStatus(), m.StatusReply)
    assert status.height == 0 and status.network_id == 1337 and status.poa
    sub = subscribe(node.config.endpoint("events"))  # connected: nothing published is lost
    sender = crypto.Signer(dev.developer)
    to = crypto.PrivateKey.generate().address
    txs = [Transaction.create(sender, chain_id=1337, nonce=n, to=to, amount=10, fee=1)
           for n in range(3)]
    gapped = Transaction.create(sender, chain_id=1337, nonce=9, to=to, amount=10)
    result = client.request(m.SubmitTxs((*[t.raw for t in txs], b"\x93garbage", gapped.raw)),
                            m.SubmitResult)
    assert result.codes() == ["", "", "", "malformed", ""]
    assert result.refused[0].index == 3 and result.refused[0].id == b""
    assert client.request(m.GetTx(gapped.id), m.TxReply).status == "queued"
    assert client.request(m.GetTx(txs[0].id), m.TxReply).status == "pending"
    acct = client.request(m.GetAccount(sender.address), m.AccountReply)
    assert (acct.nonce, acct.pending_nonce) == (0, 3)
    block = seal(dev, client)
    assert [t.id for t in block.txs] == [t.id for t in txs]
    res = client.request(m.SubmitBlock(block.raw), m.BlockResult)
    assert (res.status, res.height) == ("head", 1)
    again = client.request(m.SubmitBlock(block.raw), m.BlockResult)
    assert again.status == "known"
    conf = client.request(m.GetTx(txs[2].id), m.TxReply)
    assert (conf.status, conf.height, conf.index, conf.confirmations) == ("confirmed", 1, 2, 1)
    assert client.request(m.GetAccount(to), m.AccountReply).balance == 30
    page = client.request(m.GetBlockRange(-1, 10, True), m.BlockPageReply)
    assert [Block.decode(b.raw).height for b in page.blocks] == [1, 0]
    # the block state just imported comes with its ids, for the page not to hash them
    assert page.blocks[0].ids == b"".join(t.id for t in txs)
    events: list[tuple[bytes, int, m.Message]] = []
    while len(events) < 2 and sub.poll(5000):
        events.append(parse_event(sub.recv_multipart()))
    sub.close(0)
    assert [(t, type(e)) for t, _, e in events] == [(b"txs", m.TxsEvent), (b"head", m.HeadEvent)]
    assert events[0][1] == events[1][1] == 1  # each topic numbers its own events from 1
    head = events[1][2]
    assert isinstance(head, m.HeadEvent) and head.hash == block.hash


def test_bad_requests_get_typed_errors_and_the_service_lives(node: TestNode) -> None:
    client = node.bus("state")
    with pytest.raises(NotFound):
        client.request(m.GetBlock(99, b""), m.BlockReply)
    with pytest.raises(Malformed):
        client.request(m.GetAccount(b"short"), m.AccountReply)
    with pytest.raises(Malformed):
        client.request(m.SubmitBlock(b"\xc1"), m.BlockResult)
    raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    raw.connect(node.config.endpoint("state"))
    raw.send_multipart([b"one frame only"])
    raw.send_multipart([b"rid", b"\x92\xa3nop\x90"])  # unknown message type
    assert raw.poll(3000)
    rid, reply = raw.recv_multipart()
    assert rid == b"rid" and isinstance(m.decode(reply), m.ErrorReply)
    assert m.decode(reply).code == "malformed"  # type: ignore[attr-defined]
    raw.close(0)
    assert client.request(m.ServicePing(), m.ServicePong).service == "state"


def test_restart_keeps_chain_and_pool(node: TestNode) -> None:
    dev, client = node.chain, node.bus("state")
    sender = crypto.Signer(dev.developer)
    txs = [Transaction.create(sender, chain_id=1337, nonce=n, to=b"\x01" * 20, amount=1)
           for n in range(4)]
    client.request(m.SubmitTxs(tuple(t.raw for t in txs[:2])), m.SubmitResult)
    client.request(m.SubmitBlock(seal(dev, client).raw), m.BlockResult)
    client.request(m.SubmitTxs(tuple(t.raw for t in txs[2:])), m.SubmitResult)
    node.kill("state")  # SIGKILL: no clean shutdown
    node.restart("state")
    status = client.request(m.GetStatus(), m.StatusReply)
    assert (status.height, status.mempool_count, status.ready_count) == (1, 2, 2)
    assert Keystore(dev.base_path / "keystore").addresses()
