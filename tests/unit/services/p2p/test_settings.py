"""P2P settings (settings.py): how `max_peers` splits into outbound and inbound slots, and
what the node config's p2p section sets."""

from __future__ import annotations

from runtime.config import parse_config
from services.p2p.settings import P2PSettings
from tests.framework import rules


def test_max_peers_splits_into_outbound_and_inbound_slots() -> None:
    def split(max_peers: int) -> tuple[int, int]:
        s = P2PSettings("inproc://l", "inproc://s", "inproc://e", "inproc://c",
                        max_peers=max_peers)
        return s.max_outbound, s.max_inbound

    assert split(25) == (8, 17)  # the default: at most 8 dialed by the node itself
    assert split(125) == (8, 117)
    assert [split(n) for n in (1, 2, 3, 4, 10)] == [(1, 0), (1, 1), (2, 1), (2, 2), (5, 5)]


def test_the_config_sets_the_slot_limits() -> None:
    config = parse_config({"app": {"base_path": "/d"}, "p2p": {
        "max_peers": 40, "max_inbound_per_ip": 2, "max_inbound_per_subnet": 0,
        "limit_loopback": True}})
    s = P2PSettings.from_config(config, rules.poa_genesis(n_miners=1))
    assert (s.max_peers, s.max_outbound, s.max_inbound) == (40, 8, 32)
    assert (s.max_inbound_per_ip, s.max_inbound_per_subnet, s.limit_loopback) == (2, 0, True)
    default = P2PSettings.from_config(parse_config({"app": {"base_path": "/d"}}),
                                      rules.poa_genesis(n_miners=1))
    assert (default.max_peers, default.max_inbound_per_ip, default.max_inbound_per_subnet,
            default.limit_loopback) == (25, 4, 8, False)
