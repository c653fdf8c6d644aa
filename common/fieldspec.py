"""What a record's field declarations say: the constraints, the named aliases, and the
`Spec` each annotation resolves to (`common.fields` compiles the checks from them).

    height: U63
    head: Hash32
    txs: Annotated[tuple[TxBytes, ...], Len(1, MAX_TXS_PER_MESSAGE)]
    status: TxStatus

The named aliases (`U32`, `U63`, `U64`, `Hash32`, `Address20`, ...) cover the common cases;
anything else is `Annotated[base, constraint, ...]` with the constraints below (a function
call such as `Bytes(64)` would read shorter, but mypy accepts only types in annotations, so
the bounds travel as `Annotated` metadata, as in pydantic and annotated-types). A base is
int (never bool), bool, bytes (never str), str, a `StrEnum` (the string on the wire, the
member in Python), `tuple[T, ...]` (an array), or another record (its field array). A rule
across a record's fields is its class's `RULE` (`Rule`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from common.crypto import ADDRESS_LEN, HASH_LEN

# --- constraints ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """An integer in `lo`..`hi`, both included."""

    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Len:
    """A length in `lo`..`hi`: bytes of a bytes field, characters of a str, items of an
    array. Over `hi` is `TooLarge`, under `lo` `Malformed`."""

    lo: int
    hi: int


@dataclass(frozen=True, slots=True, init=False)
class LenIn:
    """A length that is one of `sizes` (e.g. 0 or 32: "absent or a whole hash")."""

    sizes: tuple[int, ...]

    def __init__(self, *sizes: int) -> None:
        object.__setattr__(self, "sizes", tuple(sorted(sizes)))


@dataclass(frozen=True, slots=True)
class Printable:
    """A string of printable characters only (no newline, no control character)."""


@dataclass(frozen=True, slots=True)
class Check:
    """A rule that types and bounds cannot say: `test(value)` is true for a valid value
    (called after the base type and bounds passed). `what` names a valid value in errors and
    docs; `examples` and `counterexamples` feed the property tests."""

    test: Callable[[Any], bool]
    what: str
    examples: tuple[Any, ...] = ()
    counterexamples: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule across a record's fields, which no one field's declaration can say (a count
    and the indexes that must stay below it): the class names it `RULE: ClassVar[Rule]`.
    `test(record)` is true for a valid record; it runs once every field passed its own
    checks, wherever those run (a record built from a decoded array, a constructed one
    validated). `what` names a valid record in errors and in the catalogue's shape."""

    test: Callable[[Any], bool]
    what: str


def rule_of(cls: type) -> Rule | None:
    """The record's `RULE`, if it has one."""
    rule = getattr(cls, "RULE", None)
    return rule if isinstance(rule, Rule) else None


MAX_U32 = 2**32 - 1
MAX_U63 = 2**63 - 1
MAX_U64 = 2**64 - 1

U8 = Annotated[int, Range(0, 255)]
U32 = Annotated[int, Range(0, MAX_U32)]
U63 = Annotated[int, Range(0, MAX_U63)]
U64 = Annotated[int, Range(0, MAX_U64)]
Hash32 = Annotated[bytes, Len(HASH_LEN, HASH_LEN)]
Address20 = Annotated[bytes, Len(ADDRESS_LEN, ADDRESS_LEN)]
OptHash32 = Annotated[bytes, LenIn(0, HASH_LEN)]  # empty when absent
OptAddress20 = Annotated[bytes, LenIn(0, ADDRESS_LEN)]  # empty when absent

_SCALARS = (int, bool, bytes, str, type(None))


# --- what an annotation declares --------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One field's declared shape: `base` is int, bool, bytes, str, NoneType, a StrEnum, a
    record class, or tuple (then `item` is the element's spec)."""

    base: Any
    item: Spec | None = None
    range: Range | None = None
    length: Len | None = None
    length_in: LenIn | None = None
    printable: bool = False
    checks: tuple[Check, ...] = ()

    @property
    def is_enum(self) -> bool:
        return isinstance(self.base, type) and issubclass(self.base, StrEnum)

    @property
    def is_record(self) -> bool:
        return dataclasses.is_dataclass(self.base)

    @property
    def converts(self) -> bool:
        """True when decoding yields another object than the wire value (a member, a record)."""
        return self.is_enum or self.is_record or (self.item is not None and self.item.converts)

    def describe(self) -> str:
        """A compact, stable rendering for docs/protocol.md and the bus catalogue's
        fingerprint: `u32`, `int[-1..2^63-1]`, `bytes[32]`, `bytes[0|32]`, `str[0..64]
        printable`, `pending|queued|...`, `[bytes[32]; 0..10000]`, `TxRefusal`."""
        if self.item is not None:
            text = f"[{self.item.describe()}{self._lengths('; ')}]"
        elif self.is_enum:
            text = "|".join(m.value for m in self.base)
        elif self.is_record:
            text = self.base.__name__
        else:
            text = "nil" if self.base is type(None) else self.base.__name__
            if self.range is not None:
                lo, hi = self.range.lo, self.range.hi
                text = _NAMED_RANGES.get((lo, hi)) or f"int[{_num(lo)}..{_num(hi)}]"
            text += self._lengths("[", "]")
        if self.printable:
            text += " printable"
        for check in self.checks:
            text += f" ({check.what})"
        return text

    def _lengths(self, before: str, after: str = "") -> str:
        if self.length is not None:
            lo, hi = self.length.lo, self.length.hi
            return f"{before}{lo}{after}" if lo == hi else f"{before}{lo}..{_num(hi)}{after}"
        if self.length_in is not None:
            return before + "|".join(map(str, self.length_in.sizes)) + after
        return ""


_NAMED_RANGES = {(0, 255): "u8", (0, MAX_U32): "u32", (0, MAX_U63): "u63", (0, MAX_U64): "u64"}


def _num(n: int) -> str:
    """2^63-1 rather than 9223372036854775807."""
    for k in range(16, 65):
        if n in (2**k, 2**k - 1):
            return f"2^{k}" if n == 2**k else f"2^{k}-1"
    return str(n)


def spec_of(annotation: Any, where: str = "") -> Spec:
    """Resolve an annotation (aliases and nested `Annotated` included) to its `Spec`; a
    declaration this module cannot check is a bug in the catalogue (`TypeError`)."""
    metadata: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is Annotated:
        metadata = annotation.__metadata__
        annotation = typing.get_args(annotation)[0]
    item = None
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: only tuple[T, ...] arrays are supported")
        item = spec_of(args[0], f"{where}[]")
        base: Any = tuple
    elif annotation in _SCALARS or (isinstance(annotation, type)
                                    and (issubclass(annotation, StrEnum)
                                         or dataclasses.is_dataclass(annotation))):
        base = annotation
    else:
        raise TypeError(f"{where}: cannot check a field of type {annotation!r}")
    found: dict[str, Any] = {"checks": ()}
    for meta in metadata:
        if isinstance(meta, Range) and base is int:
            found["range"] = meta
        elif isinstance(meta, Len) and base in (bytes, str, tuple):
            found["length"] = meta
        elif isinstance(meta, LenIn) and base in (bytes, str, tuple):
            found["length_in"] = meta
        elif isinstance(meta, Printable) and base is str:
            found["printable"] = True
        elif isinstance(meta, Check):
            found["checks"] += (meta,)
        else:
            raise TypeError(f"{where}: {meta!r} does not apply to {base!r}")
    return Spec(base, item, **found)


def record_specs(cls: type) -> list[tuple[str, Spec]]:
    """The (name, spec) of each field a record's constructor takes, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, spec_of(hints[f.name], f"{cls.__qualname__}.{f.name}"))
            for f in dataclasses.fields(cls) if f.init]


def describe(cls: type) -> list[tuple[str, str]]:
    """Each field's name and declared shape, as `Spec.describe` renders it."""
    return [(name, spec.describe()) for name, spec in record_specs(cls)]
