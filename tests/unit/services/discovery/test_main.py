"""`python -m services.discovery` (services/discovery/__main__.py): its defaults."""

from __future__ import annotations


def test_default_port_is_the_seeds() -> None:
    from services.discovery.__main__ import DEFAULT_PORT

    assert DEFAULT_PORT == 4444
