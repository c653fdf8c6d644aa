"""Encrypted key files: scrypt + AES-256-GCM, address and key type authenticated."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from common.crypto import KeyType, PrivateKey
from common.errors import CcoinError, Malformed
from runtime.keystore import Keystore, WrongPassword, decrypt_key, encrypt_key
from tests.framework.rules import key

N = 2**10  # fast scrypt for tests


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return PrivateKey.generate(KeyType.RSA)


def test_save_load_round_trip(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "keys")
    assert ks.addresses() == []
    k = key(1)
    path = ks.save(k, "hunter2", n=N)
    assert path == tmp_path / "keys" / f"{k.address.hex()}.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ks.addresses() == [k.address]
    loaded = ks.load(k.address, "hunter2")
    assert loaded == k and loaded.address == k.address


def test_rsa_key_round_trip(tmp_path: Path, rsa_key: PrivateKey) -> None:
    ks = Keystore(tmp_path)
    ks.save(rsa_key, "pw", n=N)
    assert ks.load(rsa_key.address, "pw") == rsa_key


def test_file_holds_no_plaintext_secret() -> None:
    k = key(1)
    doc = encrypt_key(k, "pw", n=N)
    text = json.dumps(doc)
    assert k.secret.hex() not in text
    assert doc["address"] == k.address.hex() and doc["key_type"] == 0
    assert doc["crypto"]["kdf"] == "scrypt" and doc["crypto"]["n"] == N
    assert doc["crypto"]["cipher"] == "aes-256-gcm"
    other = encrypt_key(k, "pw", n=N)  # fresh salt and nonce each time
    assert other["crypto"]["salt"] != doc["crypto"]["salt"]
    assert other["crypto"]["ciphertext"] != doc["crypto"]["ciphertext"]


def test_wrong_password(tmp_path: Path) -> None:
    ks = Keystore(tmp_path)
    ks.save(key(1), "right", n=N)
    with pytest.raises(WrongPassword) as info:
        ks.load(key(1).address, "wrong")
    assert info.value.code == "wrong_password"


def test_tampered_address_fails() -> None:
    doc = encrypt_key(key(1), "pw", n=N)
    doc["address"] = key(2).address.hex()  # authenticated as associated data
    with pytest.raises(WrongPassword):
        decrypt_key(doc, "pw")


def test_tampered_key_type_or_ciphertext_fails() -> None:
    doc = encrypt_key(key(1), "pw", n=N)
    doc["key_type"] = 1
    with pytest.raises(WrongPassword):
        decrypt_key(doc, "pw")
    doc = encrypt_key(key(1), "pw", n=N)
    ct = bytearray.fromhex(doc["crypto"]["ciphertext"])
    ct[0] ^= 1
    doc["crypto"]["ciphertext"] = ct.hex()
    with pytest.raises(WrongPassword):
        decrypt_key(doc, "pw")


def test_malformed_files(tmp_path: Path) -> None:
    doc = encrypt_key(key(1), "pw", n=N)
    for broken in ({k: v for k, v in doc.items() if k != "crypto"},
                   {**doc, "key_type": 9},
                   {**doc, "crypto": {**doc["crypto"], "salt": "zz"}}):
        with pytest.raises(Malformed):
            decrypt_key(broken, "pw")
    ks = Keystore(tmp_path)
    ks.path_of(key(1).address).write_text("{not json")
    with pytest.raises(Malformed):
        ks.load(key(1).address, "pw")
    with pytest.raises(CcoinError, match="no key"):
        ks.load(key(2).address, "pw")


def test_addresses_skips_foreign_files(tmp_path: Path) -> None:
    ks = Keystore(tmp_path)
    ks.save(key(1), "pw", n=N)
    ks.save(key(2), "pw", n=N)
    (tmp_path / "notes.json").write_text("{}")
    assert sorted(ks.addresses()) == sorted([key(1).address, key(2).address])
