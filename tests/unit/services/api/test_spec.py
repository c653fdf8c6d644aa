"""The declaration machinery (`services.api.kinds`, `services.api.spec`): each kind's
documented constraints and its parser agree on every value (property tests), and a shape's
model, parser and renderer follow its one list of fields."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import CcoinError, Malformed, TooLarge
from services.api import schema
from services.api.kinds import (
    AnyJSON,
    Bool,
    Choice,
    Hex,
    Int,
    Kind,
    ListOf,
    Nullable,
    Number,
    Text,
)
from services.api.spec import Field, Shape, components


def documented_ok(kind: Kind, value: Any) -> bool:
    """Whether `value` satisfies what OpenAPI says of `kind` (JSON Schema semantics: `$`
    is the end of the text, a bool is not an integer)."""
    c = kind.constraints()
    if isinstance(kind, Int):
        return (type(value) is int and value >= c.get("ge", value)
                and value <= c.get("le", value))
    if isinstance(kind, Number):
        return type(value) in (int, float)
    if type(value) is not str:
        return False
    if "pattern" in c and not re.fullmatch(c["pattern"].removeprefix("^").removesuffix("$"),
                                           value):
        return False
    return c.get("min_length", 0) <= len(value) <= c.get("max_length", len(value))


def parsed_ok(kind: Kind, value: Any) -> bool:
    try:
        kind.parser()(value, "x")
    except CcoinError:
        return False
    return True


HEXISH = st.text(alphabet="0123456789abcdefABCDEFxXg \n", max_size=24)
KINDS: list[Kind] = [Hex(length=4), Hex(max_len=6), schema.ENDPOINT, Int(1, 1000),
                     Int(0, 2**63 - 1), Number()]
VALUES = st.one_of(HEXISH, HEXISH.map(lambda t: "0x" + t), HEXISH.map(lambda t: "0X" + t),
                   st.integers(-2, 2**64), st.booleans(), st.none(), st.floats(0, 10),
                   st.from_regex(r"tcp://[a-z0-9.]{1,8}:[0-9]{1,6}(#[0-9a-f]{0,66})?",
                                 fullmatch=True))


@pytest.mark.parametrize("kind", KINDS, ids=repr)
@given(value=VALUES)
def test_documented_constraints_and_parser_agree(kind: Kind, value: Any) -> None:
    assert documented_ok(kind, value) == parsed_ok(kind, value), (value, kind.constraints())


@pytest.mark.parametrize("kind", [schema.BLOCK_REF.kind, schema.BEFORE.kind],
                         ids=["block_ref", "before"])
@given(value=st.one_of(st.from_regex(schema.BlockRefKind.PATTERN.removesuffix("$"),
                                     fullmatch=True),
                       st.from_regex(schema.CursorKind.PATTERN.removesuffix("$"),
                                     fullmatch=True),
                       st.text(alphabet="0123456789:abx", max_size=70)))
def test_what_the_path_and_cursor_patterns_document_is_accepted(kind: Kind,
                                                                 value: str) -> None:
    """These document a narrower form than they parse (heights of up to 18 digits, say), so
    that whatever follows the documented pattern is in range and accepted."""
    if documented_ok(kind, value):
        assert parsed_ok(kind, value), value


def test_int_refuses_what_is_not_an_integer() -> None:
    parse = Int(0, 10).parser()
    assert parse(10, "n") == 10
    for bad, said in ((True, "a boolean"), (1.0, "a number with a fraction"), ("1", "a string"),
                      (None, "null"), ([], "an array")):
        with pytest.raises(Malformed, match=said):
            parse(bad, "n")
    with pytest.raises(Malformed, match=r"\[0, 10\]"):
        parse(11, "n")


def test_hex_bounds_its_length_before_decoding() -> None:
    assert Hex(length=2).parser()("0xABcd", "h") == b"\xab\xcd"
    with pytest.raises(TooLarge):
        Hex(max_len=2).parser()("00" * 3, "h")
    with pytest.raises(Malformed, match="4 hex characters"):
        Hex(length=2).parser()("abc", "h")
    with pytest.raises(Malformed, match="not valid hex"):
        Hex(max_len=2).parser()("a b ", "h")
    assert Hex().dump()(b"\x01") == "01" and Hex().constraints() == {}


def test_composite_kinds() -> None:
    assert Nullable(Int(0, 1)).parser()(None, "n") is None
    assert Nullable(Hex()).dump()(None) is None  # type: ignore[misc]
    assert ListOf(Hex(length=1), 2).parser()(["01", "02"], "l") == [b"\x01", b"\x02"]
    with pytest.raises(TooLarge):
        ListOf(AnyJSON(), 2).parser()([1, 2, 3], "l")
    with pytest.raises(Malformed, match="array"):
        ListOf(AnyJSON()).parser()({}, "l")
    assert ListOf(Hex()).dump()((b"\x01",)) == ["01"]  # type: ignore[misc]
    assert ListOf(Int()).dump() is None  # already JSON: no copy
    choice = Choice.of(["a", "b"])
    assert choice.parser()("a", "c") == "a"
    for bad in ("c", None, 1):
        with pytest.raises(Malformed):
            choice.parser()(bad, "c")
    with pytest.raises(Malformed):
        Bool().parser()(1, "b")
    with pytest.raises(Malformed, match="too long for this test"):
        Text(max_length=3, hint="too long for this test").parser()("abcd", "t")


REQUEST = Shape("Request", [
    Field("from", Hex(length=1), "a keyword as a member name"),
    Field("n", Int(0, 9), default=3),
    Field("maybe", Int(0, 9), required=False),
], doc="a request", examples=[{"from": "01"}], what="request")
INNER = Shape("Inner", [Field("v", Hex())])
REPLY = Shape("Reply", [
    Field("inner", INNER, src=lambda o: o),
    Field("size", Int(), src=lambda o: len(o.v)),
    Field("note", Text(), src=None),
    Field("extra", Int(), required=False),
])


def test_shape_parse() -> None:
    assert REQUEST.parse({"from": "01"}) == {"from": b"\x01", "n": 3}  # defaulted; absent
    assert REQUEST.parse({"from": "01", "maybe": 2, "n": 0}) == \
        {"from": b"\x01", "n": 0, "maybe": 2}
    with pytest.raises(Malformed, match="request: unknown field"):
        REQUEST.parse({"from": "01", "size": 1})
    with pytest.raises(Malformed, match="request: missing field"):
        REQUEST.parse({"n": 1})
    with pytest.raises(Malformed, match="request must be a JSON object, got an array"):
        REQUEST.parse([])
    with pytest.raises(Malformed, match="n must be in"):
        REQUEST.parse({"from": "01", "n": 10})


def test_shape_render() -> None:
    class Source:
        v = b"\x0a\x0b"

    src = Source()
    assert REPLY.render(src, note="hi") == {"inner": {"v": "0a0b"}, "size": 2, "note": "hi"}
    assert REPLY.render(src, note="", extra=5)["extra"] == 5  # optional: only when given
    with pytest.raises(TypeError, match="no field"):
        REPLY.render(src, note="", other=1)
    with pytest.raises(TypeError, match="pass it by name"):
        REPLY.render(src)


def test_shape_model() -> None:
    model = REQUEST.model
    assert model is REQUEST.model  # built once
    doc = model.model_json_schema()
    assert doc["description"] == "a request" and doc["examples"] == [{"from": "01"}]
    assert doc["additionalProperties"] is False
    assert set(doc["properties"]) == REQUEST.names  # `from` by its alias
    assert doc["properties"]["n"]["default"] == 3 and doc["required"] == ["from"]
    model.model_validate({"from": "01"})
    reply = REPLY.model.model_json_schema()
    assert set(reply["required"]) == {"inner", "size", "note"}
    assert set(components([REPLY])) == {"Reply", "Inner"}  # nested models are components
    longer = REQUEST.extend("Longer", [Field("more", Bool(), src=None)])
    assert longer.names == REQUEST.names | {"more"} and longer.what == "request"
    with pytest.raises(TypeError, match="twice"):
        Shape("Twice", [Field("a", Int()), Field("a", Int())])
