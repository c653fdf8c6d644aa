"""What a service loads at start is memory it holds for its whole life: `cryptography`
(OpenSSL, ~8 MiB) is for RSA keys and key files, httpx (~9 MiB) for the discovery client
and adding a peer by URL. A node that uses none of those must not pay for them."""

from __future__ import annotations

import subprocess
import sys

import pytest

OPTIONAL = ("cryptography", "httpx")


def loaded_after(module: str) -> list[str]:
    code = (f"import sys, {module}\n"
            f"print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.split()


@pytest.mark.parametrize("module", [
    "services.state.__main__", "services.p2p.__main__", "services.miner.__main__",
    "services.discovery.__main__", "services.api.app"])
def test_a_service_starts_without_the_optional_libraries(module: str) -> None:
    assert loaded_after(module) == []


def test_an_rsa_key_loads_them_when_met() -> None:
    code = ("import sys\n"
            "from common import crypto\n"
            "key = crypto.PrivateKey.generate(crypto.KeyType.RSA)\n"
            "assert crypto.verify(1, key.public_key, b'm', key.sign(b'm'))\n"
            "print('cryptography' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "True"
