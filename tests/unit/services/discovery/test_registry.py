"""The discovery registry's rules without HTTP (services/discovery/registry.py): a
registration is new, then renewed, and gone after the TTL on the registry's own clock."""

from __future__ import annotations

from services.discovery.registry import Registration, Registry

G1 = "aa" * 32


def test_registry_rules_without_http() -> None:
    now = [1000.0]
    reg = Registry(ttl_ms=1000, max_nodes=2, monotonic=lambda: now[0], wall_ms=lambda: 0)
    a = Registration(1, G1, f"{1:064x}", "tcp://10.0.0.1:1")
    entry, renewed = reg.register(a)
    assert not renewed and entry.registration == a
    assert reg.register(a)[1] is True
    now[0] += 1.0
    assert reg.nodes(1, G1) == [] and reg.network_count == 0
    assert reg.expire() == 0
