"""The address book (book.py): back-off, holds, eviction, persistent sources."""

from __future__ import annotations

import time

from services.p2p.book import AddressBook


def test_address_book_backs_off_holds_and_keeps_persistent_entries() -> None:
    book = AddressBook(capacity=3)
    book.add("tcp://boot:1", source="bootnode")
    book.add("tcp://a:1", b"a" * 32)
    book.add("tcp://b:1")
    book.failed("tcp://b:1", now=0.0)
    book.failed("tcp://b:1", now=0.0)
    assert book.entries["tcp://b:1"].next_try == 2.0  # 1 s, then 2 s
    book.hold("tcp://a:1", 1e9)
    book.failed("tcp://a:1")  # a failure never shortens a hold
    assert book.entries["tcp://a:1"].next_try > 1e8
    assert book.add("tcp://c:1") is not None  # full: the most-failed transient entry goes
    assert "tcp://b:1" not in book.entries and "tcp://boot:1" in book.entries
    due = [a.endpoint for a in book.due(now=time.monotonic())]
    assert due[0] == "tcp://boot:1" and "tcp://a:1" not in due
    book.add("tcp://c:1", b"c" * 32, source="manual")
    assert book.entries["tcp://c:1"].persistent
