"""common.fields: bounds declared once, in the annotations, compiled once per class, enforced
when the bus and the p2p wire decode and when wire messages and domain types are built.

The property tests draw valid and out-of-bound values from the declarations themselves
(`samples.py`): every message of both catalogues round-trips, and every out-of-bound value
of every constraint kind is refused with an error that names the field."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import fields, messages, wire
from common.encoding import pack
from common.errors import Malformed, TooLarge
from common.fields import U8, Hash32, Len, OptAddress20, Printable, Range
from common.status import TxStatus
from common.types import BlockHeader, Transaction
from tests.framework.rules import address, transfer
from tests.unit.common.samples import invalid, record, valid, wire_value

PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
H = bytes(range(32))

BUS = sorted(messages.CATALOGUE.items())
WIRE = [(header.decode(), cls) for header, cls in sorted(wire.MESSAGEMAP.items())]


@dataclasses.dataclass(frozen=True, slots=True)
class Inner:
    key: Hash32
    label: Annotated[str, Len(0, 8), Printable()]


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    small: U8
    offset: Annotated[int, Range(-1, 10)]
    flag: bool
    hash: Hash32
    maybe: OptAddress20
    name: Annotated[str, Len(1, 8), Printable()]
    status: TxStatus
    ids: Annotated[tuple[Hash32, ...], Len(0, 3)]
    inner: Inner
    inners: tuple[Inner, ...]


GOOD: tuple[Any, ...] = (7, -1, True, H, b"", "ok", "pending", (H,), (H, "a"), ((H, ""),))


# --- the machinery, on a record that uses every kind of declaration ---------------------------


def test_a_valid_array_builds_members_and_records() -> None:
    s = fields.build(Sample, GOOD, "sample.")
    assert type(s) is Sample and s.status is TxStatus.PENDING
    assert s.inner == Inner(H, "a") and s.inners == (Inner(H, ""),)
    assert fields.to_wire(s) == [7, -1, True, H, b"", "ok", "pending", (H,), [H, "a"], [[H, ""]]]
    # a member encodes as its string: the bytes do not change
    assert pack(fields.to_wire(s)) == pack(list(GOOD))


@pytest.mark.parametrize("index, bad, error, text", [
    (0, 256, Malformed, "sample.small out of range [0, 255]"),
    (0, True, Malformed, "sample.small must be an integer"),
    (1, -2, Malformed, "sample.offset out of range [-1, 10]"),
    (2, 1, Malformed, "sample.flag must be a boolean"),
    (3, H[:31], Malformed, "sample.hash must be 32 bytes"),
    (3, H + b"x", TooLarge, "sample.hash longer than 32 bytes"),
    (3, H.hex(), Malformed, "sample.hash must be bytes"),
    (4, bytes(5), Malformed, "sample.maybe must have 0 or 20 bytes, not 5"),
    (5, "", Malformed, "sample.name must be 1..8 characters"),
    (5, "x" * 9, TooLarge, "sample.name longer than 8 characters"),
    (5, "a\nb", Malformed, "sample.name has unprintable characters"),
    (6, "lost", Malformed, "sample.status must be one of pending, queued, confirmed"),
    (7, (H,) * 4, TooLarge, "sample.ids has more than 3 items"),
    (7, (H, b"x"), Malformed, "sample.ids[1] must be 32 bytes"),
    (7, "x", Malformed, "sample.ids must be an array"),
    (8, (H,), Malformed, "sample.inner must be an array of 2 fields (key, label)"),
    (8, (H, "a\nb"), Malformed, "sample.inner.label has unprintable characters"),
    (9, ((H, "ok"), (H, 5)), Malformed, "sample.inners[1].label must be a string"),
])
def test_each_refusal_names_the_field(index: int, bad: Any, error: type[Malformed],
                                      text: str) -> None:
    values = list(GOOD)
    values[index] = bad
    with pytest.raises(error) as info:
        fields.build(Sample, tuple(values), "sample.")
    assert text in info.value.message
    if error is Malformed:
        assert not isinstance(info.value, TooLarge)


def test_arity_and_arrays() -> None:
    with pytest.raises(Malformed, match="sample must be an array of 10 fields"):
        fields.build(Sample, GOOD[:-1], "sample.")
    with pytest.raises(Malformed):
        fields.build(Sample, list(GOOD), "sample.")  # decoders produce tuples, never lists


def test_validate_checks_and_converts_a_constructed_record() -> None:
    s = Sample(7, 0, False, H, bytes(20), "n", "queued", (), Inner(H, ""), ())  # type: ignore[arg-type]
    fields.validate(s)
    assert s.status is TxStatus.QUEUED
    bad = Sample(7, 0, False, H, bytes(20), "n", "lost", (), Inner(H, ""), ())  # type: ignore[arg-type]
    with pytest.raises(Malformed, match="status"):
        fields.validate(bad)


@pytest.mark.parametrize("annotation", [
    float, dict, list[int], tuple[int, str], int | None, Annotated[bytes, Range(0, 1)],
    Annotated[int, Printable()], Annotated[bool, Len(0, 1)],
])
def test_declarations_that_cannot_be_checked_are_refused(annotation: Any) -> None:
    with pytest.raises(TypeError):
        fields.spec_of(annotation, "x")


def test_describe_renders_every_declaration() -> None:
    assert dict(fields.describe(Sample)) == {
        "small": "u8", "offset": "int[-1..10]", "flag": "bool", "hash": "bytes[32]",
        "maybe": "bytes[0|20]", "name": "str[1..8] printable",
        "status": "pending|queued|confirmed|rejected|replaced|dropped",
        "ids": "[bytes[32]; 0..3]", "inner": "Inner", "inners": "[Inner]"}
    assert dict(fields.describe(wire.Hello))["listen"] == 'str[0..255] ("" or tcp://host:port)'


def test_each_class_is_compiled_once() -> None:
    first = fields.compiled(messages.SubmitTxs)
    raw = messages.encode(messages.SubmitTxs((b"x",) * 100))
    for _ in range(10):
        messages.decode(raw)
    assert fields.compiled(messages.SubmitTxs) is first
    assert "def build" in first.source and "def check" in first.source


def test_bus_and_wire_class_names_are_disjoint() -> None:
    """`Ping` on the wire and `ServicePing` on the bus: a reader never wonders which."""
    bus = [cls.__name__ for cls in messages.CATALOGUE.values()]
    p2p = [cls.__name__ for cls in wire.MESSAGEMAP.values()] + [wire.PeerAddr.__name__]
    assert len(set(bus)) == len(bus) and len(set(p2p)) == len(p2p)
    assert not set(bus) & set(p2p)


# --- every message of both catalogues, from its declarations ----------------------------------


@PROPERTY
@pytest.mark.parametrize("name, cls", BUS, ids=[n for n, _ in BUS])
@given(data=st.data())
def test_every_bus_message_round_trips(name: str, cls: type[messages.Message],
                                       data: st.DataObject) -> None:
    msg = data.draw(record(cls))
    raw = messages.encode(msg)
    back = messages.decode(raw)
    assert back == msg and type(back) is cls
    assert messages.encode(back) == raw


@PROPERTY
@pytest.mark.parametrize("header, cls", WIRE, ids=[h for h, _ in WIRE])
@given(data=st.data())
def test_every_wire_message_round_trips(header: str, cls: type[wire.WireMessage],
                                        data: st.DataObject) -> None:
    msg = data.draw(record(cls))  # the constructor checked it
    frame = wire.encode(msg)
    back = wire.decode(frame)
    assert back == msg and type(back) is cls
    assert wire.encode(back) == frame


def _with_bad_field(data: st.DataObject, cls: type, base: list[Any],
                    ) -> tuple[str, list[Any], type[Malformed]]:
    specs = fields.record_specs(cls)
    index = data.draw(st.integers(0, len(specs) - 1), label="field")
    name, spec = specs[index]
    bad, error = data.draw(invalid(spec), label=name)
    values = list(base)
    values[index] = bad
    return name, values, error


def _refused(error: type[Malformed], raised: Malformed, where: str | None) -> None:
    assert isinstance(raised, error), (error, raised)
    if error is Malformed:
        assert not isinstance(raised, TooLarge), raised
    if where is not None:
        assert where in raised.message, (where, raised.message)


WITH_FIELDS = [(n, c) for n, c in BUS if fields.record_specs(c)]


@PROPERTY
@pytest.mark.parametrize("type_name, cls", WITH_FIELDS, ids=[n for n, _ in WITH_FIELDS])
@given(data=st.data())
def test_an_out_of_bound_bus_field_is_refused_by_name(type_name: str,
                                                      cls: type[messages.Message],
                                                      data: st.DataObject) -> None:
    msg = data.draw(record(cls))
    name, values, error = _with_bad_field(data, cls, list(wire_value(fields.to_wire(msg))))
    with pytest.raises(Malformed) as info:
        messages.decode(pack([messages.BUS_VERSION, type_name, values]))
    _refused(error, info.value, f"{type_name}.{name}")


WIRE_WITH_FIELDS = [(h, c) for h, c in WIRE if fields.record_specs(c)]


@PROPERTY
@pytest.mark.parametrize("header, cls", WIRE_WITH_FIELDS, ids=[h for h, _ in WIRE_WITH_FIELDS])
@given(data=st.data())
def test_an_out_of_bound_wire_field_is_refused_by_name_on_decode_and_on_construction(
        header: str, cls: type[wire.WireMessage], data: st.DataObject) -> None:
    msg = data.draw(record(cls))
    built = [getattr(msg, n) for n, _ in fields.record_specs(cls)]
    name, values, error = _with_bad_field(data, cls, built)
    with pytest.raises(Malformed) as info:
        cls(*values)
    _refused(error, info.value, f"{header}.{name}")
    body = pack([wire_value(v) for v in values])
    with pytest.raises(Malformed) as info:
        wire.decode(header.encode() + body)
    # a body over the message's own bound is refused before any field is read
    _refused(error, info.value, f"{header}.{name}" if len(body) <= cls.max_body else None)


@PROPERTY
@pytest.mark.parametrize("cls, base", [
    (Transaction, transfer(1, address(2), 5, nonce=3, fee=1, data=b"d")),
    (BlockHeader, BlockHeader(1, H, 1000, address(3), H, H, 4, 9, b"x")),
], ids=["Transaction", "BlockHeader"])
@given(data=st.data())
def test_an_out_of_bound_domain_field_is_refused_by_name(cls: type, base: Any,
                                                         data: st.DataObject) -> None:
    name, values, error = _with_bad_field(data, cls, list(base.fields()))
    with pytest.raises(Malformed) as info:
        cls(*values)
    _refused(error, info.value, name)


EVERY_RECORD = ([c for _, c in BUS] + [c for _, c in WIRE]
                + [wire.PeerAddr, Transaction, BlockHeader])


@PROPERTY
@pytest.mark.parametrize("cls", EVERY_RECORD, ids=lambda c: c.__name__)
@given(data=st.data())
def test_the_compiled_check_agrees_with_the_field_by_field_path(cls: type,
                                                                data: st.DataObject) -> None:
    """The one-line conjunction `build` runs must accept exactly what the per-field
    converters accept, and refuse with the same error."""
    values = []
    for name, spec in fields.record_specs(cls):
        good = data.draw(st.booleans(), label=f"{name} valid")
        values.append(wire_value(data.draw(valid(spec))) if good
                      else data.draw(invalid(spec))[0])
    outcomes: list[tuple[type[Malformed], str] | None] = []
    for check in (lambda: fields.build(cls, tuple(values), "r."),
                  lambda: fields.check_each(cls, tuple(values), "r.")):
        try:
            check()
            outcomes.append(None)
        except Malformed as exc:
            outcomes.append((type(exc), exc.message))
    assert outcomes[0] == outcomes[1]
