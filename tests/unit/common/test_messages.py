"""The bus message catalogue: the versioned envelope, the error reply every version reads,
statuses as enums, the bounds the state service relies on, and the typed error registry.
Round trips and field bounds of every message are property-tested in test_fields.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from common import errors, fields, messages
from common import messages as m
from common.encoding import pack, unpack
from common.errors import Malformed, VersionMismatch
from common.messages import BUS_VERSION, CATALOGUE, ErrorReply, Message
from common.status import BlockStatus, Direction, PeerDirection, RemovalReason, TipStatus, TxStatus

ROOT = Path(__file__).resolve().parents[3]
H = bytes(range(32))
A = bytes(range(20))


def test_catalogue_is_keyed_by_type() -> None:
    core = {"err", "ok", "ping", "pong", "get_status", "status", "get_block", "block",
            "get_tx", "tx", "get_account", "account", "submit_txs", "submit_result",
            "get_template", "template", "submit_block", "block_result", "ev_head", "ev_txs",
            "ev_reorg"}
    assert core <= CATALOGUE.keys()
    for name, cls in CATALOGUE.items():
        assert cls.TYPE == name
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert hasattr(cls, "__slots__")


# --- the envelope and the version -------------------------------------------------------------


def test_a_message_travels_as_version_type_fields() -> None:
    raw = m.encode(m.GetAccount(A))
    assert unpack(raw) == (BUS_VERSION, "get_account", (A,))
    assert m.decode(raw) == m.GetAccount(A)


def test_the_error_reply_is_unversioned_so_every_version_reads_it() -> None:
    raw = m.encode(ErrorReply("version_mismatch", "v"))
    assert raw == b"\x92\xa3err\x92\xb0version_mismatch\xa1v"  # the bus's form before versions
    back = m.decode(raw)
    assert isinstance(back, ErrorReply) and back.code == "version_mismatch"
    assert type(back.to_exception()) is VersionMismatch
    # ours, explicitly versioned, is read too
    assert m.decode(pack([BUS_VERSION, "err", ["x", "y"]])) == ErrorReply("x", "y")


@pytest.mark.parametrize("envelope, theirs", [
    ([BUS_VERSION + 1, "get_status", []], f"version {BUS_VERSION + 1}"),
    ([BUS_VERSION + 1, "from_the_future", [1, 2]], f"version {BUS_VERSION + 1}"),
    ([BUS_VERSION + 1, "err", ["x", "y"]], f"version {BUS_VERSION + 1}"),
    (["get_status", []], "version 0 (from before the bus had versions)"),
    (["status", [1, 2, 3]], "version 0"),
])
def test_another_version_is_a_version_mismatch_naming_both(envelope: list[Any],
                                                           theirs: str) -> None:
    with pytest.raises(VersionMismatch) as info:
        m.decode(pack(envelope))
    assert not isinstance(info.value, Malformed) and info.value.code == "version_mismatch"
    text = info.value.message
    assert theirs in text and f"speaks version {BUS_VERSION}" in text
    assert "restart them together" in text


def test_unknown_type_and_bad_envelopes_are_malformed() -> None:
    with pytest.raises(Malformed, match="unknown message type"):
        m.decode(pack([BUS_VERSION, "no_such_message", []]))
    with pytest.raises(Malformed, match="unknown message type"):
        m.decode(pack(["no_such_message", []]))  # no version of the bus ever had it
    envelopes: list[Any] = [[b"ping", []], ["ping"], ["ping", [], 1], {"ping": []}, "ping",
                            [BUS_VERSION, b"ping", []], [True, "ping", []],
                            [BUS_VERSION, "ping", [], 0], []]
    for envelope in envelopes:
        with pytest.raises(Malformed):
            m.decode(pack(envelope))
    with pytest.raises(Malformed):
        m.decode(b"\x93\x01\xa4ping")  # truncated
    with pytest.raises(Malformed):
        m.decode(m.encode(m.ServicePing()) + b"\x00")  # trailing bytes


def test_decode_bounds_the_size() -> None:
    raw = m.encode(m.SubmitTxs((bytes(1000),)))
    with pytest.raises(errors.TooLarge):
        m.decode(raw, max_size=100)


def test_the_catalogue_shape_is_recorded_for_this_bus_version() -> None:
    """A message's shape changed without a new BUS_VERSION: services of the old and the new
    installation would misread each other instead of refusing with `version_mismatch`."""
    record = json.loads((ROOT / "tests" / "vectors" / "bus_catalogue.json").read_text())
    shape = m.catalogue_shape()
    recorded = record["history"].get(str(BUS_VERSION))
    regenerate = "run `.venv/bin/python tests/vectors/generate.py` to record it"
    if recorded is None:
        pytest.fail(f"BUS_VERSION {BUS_VERSION} has no recorded shape: {regenerate}")
    if recorded != m.fingerprint():
        changed = sorted(t for t in shape.keys() | record["messages"].keys()
                         if shape.get(t) != record["messages"].get(t))
        pytest.fail(f"bus message shapes changed ({', '.join(changed) or '?'}) but BUS_VERSION "
                    f"is still {BUS_VERSION}: bump BUS_VERSION in common/messages/envelope.py, "
                    f"then {regenerate}")
    assert record["bus_version"] == BUS_VERSION and record["messages"] == shape


# --- statuses are enums on the Python side, strings on the wire -------------------------------

STATUS_SAMPLES: list[tuple[Message, str, Any]] = [
    (m.TxReply(b"t", TxStatus.QUEUED, b"", -1, -1, 0, expected_nonce=4), "status", TxStatus),
    (m.BlockResult(BlockStatus.SIDE, H, 3), "status", BlockStatus),
    (m.BlockOutcome(b"", -1, BlockStatus.ERROR, "malformed", "x"), "status", BlockStatus),
    (m.TipEntry(H, 3, 9, 1, TipStatus.VALID_FORK), "status", TipStatus),
    (m.HistoryEntry(H, 3, 0, Direction.SELF), "direction", Direction),
    (m.PeerEntry(b"n", "tcp://h:1", PeerDirection.INBOUND, 0, b"", 0, 0, 0, 0), "direction",
     PeerDirection),
]


@pytest.mark.parametrize("msg, field, enum", STATUS_SAMPLES, ids=lambda v: type(v).__name__)
def test_a_status_decodes_to_its_member_and_encodes_as_its_string(msg: Message, field: str,
                                                                  enum: Any) -> None:
    member = getattr(msg, field)
    as_string = dataclasses.replace(msg, **{field: str(member.value)})  # type: ignore[type-var]
    assert m.encode(as_string) == m.encode(msg)  # producers may still send plain strings
    back = m.decode(m.encode(as_string))
    assert getattr(back, field) is member and isinstance(member, enum)
    wire = list(unpack(m.encode(msg))[2])
    wire[[f.name for f in dataclasses.fields(msg)].index(field)] = "sideways"  # type: ignore[arg-type]
    with pytest.raises(Malformed, match=f"{msg.TYPE}.{field} must be one of"):
        m.decode(pack([BUS_VERSION, msg.TYPE, wire]))


def test_removal_reasons_are_enums_element_by_element() -> None:
    event = m.TxsRemovedEvent((H, H), (RemovalReason.EVICTED, RemovalReason.REORG_CONFLICT))
    strings = m.TxsRemovedEvent((H, H), ("evicted", "reorg-conflict"))  # type: ignore[arg-type]
    assert m.decode(m.encode(strings)) == event  # the bus carries the strings
    with pytest.raises(Malformed, match=r"ev_txs_removed.reasons\[1\]"):
        m.decode(m.encode(m.TxsRemovedEvent((H, H), ("evicted", "included"))))  # type: ignore[arg-type]


# --- the bounds the state service's handlers once re-checked by hand --------------------------


@pytest.mark.parametrize("msg, where", [
    (m.GetBlockRange(0, -1, True), "get_blocks.limit"),
    (m.GetBlockRange(-2, 10, True), "get_blocks.start"),
    (m.GetTxs((H,) * 10_001), "get_txs.ids"),
    (m.GetTxs((H[:31],)), "get_txs.ids[0]"),
    (m.GetAccount(A[:19]), "get_account.address"),
    (m.GetAccount(A + b"x"), "get_account.address"),
    (m.GetMempool(-1, 10), "get_mempool.offset"),
    (m.GetMempool(0, -1), "get_mempool.limit"),
    (m.GetMempool(0, 10, bytes(5)), "get_mempool.sender"),
    (m.GetTemplate(A[:19], 0, b""), "get_template.coinbase"),
    (m.GetTemplate(A, 0, bytes(65)), "get_template.extra"),
    (m.GetAccountTxs(A[:1], 0, 10), "get_account_txs.address"),
    (m.GetAccountTxs(A, -1, 10), "get_account_txs.offset"),
    (m.GetAccountTxs(A, 0, -1), "get_account_txs.limit"),
    (m.GetAccountTxs(A, 0, 10, (1,)), "get_account_txs.before"),
    (m.GetAccountTxs(A, 0, 10, (1, 2**32)), "get_account_txs.before"),
    (m.GetAccountTxs(A, 0, 10, (-1, 0)), "get_account_txs.before[0]"),
    (m.GetSigners(0, 0), "get_signers.window"),
    (m.GetSigners(10_001, 0), "get_signers.window"),
    (m.GetSigners(1, -1), "get_signers.now_ms"),
    (m.GetBlocksAfter((H,), -1, 10), "get_blocks_after.limit"),
    (m.GetBlocksAfter((H,), 10, -1), "get_blocks_after.max_bytes"),
    (m.GetBlocksAfter((H,) * 201, 10, 10), "get_blocks_after.locator"),
    (m.HasBlocks((H,) * 10_001), "has_blocks.hashes"),
    (m.GetTx(b"short"), "get_tx.id"),
])
def test_a_request_out_of_the_handlers_bounds_is_refused_on_decode(msg: Message,
                                                                   where: str) -> None:
    with pytest.raises(Malformed) as info:
        m.decode(m.encode(msg))
    assert where in info.value.message


# --- errors crossing the bus ------------------------------------------------------------------


def test_error_reply_maps_codes_back_to_types() -> None:
    for exc in (errors.NonceGap("gap"), errors.BadStateRoot("root"), errors.Malformed("x"),
                errors.VersionMismatch("v")):
        reply = m.decode(m.encode(ErrorReply.of(exc)))
        assert isinstance(reply, ErrorReply)
        again = reply.to_exception()
        assert type(again) is type(exc) and again.code == exc.code and str(again) == str(exc)
    unknown = ErrorReply("from_the_future", "new").to_exception()
    assert type(unknown) is errors.CcoinError and unknown.code == "from_the_future"


def test_every_error_class_registers_its_code_and_comes_back_typed() -> None:
    """A class declaring a `code` registers it where it is defined (here, in the CLI's and the
    supervisor's modules too), so what crosses the bus or HTTP comes back as that class."""
    import tools.cli.util  # noqa: F401 - errors defined outside common.errors
    import tools.supervisor  # noqa: F401

    def walk(cls: type[errors.CcoinError]) -> list[type[errors.CcoinError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    classes = [c for c in walk(errors.CcoinError) if "code" in c.__dict__]
    assert {c.__module__ for c in classes} > {"common.errors", "tools.cli.util"}
    assert len({c.code for c in classes}) == len(classes)
    for cls in classes:
        assert errors.REGISTRY[cls.code] is cls
        again = errors.error_from_code(cls.code, "what happened")
        assert type(again) is cls and again.remote and str(again) == "what happened"
        assert 400 <= cls.http_status < 600 and errors.http_status(cls.code) == cls.http_status


def test_a_code_taken_by_another_class_is_refused() -> None:
    with pytest.raises(TypeError, match="already"):
        class Impostor(errors.CcoinError):
            code = "not_found"


def test_registering_a_type_twice_is_refused() -> None:
    with pytest.raises(ValueError):
        @messages.message("ping")
        class Again(Message):
            pass


def test_every_bus_message_is_in_the_protocol_spec_with_its_declared_fields() -> None:
    """docs/protocol.md §11 lists the catalogue, each message's fields as they are declared;
    a message added or re-declared without it fails here."""
    spec = (ROOT / "docs" / "protocol.md").read_text()
    missing = [f"| `{name}` | {cls.__name__} | {m.catalogue_shape()[name] or '—'} |"
               for name, cls in CATALOGUE.items()
               if f"| `{name}` | {cls.__name__} | {m.catalogue_shape()[name] or '—'} |"
               not in spec]
    assert not missing, "docs/protocol.md §11 should have:\n" + "\n".join(missing)


# --- a submission's answer lists its refusals only ---------------------------------------------


def test_a_submit_result_places_each_refusal_and_leaves_the_rest_accepted() -> None:
    refused = (m.TxRefusal(1, H, "nonce_gap", "n"), m.TxRefusal(3, b"", "malformed", "x"))
    result = m.decode(m.encode(m.SubmitResult(5, refused)))
    assert isinstance(result, m.SubmitResult)
    assert result.refusals() == [None, refused[0], None, refused[1], None]
    assert result.codes() == ["", "nonce_gap", "", "malformed", ""]
    assert m.SubmitResult(3, ()).codes() == ["", "", ""]


@pytest.mark.parametrize("indexes", [(5,), (2, 2), (3, 1), (0, 7)])
def test_a_submit_result_whose_refusals_do_not_fit_it_is_malformed(
        indexes: tuple[int, ...]) -> None:
    result = m.SubmitResult(5, tuple(m.TxRefusal(i, H, "nonce_gap", "") for i in indexes))
    rule = "submit_result must have each refusal's index below count, rising"
    with pytest.raises(Malformed, match=rule):
        m.decode(m.encode(result))
    with pytest.raises(Malformed, match="SubmitResult must have each refusal's index"):
        fields.validate(result)  # a constructed one, checked the same way
    fits = m.SubmitResult(5, tuple(m.TxRefusal(i, H, "nonce_gap", "") for i in (0, 4)))
    assert m.decode(m.encode(fits)) == fits
    fields.validate(fits)
