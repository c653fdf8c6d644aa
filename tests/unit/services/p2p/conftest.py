"""The p2p unit tests are coroutines run by anyio's pytest plugin on asyncio (the event
loop `zmq.asyncio` needs); each one builds its own in-process network (tests/framework/
localnet.py) and closes it."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
