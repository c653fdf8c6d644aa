"""The node (node.py): one dispatch table for the whole wire catalogue, its lifecycle, and
what it refuses to start with."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import Malformed
from common.wire import ByeCode
from services.p2p.node import HEAVY, P2PNode
from tests.framework import rules
from tests.framework.localnet import LocalNet

pytestmark = pytest.mark.anyio


async def test_every_wire_message_has_exactly_one_handler(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        assert set(node.handlers) == set(wire.MESSAGEMAP.values())
        assert HEAVY <= set(node.handlers)


async def test_stopping_says_goodbye_to_every_link(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        ready = net.peer().connect("inproc://p2p-a")
        await ready.handshake()
        opening = net.peer().connect("inproc://p2p-a")
        await opening.hello()
        await opening.expect(wire.HelloAck)
        await node.stop()
        for peer in (ready, opening):
            bye = await peer.expect(wire.Bye)
            assert (bye.code, bye.reason) == (ByeCode.SHUTDOWN, "node stopping")
        assert not node.peers.all()
        del net.nodes["a"]  # stopped already


async def test_a_state_on_another_network_is_a_configuration_error(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        net.state("a")  # runs the default genesis
        other = rules.poa_genesis(n_miners=1, network_id=rules.CHAIN_ID + 1)
        node = P2PNode(net.settings("a"), other, net.ctx,
                       Signer(PrivateKey.generate(KeyType.ED25519)))
        with pytest.raises(Malformed, match="state runs network"):
            await node.start()
        await node.stop()
