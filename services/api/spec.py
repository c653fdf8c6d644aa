"""One declaration per JSON shape of the REST API, from which its docs and its checks both come.

The gateway reads raw bodies and answers with orjson: the batch route checks thousands of
transactions per second per worker, which pydantic per item cannot. So that `/docs` and what
the gateway accepts or answers cannot drift apart, every shape is declared once, as a `Shape`
(a name, a description, examples, and `Field`s whose `Kind` says what one JSON value is), and
the rest is derived from that declaration:

- `Shape.model`: a pydantic model made with `pydantic.create_model`, used only by OpenAPI
  (request bodies and response models);
- `Shape.parse`: the strict check of a request value orjson parsed: a JSON object with no
  unknown field and every required one, each field checked by its kind (an integer is never
  a bool or a float, hex is exactly hex, a length is bounded before anything is decoded);
- `Shape.render`: a reply's JSON from a domain object (bytes become hex, a nested shape is
  rendered by its own declaration).

The kinds of value (`services.api.kinds`) build their checking functions once, so a
declared shape parses as fast as the hand-written checks it replaced. Every refusal is a
`CcoinError` (`Malformed`, or `TooLarge` for a size bound) whose class declares its status.
"""

from __future__ import annotations

import keyword
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PydanticField

from common.errors import Malformed
from services.api.kinds import Dump, Kind, Parser, kind_of


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_DEFAULT: Any = _Sentinel("NO_DEFAULT")  # a request field with no value assumed when absent
SAME_NAME: Any = _Sentinel("SAME_NAME")  # a reply field read from the attribute of its name
NO_EXAMPLE: Any = _Sentinel("NO_EXAMPLE")


# --- fields and shapes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a JSON object.

    In a request: `required` unless it has a `default` (the JSON value assumed when it is
    absent, checked like a sent one). In a reply: always written unless `required` is
    false, and then only when the route gives it; its value is the source object's
    attribute `src` (by default the field's own name), or `src(obj)` when callable, or,
    with `src=None`, whatever the route passes by name."""

    name: str
    kind: Kind
    doc: str = ""
    default: Any = NO_DEFAULT
    required: bool = True
    src: str | Callable[[Any], Any] | None = SAME_NAME
    example: Any = NO_EXAMPLE

    @property
    def must_be_sent(self) -> bool:
        return self.required and self.default is NO_DEFAULT

    def getter(self, shape: str) -> Callable[[Any], Any]:
        src = self.name if self.src is SAME_NAME else self.src
        if callable(src):
            return src
        if src is None:
            where = f"{shape}.{self.name}"

            def missing(_obj: Any) -> Any:
                raise TypeError(f"{where} is not read from the source: pass it by name")

            return missing
        return operator.attrgetter(src)


def _compile_render(shape: str, fields: tuple[Field, ...]) -> Callable[[Any], dict[str, Any]]:
    """`Shape.render(obj)` with nothing given by name, as one generated function: the same
    sources and dumps (a plain attribute read inline), without the per-field loop; a
    4,000-transaction block renders each of its transactions through this."""
    namespace: dict[str, Any] = {}
    members = []
    for i, f in enumerate(fields):
        if not f.required:
            continue
        src = f.name if f.src is SAME_NAME else f.src
        if isinstance(src, str) and src.isidentifier() and not keyword.iskeyword(src):
            value = f"obj.{src}"
        else:
            namespace[f"get{i}"] = f.getter(shape)
            value = f"get{i}(obj)"
        dump = f.kind.dump()
        if dump is not None:
            namespace[f"dump{i}"] = dump
            value = f"dump{i}({value})"
        members.append(f"{f.name!r}: {value}")
    exec(f"def render(obj):\n    return {{{', '.join(members)}}}\n", namespace)  # noqa: S102
    render: Callable[[Any], dict[str, Any]] = namespace["render"]
    return render


def _python_name(name: str) -> str:
    """The pydantic attribute for a JSON member (`from` is a keyword; `json`, `copy`...
    would shadow BaseModel's methods): the name itself, or it with `_` and an alias."""
    if name.isidentifier() and not keyword.iskeyword(name) and not hasattr(BaseModel, name):
        return name
    return name + "_"


class Shape(Kind):
    """A JSON object declared once: its OpenAPI model, its parser and its renderer."""

    __slots__ = ("name", "fields", "doc", "examples", "what", "names", "_required",
                 "_parsers", "_defaults", "_render_steps", "_render_all", "_model")

    def __init__(self, name: str, fields: Sequence[Field], doc: str = "",
                 examples: Sequence[Any] = (), *, what: str = "") -> None:
        self.name = name
        self.fields = tuple(fields)
        self.doc = doc
        self.examples = tuple(examples)
        self.what = what or name
        self.names = frozenset(f.name for f in self.fields)
        if len(self.names) != len(self.fields):
            raise TypeError(f"{name}: a field is declared twice")
        self._required = frozenset(f.name for f in self.fields if f.must_be_sent)
        self._parsers = {f.name: f.kind.parser() for f in self.fields}
        self._defaults = tuple((f.name, self._parsers[f.name](f.default, f.name))
                               for f in self.fields if f.default is not NO_DEFAULT)
        self._render_steps = tuple((f.name, f.getter(name), f.kind.dump(), f.required)
                                   for f in self.fields)
        self._render_all = _compile_render(name, self.fields)
        self._model: type[BaseModel] | None = None

    def __repr__(self) -> str:
        return f"Shape({self.name})"

    def extend(self, name: str, fields: Sequence[Field], doc: str = "",
               examples: Sequence[Any] = ()) -> Shape:
        """This shape with more fields (e.g. a transaction and its status)."""
        return Shape(name, (*self.fields, *fields), doc, examples, what=self.what)

    # --- OpenAPI ----------------------------------------------------------------------------

    @property
    def model(self) -> type[BaseModel]:
        """The pydantic model documenting this shape (built once)."""
        if self._model is None:
            members: dict[str, Any] = {}
            for f in self.fields:
                info: dict[str, Any] = dict(f.kind.constraints())
                if f.doc:
                    info["description"] = f.doc
                if f.example is not NO_EXAMPLE:
                    info["examples"] = [f.example]
                py = _python_name(f.name)
                if py != f.name:
                    info["alias"] = f.name
                if f.default is not NO_DEFAULT:
                    info["default"] = f.default
                elif not f.required:
                    info["default"] = None
                members[py] = (f.kind.annotation(), PydanticField(**info))
            extra: dict[str, Any] | None = \
                {"examples": list(self.examples)} if self.examples else None
            self._model = create_model(  # type: ignore[call-overload]
                self.name, __doc__=self.doc or None,
                __config__=ConfigDict(extra="forbid", populate_by_name=True,
                                      json_schema_extra=extra),  # type: ignore[typeddict-item]
                **members)
        assert self._model is not None
        return self._model

    def annotation(self) -> Any:
        return self.model

    # --- requests ---------------------------------------------------------------------------

    def parse(self, value: Any, name: str = "") -> dict[str, Any]:
        """The checked fields of a JSON object sent by a client, by name: every field sent
        or defaulted (converted by its kind); a field that may be absent and was is left
        out."""
        what = name or self.what
        if type(value) is not dict:
            raise Malformed(f"{what} must be a JSON object, got {kind_of(value)}")
        keys = value.keys()
        unknown = keys - self.names
        if unknown:
            shown = ", ".join(n[:40] for n in sorted(unknown)[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise Malformed(f"{what}: unknown field(s) {shown}{more}")
        missing = self._required - keys
        if missing:
            raise Malformed(f"{what}: missing field(s) {', '.join(sorted(missing))}")
        parsers = self._parsers
        out = {field_name: parsers[field_name](sent, field_name)
               for field_name, sent in value.items()}
        for field_name, default in self._defaults:
            if field_name not in out:
                out[field_name] = default
        return out

    def parser(self) -> Parser:
        return self.parse

    # --- replies ----------------------------------------------------------------------------

    def render(self, obj: Any = None, /, **given: Any) -> dict[str, Any]:
        """The JSON object of `obj`: each field from `given` when passed by name, else read
        from `obj`; a field that is not `required` is written only when given."""
        if not given:
            return self._render_all(obj)  # every field from `obj` (a block's transactions)
        if not given.keys() <= self.names:
            raise TypeError(f"{self.name} has no field(s) {sorted(given.keys() - self.names)}")
        out: dict[str, Any] = {}
        for field_name, get, dump, required in self._render_steps:
            if field_name in given:
                raw = given[field_name]
            elif required:
                raw = get(obj)
            else:
                continue
            out[field_name] = raw if dump is None else dump(raw)
        return out

    def dump(self) -> Dump:
        return self.render


@dataclass(frozen=True, slots=True)
class Rendered(Kind):
    """A value documented as `shape` that the route has already rendered (e.g. batch items,
    each built from one of several sources)."""

    shape: Shape

    def annotation(self) -> Any:
        return self.shape.annotation()



# --- parameters ------------------------------------------------------------------------------


# pydantic's names of the constraints -> JSON Schema's (what `json_schema_extra` holds)
_JSON_SCHEMA_NAMES = {"pattern": "pattern", "min_length": "minLength",
                      "max_length": "maxLength", "ge": "minimum", "le": "maximum"}


@dataclass(frozen=True)
class Param:
    """A path or query parameter parsed by the route itself, declared once: `path()` and
    `query()` document it (the kind's pattern is shown, not enforced by FastAPI, so that the
    route's own check answers with the clearer message) and `parse` checks it."""

    kind: Kind
    label: str
    doc: str
    example: Any = NO_EXAMPLE
    _parse: Parser = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parse", self.kind.parser())

    def _doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"description": self.doc}
        if self.example is not NO_EXAMPLE:
            doc["examples"] = [self.example]
        shown = {_JSON_SCHEMA_NAMES[k]: v for k, v in self.kind.constraints().items()}
        if shown:
            doc["json_schema_extra"] = shown
        return doc

    def path(self) -> Any:
        return PathParam(**self._doc())

    def query(self) -> Any:
        return Query(None, **self._doc())

    def parse(self, value: Any) -> Any:
        return self._parse(value, self.label)


def request_body(*shapes: Shape, binary: tuple[str, str] | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body the route reads by itself; `binary`,
    a (media type, description) of a binary form it also reads."""
    refs = [{"$ref": f"#/components/schemas/{s.name}"} for s in shapes]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if binary is not None:
        media_type, description = binary
        content[media_type] = {"schema": {"type": "string", "format": "binary",
                                          "description": description}}
    return {"requestBody": {"required": True, "content": content}}


def binary_reply(media_type: str, description: str) -> dict[str, Any]:
    """`openapi_extra` documenting a binary form of a route's 200 reply, beside its JSON."""
    return {"responses": {"200": {"content": {media_type: {"schema": {
        "type": "string", "format": "binary", "description": description}}}}}}


def components(shapes: Iterable[Shape]) -> Mapping[str, Any]:
    """The OpenAPI component schemas of `shapes` and of every model they refer to."""
    out: dict[str, Any] = {}
    for shape in shapes:
        doc = shape.model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(doc.pop("$defs", {}))
        out[shape.name] = doc
    return out
