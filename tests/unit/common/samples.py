"""Values for declared fields (`common.fields`), valid and out of bounds, drawn from the
declarations themselves: the property tests of both catalogues and of the domain types
use them, so a field declared tomorrow is tested without a line written for it."""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import strategies as st

from common import fields
from common.errors import Malformed, TooLarge
from common.fields import Spec

INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what msgpack can carry
SPAN = 6  # how far past a lower bound the drawn lengths go: enough to vary, quick to run
BIG = 100_000  # past this an over-long value is built once, not drawn

SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # text of any code point but a lone surrogate


def _length_bounds(spec: Spec, default_hi: int) -> tuple[int, int]:
    if spec.length is not None:
        return spec.length.lo, spec.length.hi
    return 0, default_hi


def valid(spec: Spec) -> st.SearchStrategy[Any]:
    """Values that pass `spec`, as a producer builds them (members, records)."""
    examples = [x for check in spec.checks for x in check.examples]
    if examples:
        return st.sampled_from(examples)
    if spec.item is not None:
        lo, hi = _length_bounds(spec, SPAN)
        return st.lists(valid(spec.item), min_size=lo, max_size=min(hi, lo + SPAN)).map(tuple)
    if spec.is_enum:
        return st.sampled_from(list(spec.base))
    if spec.is_record:
        return record(spec.base)
    base = spec.base
    if base is int:
        lo, hi = (spec.range.lo, spec.range.hi) if spec.range else (INT_MIN, INT_MAX)
        return st.integers(lo, hi) | st.sampled_from([lo, hi])
    if base is bool:
        return st.booleans()
    if base is type(None):
        return st.none()
    if spec.length_in is not None:
        sizes = spec.length_in.sizes
        make = st.binary if base is bytes else st.text
        return st.sampled_from(sizes).flatmap(lambda n: make(min_size=n, max_size=n))
    lo, hi = _length_bounds(spec, 64)
    if base is bytes:
        return st.binary(min_size=lo, max_size=min(hi, lo + 8 * SPAN))
    alphabet = (st.characters(categories=("L", "M", "N", "P", "S"), include_characters=" ")
                if spec.printable else st.characters(exclude_categories=SURROGATES))
    return st.text(alphabet, min_size=lo, max_size=min(hi, lo + 3 * SPAN))


def record(cls: type) -> st.SearchStrategy[Any]:
    """Instances of a record class with every field valid, and its rule across them."""
    specs = [spec for _, spec in fields.record_specs(cls)]
    made = st.tuples(*(valid(s) for s in specs)).map(lambda values: cls(*values))
    rule = fields.rule_of(cls)
    return made.filter(rule.test) if rule is not None else made


def _wrong_types(spec: Spec) -> list[Any]:
    if spec.item is not None or spec.is_record:
        return ["not an array", 7]
    if spec.is_enum:
        return [7, b"\x00"]
    return {int: [True, 1.5, "1", b"1"], bool: [1, 0, "true"], bytes: ["text", 0],
            str: [b"bytes", 0], type(None): [0, b""]}[spec.base]


def invalid(spec: Spec) -> st.SearchStrategy[tuple[Any, type[Malformed]]]:
    """(a value `spec` refuses, the error it must raise): a wrong type, a number out of
    range, too long (`TooLarge`) or too short, a length not allowed, an unprintable
    string, an unknown enum value, a value a `Check` refuses, or an array with one bad
    element."""
    options: list[st.SearchStrategy[tuple[Any, type[Malformed]]]] = [
        st.sampled_from([(v, Malformed) for v in _wrong_types(spec)])]
    if spec.range is not None:
        lo, hi = spec.range.lo, spec.range.hi
        if lo > INT_MIN:
            options.append(st.integers(INT_MIN, lo - 1).map(lambda v: (v, Malformed)))
        if hi < INT_MAX:
            options.append(st.integers(hi + 1, INT_MAX).map(lambda v: (v, Malformed)))
    if spec.is_enum:
        options.append(st.just(("no-such-value", Malformed)))
    counter = [x for check in spec.checks for x in check.counterexamples]
    if counter:
        options.append(st.sampled_from([(x, Malformed) for x in counter]))
    if spec.base in (bytes, str):
        unit = b"x" if spec.base is bytes else "x"
        if spec.length is not None and spec.length.hi < BIG:
            options.append(st.just((unit * (spec.length.hi + 1), TooLarge)))
        if spec.length is not None and spec.length.lo > 0:
            options.append(st.integers(0, spec.length.lo - 1).map(
                lambda n: (unit * n, Malformed)))
        if spec.length_in is not None:
            sizes = spec.length_in.sizes
            wrong = [n for n in range(max(sizes) + 2) if n not in sizes]
            options.append(st.sampled_from(wrong).map(lambda n: (unit * n, Malformed)))
        if spec.printable:
            options.append(st.just(("a\nb", Malformed)))
    if spec.item is not None:
        item = spec.item
        lo, hi = _length_bounds(spec, BIG)
        if spec.length is not None and hi < 2 * BIG:
            options.append(valid(item).map(lambda x: ((x,) * (hi + 1), TooLarge)))
        if lo > 0:
            options.append(valid(item).map(lambda x: ((x,) * (lo - 1), Malformed)))
        at_least = max(lo, 1)
        if at_least <= hi and not spec.checks:  # a whole-array Check may refuse it first
            options.append(st.tuples(st.lists(valid(item), min_size=at_least - 1,
                                              max_size=at_least - 1), invalid(item))
                           .map(lambda parts: ((*parts[0], parts[1][0]), parts[1][1])))
    return st.one_of(options)


def wire_value(value: Any) -> Any:
    """A field value as it arrives decoded: records as their arrays, members as strings."""
    if isinstance(value, tuple):
        return tuple(wire_value(x) for x in value)
    if hasattr(value, "__dataclass_fields__"):
        return tuple(wire_value(x) for x in fields.to_wire(value))
    return value
