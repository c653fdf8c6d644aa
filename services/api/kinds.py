"""What one JSON value of the REST API is: the kinds a declared shape's fields are made of.

A `Kind` knows three things about a value: how OpenAPI documents it (a pydantic annotation
and constraints such as `ge`, `pattern`, `max_length`), how a value a client sent is checked
and converted (`parser`: a function built once, with its bounds bound in, so that checking
thousands of transactions stays fast), and how a reply writes it (`dump`, e.g. bytes to
hex). The documented constraints and the parser are written side by side in each kind, and a
property test (tests/unit/services/api/test_spec.py) checks that they accept the same values.
Shapes, the JSON objects made of these, are `services.api.spec`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Query

from common.errors import Malformed, TooLarge

Parser = Callable[[Any, str], Any]
Dump = Callable[[Any], Any]


def kind_of(value: Any) -> str:
    """How an error message names the JSON type of a value a client sent."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number with a fraction",
            str: "a string", list: "an array", dict: "an object"}.get(type(value), "a value")


# --- kinds: what one JSON value is ----------------------------------------------------------


class Kind:
    """How one JSON value is documented (`annotation`, `constraints`), checked when a client
    sends it (`parser`) and written in a reply (`dump`; None when the value is JSON as is)."""

    __slots__ = ()

    def annotation(self) -> Any:
        return Any

    def constraints(self) -> dict[str, Any]:
        return {}

    def parser(self) -> Parser:
        return _as_is

    def dump(self) -> Dump | None:
        return None


def _as_is(value: Any, _name: str) -> Any:
    return value


class AnyJSON(Kind):
    """Any JSON value, passed on unchecked (a batch's items are checked one by one)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Int(Kind):
    """A JSON integer in [lo, hi]; a bound of None is neither documented nor checked."""

    lo: int | None = None
    hi: int | None = None

    def annotation(self) -> Any:
        return int

    def constraints(self) -> dict[str, Any]:
        return {k: v for k, v in (("ge", self.lo), ("le", self.hi)) if v is not None}

    def parser(self) -> Parser:
        lo = self.lo if self.lo is not None else -(2**1024)
        hi = self.hi if self.hi is not None else 2**1024
        shown = f"[{self.lo}, {self.hi}]"

        def parse(value: Any, name: str) -> int:
            # `type(...) is int`: JSON `true` is a Python bool, which isinstance() calls an int
            if type(value) is not int:
                raise Malformed(f"{name} must be a JSON integer, got {kind_of(value)}")
            if not lo <= value <= hi:
                raise Malformed(f"{name} must be in {shown}")
            return value

        return parse

    def query(self, default: Any, **doc: Any) -> Any:
        """A FastAPI query parameter of this kind (FastAPI checks the bounds)."""
        return Query(default, **self.constraints(), **doc)


_HEX_TEXT = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class Hex(Kind):
    """Bytes as a hex string: exactly `length` bytes, or at most `max_len` (`0x` allowed on
    input); with neither, a reply's hex, documented as a plain string."""

    length: int | None = None
    max_len: int | None = None

    def annotation(self) -> Any:
        return str

    def constraints(self) -> dict[str, Any]:
        if self.length is not None:
            digits = 2 * self.length
            return {"pattern": f"^(0[xX])?[0-9a-fA-F]{{{digits}}}$", "min_length": digits,
                    "max_length": digits + 2}
        if self.max_len is not None:
            return {"pattern": f"^(0[xX])?([0-9a-fA-F]{{2}}){{0,{self.max_len}}}$",
                    "max_length": 2 * self.max_len + 2}
        return {}

    def parser(self) -> Parser:
        """Decode a hex string (`0x` prefix allowed); its length is checked on the text,
        before anything is decoded."""
        digits = 2 * self.length if self.length is not None else None
        limit = 2 * self.max_len if self.max_len is not None else None
        is_hex = _HEX_TEXT.fullmatch

        def parse(value: Any, name: str) -> bytes:
            if type(value) is not str:
                raise Malformed(f"{name} must be a hex string, got {kind_of(value)}")
            text = value[2:] if value[:2] in ("0x", "0X") else value
            size = len(text)
            if digits is not None and size != digits:
                raise Malformed(f"{name} must be {digits} hex characters")
            if limit is not None and size > limit:
                raise TooLarge(f"{name} longer than {limit // 2} bytes")
            if size % 2 or not is_hex(text):
                raise Malformed(f"{name} is not valid hex")
            return bytes.fromhex(text)

        return parse

    def dump(self) -> Dump:
        return bytes.hex


@dataclass(frozen=True, slots=True)
class Text(Kind):
    """A string, at most `max_length` characters, matching `pattern` in full when given;
    `hint` is the message for a value that does not."""

    max_length: int | None = None
    pattern: str | None = None
    hint: str = ""

    def annotation(self) -> Any:
        return str

    def constraints(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pattern is not None:
            out["pattern"] = f"^{self.pattern}$"
        if self.max_length is not None:
            out["max_length"] = self.max_length
        return out

    def parser(self) -> Parser:
        limit = self.max_length
        regex = re.compile(self.pattern) if self.pattern is not None else None
        hint = self.hint

        def parse(value: Any, name: str) -> str:
            if type(value) is not str:
                raise Malformed(hint or f"{name} must be a string, got {kind_of(value)}")
            if limit is not None and len(value) > limit:
                raise Malformed(hint or f"{name} longer than {limit} characters")
            if regex is not None and not regex.fullmatch(value):
                raise Malformed(hint or f"{name} has the wrong form")
            return value

        return parse


@dataclass(frozen=True, slots=True)
class Bool(Kind):
    def annotation(self) -> Any:
        return bool

    def parser(self) -> Parser:
        def parse(value: Any, name: str) -> bool:
            if type(value) is not bool:
                raise Malformed(f"{name} must be true or false, got {kind_of(value)}")
            return value

        return parse


@dataclass(frozen=True, slots=True)
class Number(Kind):
    """A JSON number, a fraction allowed (a ratio a reply computes); never a boolean."""

    def annotation(self) -> Any:
        return float

    def parser(self) -> Parser:
        def parse(value: Any, name: str) -> float:
            if type(value) not in (int, float):
                raise Malformed(f"{name} must be a number, got {kind_of(value)}")
            return float(value)

        return parse


@dataclass(frozen=True, slots=True)
class Choice(Kind):
    """One of a few JSON values (strings, or a `StrEnum`'s values)."""

    values: tuple[Any, ...]

    @staticmethod
    def of(values: Iterable[Any]) -> Choice:
        return Choice(tuple(str(v) if isinstance(v, str) else v for v in values))

    def annotation(self) -> Any:
        return Literal[self.values]

    def parser(self) -> Parser:
        allowed = {(type(v), v) for v in self.values}
        shown = ", ".join(repr(v) for v in self.values)

        def parse(value: Any, name: str) -> Any:
            if (type(value), value) not in allowed:
                raise Malformed(f"{name} must be one of {shown}")
            return value

        return parse


@dataclass(frozen=True, slots=True)
class Nullable(Kind):
    """`inner`, or null."""

    inner: Kind

    def annotation(self) -> Any:
        return self.inner.annotation() | None

    def constraints(self) -> dict[str, Any]:
        return self.inner.constraints()

    def parser(self) -> Parser:
        inner = self.inner.parser()

        def parse(value: Any, name: str) -> Any:
            return None if value is None else inner(value, name)

        return parse

    def dump(self) -> Dump | None:
        inner = self.inner.dump()
        if inner is None:
            return None

        def dump(value: Any) -> Any:
            return None if value is None else inner(value)

        return dump


@dataclass(frozen=True, slots=True)
class ListOf(Kind):
    """A JSON array of `item`s, at most `max_items` long (more is `too_large`)."""

    item: Kind
    max_items: int | None = None

    def annotation(self) -> Any:
        return list[self.item.annotation()]  # type: ignore[misc]

    def constraints(self) -> dict[str, Any]:
        return {"max_length": self.max_items} if self.max_items is not None else {}

    def parser(self) -> Parser:
        item = None if isinstance(self.item, AnyJSON) else self.item.parser()
        limit = self.max_items

        def parse(value: Any, name: str) -> list[Any]:
            if type(value) is not list:
                raise Malformed(f"{name} must be an array, got {kind_of(value)}")
            if limit is not None and len(value) > limit:
                raise TooLarge(f"{name}: {len(value)} items exceed {limit}")
            if item is None:
                return value
            return [item(v, f"{name}[{i}]") for i, v in enumerate(value)]

        return parse

    def dump(self) -> Dump | None:
        item = self.item.dump()
        if item is None:
            return None  # tuples and lists of JSON values are JSON arrays to orjson

        def dump(values: Iterable[Any]) -> list[Any]:
            return [item(v) for v in values]

        return dump
