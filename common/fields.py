"""One way to declare a record's fields: the bounds live in the annotations
(`common.fieldspec`, whose names this module passes on), checked by code compiled here once
per class.

Bus messages (`common.messages`), p2p messages (`common.wire`) and the domain types
(`common.types`) all say what a valid field is where the field is declared, and call
`build`, `validate` and `to_wire` from here.

The first use of a class compiles its declarations into two small Python functions, the way
`dataclasses` builds `__init__`: `build` turns a decoded field array into an instance and
`check` validates a constructed one. Each is one conjunction of the plain checks (so the
common case costs what a hand-written check would), followed by the fields that convert
(enums, nested records), then the record's rule if it has one; only a value that fails the
conjunction is walked field by field to raise `Malformed` (or `TooLarge`, for a value over a
size bound) naming the field: `get_account.address must be 20 bytes`,
`PEX.peers[3].endpoint must be tcp://host:port`.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import Malformed, TooLarge
from common.fieldspec import (
    MAX_U32,
    MAX_U63,
    MAX_U64,
    U8,
    U32,
    U63,
    U64,
    Address20,
    Check,
    Hash32,
    Len,
    LenIn,
    OptAddress20,
    OptHash32,
    Printable,
    Range,
    Rule,
    Spec,
    describe,
    record_specs,
    rule_of,
    spec_of,
)

__all__ = [
    "Address20",
    "build",
    "Check",
    "check_each",
    "Compiled",
    "compiled",
    "Conv",
    "converter",
    "describe",
    "Hash32",
    "Len",
    "LenIn",
    "MAX_U32",
    "MAX_U63",
    "MAX_U64",
    "OptAddress20",
    "OptHash32",
    "Printable",
    "Range",
    "record_specs",
    "Rule",
    "rule_of",
    "Spec",
    "spec_of",
    "to_wire",
    "U32",
    "U63",
    "U64",
    "U8",
    "validate",
]

# --- the field-by-field path: precise errors, and the fields that convert ----------------------

Conv = Callable[[Any, str], Any]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _sized(spec: Spec, n: int, path: str, unit: str) -> None:
    if spec.length is not None:
        lo, hi = spec.length.lo, spec.length.hi
        if n > hi:
            raise TooLarge(f"{path} has more than {hi} {unit}" if unit == "items"
                           else f"{path} longer than {hi} {unit}")
        if n < lo:
            raise Malformed(f"{path} needs at least {lo} items" if unit == "items" else
                            f"{path} must be {lo} {unit}" if lo == hi else
                            f"{path} must be {lo}..{hi} {unit}")
    if spec.length_in is not None and n not in spec.length_in.sizes:
        sizes = " or ".join(map(str, spec.length_in.sizes))
        raise Malformed(f"{path} must have {sizes} {unit}, not {n}")


def converter(spec: Spec) -> Conv:
    """`conv(value, path)`: the checked (and, for enums and records, converted) value, or
    `Malformed`/`TooLarge` naming `path`. Slower than the compiled conjunction; it runs for
    fields that convert and to explain a value the conjunction refused."""
    base = spec.base
    checks = spec.checks

    def run_checks(value: Any, path: str) -> Any:
        for check in checks:
            if not check.test(value):
                raise Malformed(f"{path} must be {check.what}, not {_show(value)}")
        return value

    if spec.item is not None:
        item = converter(spec.item)

        def items(value: Any, path: str) -> Any:
            if type(value) is not tuple:
                raise Malformed(f"{path} must be an array")
            _sized(spec, len(value), path, "items")
            try:  # no index in the common case: building n path strings costs more than it
                out = tuple([item(x, path) for x in value])
            except Malformed:
                for i, x in enumerate(value):
                    item(x, f"{path}[{i}]")
                raise
            return run_checks(out, path)

        return items
    if spec.is_enum:
        members = {m.value: m for m in base}
        choices = ", ".join(members)

        def enum(value: Any, path: str) -> Any:
            member = members.get(value) if isinstance(value, str) else None
            if member is None:
                raise Malformed(f"{path} must be one of {choices}, not {_show(value)}")
            return member

        return enum
    if spec.is_record:
        record = compiled(base)

        def nested(value: Any, path: str) -> Any:
            return value if type(value) is base else record.build(value, path + ".")

        return nested
    noun = {int: "an integer", bool: "a boolean", bytes: "bytes", str: "a string",
            type(None): "nil"}[base]

    def scalar(value: Any, path: str) -> Any:
        if type(value) is not base:  # exact: bool is an int in Python, `true` must not pass
            raise Malformed(f"{path} must be {noun}")
        if spec.range is not None and not spec.range.lo <= value <= spec.range.hi:
            raise Malformed(f"{path} out of range [{spec.range.lo}, {spec.range.hi}]")
        if base is bytes or base is str:
            _sized(spec, len(value), path, "bytes" if base is bytes else "characters")
        if spec.printable and not value.isprintable():
            raise Malformed(f"{path} has unprintable characters")
        return run_checks(value, path)

    return scalar


# --- compiling a record ---------------------------------------------------------------------


def _condition(spec: Spec, var: str, ns: dict[str, Any], depth: int = 0) -> str | None:
    """A Python expression true exactly when `var` passes `spec` (None for a field that
    converts: that one goes through its converter)."""
    if spec.converts:
        return None
    if spec.item is not None:
        x = f"x{depth}"
        inner = _condition(spec.item, x, ns, depth + 1)
        parts = [f"type({var}) is tuple"]
    else:
        base = "NoneType" if spec.base is type(None) else spec.base.__name__
        parts = [f"{var} is None" if spec.base is type(None) else f"type({var}) is {base}"]
    if spec.range is not None:
        parts.append(f"{int(spec.range.lo)} <= {var} <= {int(spec.range.hi)}")
    if spec.length is not None:
        lo, hi = int(spec.length.lo), int(spec.length.hi)
        parts.append(f"len({var}) == {lo}" if lo == hi else f"{lo} <= len({var}) <= {hi}")
    if spec.length_in is not None:
        parts.append(f"len({var}) in {tuple(int(n) for n in spec.length_in.sizes)!r}")
    if spec.printable:
        parts.append(f"{var}.isprintable()")
    if spec.item is not None:  # the elements before any check of the whole array
        parts.append(f"all({inner} for {x} in {var})")
    for check in spec.checks:
        name = f"_check{len(ns)}"
        ns[name] = check.test
        parts.append(f"{name}({var})")
    return " and ".join(parts)


@dataclass(frozen=True)
class Compiled:
    """A record's compiled checks: `build(values, prefix)` makes an instance from a decoded
    field array; `check(obj, prefix)` validates (and converts) a constructed one. `prefix`
    is what error messages put before a field name ("get_account.", "HEL.", "")."""

    names: tuple[str, ...]
    specs: tuple[Spec, ...]
    build: Callable[[Any, str], Any]
    check: Callable[[Any, str], None]
    wire: Callable[[Any], list[Any]]  # `to_wire`, written out for this class
    source: str  # the generated code, for whoever debugs it


_COMPILED: dict[type, Compiled] = {}


def compiled(cls: type) -> Compiled:
    """The compiled checks of a record class, made on first use and kept."""
    done = _COMPILED.get(cls)
    if done is None:
        done = _COMPILED[cls] = _compile(cls)
    return done


def _compile(cls: type) -> Compiled:
    pairs = record_specs(cls)
    names = tuple(n for n, _ in pairs)
    specs = tuple(s for _, s in pairs)
    convs = [converter(s) for s in specs]
    count = len(names)

    def explain(values: tuple[Any, ...], prefix: str) -> None:
        for name, conv, value in zip(names, convs, values, strict=True):
            conv(value, prefix + name)
        # the conjunction and the converters disagree: a bug here, never the input's fault
        raise AssertionError(f"{cls.__qualname__}: {values!r} refused but not explained")

    def arity(values: Any, prefix: str) -> None:
        what = prefix[:-1] or cls.__name__
        raise Malformed(f"{what} must be an array of {count} fields ({', '.join(names)})")

    rule = rule_of(cls)

    def broken(prefix: str) -> None:
        assert rule is not None
        _rule_broken(cls, rule, prefix)

    ns: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_set": object.__setattr__,
                          "_explain": explain, "_arity": arity, "NoneType": type(None),
                          "_rule": rule.test if rule else None, "_broken": broken}
    holds = ["    if not _rule(obj): _broken(prefix)"] if rule else []
    conds: list[str] = []
    convert_lines: list[tuple[int, list[str]]] = []
    for i, (name, spec) in enumerate(pairs):
        cond = _condition(spec, f"v{i}", ns)
        if cond is not None:
            conds.append(f"({cond})")
        elif spec.is_enum:
            ns[f"_enum{i}"] = {m.value: m for m in spec.base}
            convert_lines.append((i, [
                f"c{i} = _enum{i}.get(v{i}) if isinstance(v{i}, str) else None",
                f"if c{i} is None: _explain(ALL, prefix)"]))
        else:
            ns[f"_conv{i}"] = convs[i]
            convert_lines.append((i, [f"c{i} = _conv{i}(v{i}, prefix + {name!r})"]))
    values = ", ".join(f"v{i}" for i in range(count)) + ("," if count == 1 else "")
    converted = {i for i, _ in convert_lines}

    build = ["def build(values, prefix):",
             f"    if type(values) is not tuple or len(values) != {count}:",
             "        _arity(values, prefix)"]
    if count:
        build.append(f"    {values} = values")
    if conds:
        build += [f"    if not ({' and '.join(conds)}):", "        _explain(values, prefix)"]
    for _, lines in convert_lines:
        build += ["    " + line.replace("ALL", "values") for line in lines]
    build.append("    obj = _new(_cls)")
    for i, name in enumerate(names):
        value = f"{'c' if i in converted else 'v'}{i}"
        slot = cls.__dict__.get(name)
        if isinstance(slot, types.MemberDescriptorType):
            # a slot's own setter: a third faster than object.__setattr__, which finds it
            # by name, and every transaction decoded sets nine
            ns[f"_put{i}"] = slot.__set__
            build.append(f"    _put{i}(obj, {value})")
        else:
            build.append(f"    _set(obj, {name!r}, {value})")
    build += [*holds, "    return obj"]

    check = ["def check(obj, prefix):"]
    check += [f"    v{i} = obj.{name}" for i, name in enumerate(names)]
    every = f"({values})" if count else "()"
    if conds:
        check += [f"    if not ({' and '.join(conds)}):", f"        _explain({every}, prefix)"]
    for i, lines in convert_lines:
        check += ["    " + line.replace("ALL", every) for line in lines]
        check.append(f"    if c{i} is not v{i}: _set(obj, {names[i]!r}, c{i})")
    check += [*holds, "    return None"]

    ns["_wire"] = to_wire
    parts = [f"_wire(obj.{name})" if spec.is_record
             else f"[_wire(x) for x in obj.{name}]" if spec.item is not None
             and spec.item.is_record else f"obj.{name}" for name, spec in pairs]
    wire = ["def wire(obj):", f"    return [{', '.join(parts)}]"]

    source = "\n\n".join("\n".join(f) for f in (build, check, wire)) + "\n"
    exec(compile(source, f"<fields of {cls.__qualname__}>", "exec"), ns)  # noqa: S102
    return Compiled(names, specs, ns["build"], ns["check"], ns["wire"], source)


# --- what the catalogues and the types call ----------------------------------------------------


def build(cls: type, values: Any, prefix: str = "") -> Any:
    """An instance of `cls` from a decoded field array (a tuple), every field checked."""
    return compiled(cls).build(values, prefix)


def validate(obj: Any, prefix: str = "") -> None:
    """Check (and convert in place) a constructed record's fields: call from
    `__post_init__` where construction must refuse what decoding refuses."""
    compiled(type(obj)).check(obj, prefix)


def check_each(cls: type, values: tuple[Any, ...], prefix: str = "") -> None:
    """The field-by-field path alone, then the record's rule (the tests hold the compiled
    conjunction to it)."""
    done = compiled(cls)
    if len(values) != len(done.names):
        raise Malformed(f"{prefix[:-1] or cls.__name__} must be an array of "
                        f"{len(done.names)} fields")
    converted = [converter(spec)(value, prefix + name)
                 for name, spec, value in zip(done.names, done.specs, values, strict=True)]
    rule = rule_of(cls)
    if rule is not None and not rule.test(cls(*converted)):
        _rule_broken(cls, rule, prefix)


def _rule_broken(cls: type, rule: Rule, prefix: str) -> None:
    raise Malformed(f"{prefix[:-1] or cls.__name__} must have {rule.what}")


def to_wire(obj: Any) -> list[Any]:
    """A record's field array; nested records become their own arrays (msgpack writes a
    tuple as an array and a StrEnum member as its string, so nothing else changes)."""
    return compiled(type(obj)).wire(obj)


