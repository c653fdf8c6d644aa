"""The bus message catalogue: every message round-trips, wrong shapes are `Malformed`."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest

from common import errors, messages
from common.encoding import pack
from common.errors import Malformed
from common.messages import CATALOGUE, ErrorReply, Message

ALL = sorted(CATALOGUE.items())


def sample(tp: Any, seed: int) -> Any:
    """A value of type `tp`, varied by `seed` (no two seeds give equal scalars)."""
    origin = typing.get_origin(tp)
    if tp is bool:
        return seed % 2 == 1
    if tp is int:
        return seed * 7919 - 3 if seed % 3 else 2**63 - seed
    if tp is bytes:
        return bytes([seed % 256]) * (seed % 40)
    if tp is str:
        return f"s{seed}-é"
    if tp is type(None):
        return None
    if origin in (typing.Union, types.UnionType):
        return sample(typing.get_args(tp)[seed % len(typing.get_args(tp))], seed)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(sample(args[0], seed + i) for i in range(seed % 4))
        return tuple(sample(a, seed + i) for i, a in enumerate(args))
    if isinstance(tp, type) and issubclass(tp, Message):
        return build(tp, seed)
    raise AssertionError(f"no sample for {tp!r}")


def build(cls: type[Message], seed: int = 1) -> Message:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(*(sample(hints[f.name], seed + i) for i, f in enumerate(fields)))


def wrong_value(tp: Any) -> Any:
    """A value no check of `tp` accepts."""
    if tp is int:
        return True
    if tp is bool:
        return 1
    if tp is bytes:
        return "not bytes"
    if tp is str:
        return b"not str"
    return 1.5


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


@pytest.mark.parametrize("name, cls", ALL)
@pytest.mark.parametrize("seed", [1, 2, 5])
def test_round_trip(name: str, cls: type[Message], seed: int) -> None:
    msg = build(cls, seed)
    raw = messages.encode(msg)
    assert messages.decode(raw) == msg
    assert type(messages.decode(raw)) is cls
    assert raw[:1] == b"\x92"  # [type, fields]
    assert messages.encode(messages.decode(raw)) == raw


WITH_FIELDS = [(n, c) for n, c in ALL if dataclasses.fields(c)]  # type: ignore[arg-type]


@pytest.mark.parametrize("name, cls", WITH_FIELDS)
def test_wrong_field_types_are_malformed(name: str, cls: type[Message]) -> None:
    msg = build(cls)
    hints = typing.get_type_hints(cls)
    wire = messages._to_wire(msg)
    for i, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        bad = list(wire)
        bad[i] = wrong_value(hints[f.name])
        with pytest.raises(Malformed, match=f.name):
            messages.decode(pack([name, bad]))
    with pytest.raises(Malformed):
        messages.decode(pack([name, [*wire, 0]]))  # one field too many
    with pytest.raises(Malformed):
        messages.decode(pack([name, list(wire)[:-1]]))  # one too few


def test_tuple_elements_are_checked() -> None:
    with pytest.raises(Malformed):
        messages.decode(pack(["submit_txs", [[b"ok", "not bytes"]]]))
    with pytest.raises(Malformed):
        messages.decode(pack(["submit_txs", [b"not an array"]]))
    with pytest.raises(Malformed):
        messages.decode(pack(["submit_result", [[[b"id", "code"]]]]))  # nested: too few


def test_unknown_type_and_bad_envelopes() -> None:
    with pytest.raises(Malformed, match="unknown"):
        messages.decode(pack(["no_such_message", []]))
    envelopes: list[Any] = [[b"ping", []], ["ping"], ["ping", [], 1], {"ping": []}, "ping"]
    for envelope in envelopes:
        with pytest.raises(Malformed):
            messages.decode(pack(envelope))
    with pytest.raises(Malformed):
        messages.decode(b"\x92\xa4ping")  # truncated
    with pytest.raises(Malformed):
        messages.decode(messages.encode(messages.ServicePing()) + b"\x00")  # trailing bytes


def test_decode_bounds_the_size() -> None:
    raw = messages.encode(messages.SubmitTxs((bytes(1000),)))
    with pytest.raises(errors.TooLarge):
        messages.decode(raw, max_size=100)


def test_error_reply_maps_codes_back_to_types() -> None:
    for exc in (errors.NonceGap("gap"), errors.BadStateRoot("root"), errors.Malformed("x")):
        reply = messages.decode(messages.encode(ErrorReply.of(exc)))
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


def test_every_bus_message_is_in_the_protocol_spec() -> None:
    """docs/protocol.md §11 lists the catalogue; a message added without it fails here."""
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text()
    missing = [f"{name} ({cls.__name__})" for name, cls in messages.CATALOGUE.items()
               if f"| `{name}` | {cls.__name__} |" not in spec]
    assert not missing, f"add to docs/protocol.md §11: {', '.join(missing)}"
