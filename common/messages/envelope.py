"""The bus envelope: how a message becomes bytes and back, the catalogue it is decoded
against, and the bus protocol version.

A message travels as the msgpack array `[version, type, [field, ...]]`: `version` is
`BUS_VERSION`, `type` names a catalogue entry, and the fields come in declaration order.
Decoding checks every field against its declaration (`common.fields`: exact types, ranges,
lengths, enum values), so a handler only ever sees a well-formed message and re-checks
nothing.

`BUS_VERSION` names the shape of the whole catalogue. Services of one node run one
installation, but a service restarted after an upgrade can meet others still running the
old code: a message of another version is refused with `VersionMismatch` (never
`malformed`), naming both versions and the remedy. For that refusal to reach a process that
reads nothing else we say, the error reply is the one message every version reads: `err`
travels without a version, as `["err", [code, message]]` (the bus's form before it had
versions, so even processes that old read it), and its shape never changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any, ClassVar, TypeVar

from common import fields
from common.encoding import pack, unpack
from common.errors import CcoinError, Malformed, VersionMismatch, error_from_code

# Bump when any message's shape changes (a field added, removed, renamed, retyped or
# re-bounded; a message or an enum value added or removed): tests/unit/common/test_messages.py
# compares `fingerprint()` with the one recorded for this version in
# tests/vectors/bus_catalogue.json, and fails until it is bumped and the new shape recorded.
BUS_VERSION = 10
MAX_SIZE = 64 * 1024 * 1024  # the bus sockets' MAXMSGSIZE

CATALOGUE: dict[str, type[Message]] = {}
M = TypeVar("M", bound="Message")


class Message:
    """Base of all bus messages."""

    TYPE: ClassVar[str]
    __slots__ = ()


@typing.dataclass_transform(frozen_default=True)
def message(type_name: str) -> typing.Callable[[type[M]], type[M]]:
    """Class decorator: make a frozen slotted dataclass and register it under `type_name`.
    Its fields are checked when it is decoded, not when it is built: the sender is trusted
    to build what it means, the receiver checks what arrived."""

    def wrap(cls: type[M]) -> type[M]:
        if type_name in CATALOGUE:
            raise ValueError(f"message type {type_name} registered twice")
        dc = dataclasses.dataclass(frozen=True, slots=True)(cls)
        dc.TYPE = type_name
        CATALOGUE[type_name] = dc
        return dc

    return wrap


def catalogue_shape() -> dict[str, str]:
    """Each message type's declared fields, `"name: shape, ..."` (`Spec.describe`), and
    its rule across them (`; rule: ...`): what docs/protocol.md §11 lists and what
    `BUS_VERSION` versions."""
    return {name: ", ".join(f"{field}: {shape}" for field, shape in fields.describe(cls))
            + (f"; rule: {rule.what}" if (rule := fields.rule_of(cls)) else "")
            for name, cls in sorted(CATALOGUE.items())}


def fingerprint() -> str:
    """SHA-256 of the catalogue's shape: it changes exactly when `BUS_VERSION` must."""
    return hashlib.sha256(json.dumps(catalogue_shape(), sort_keys=True).encode()).hexdigest()


def encode(msg: Message) -> bytes:
    if type(msg) is ErrorReply:
        return pack([ErrorReply.TYPE, [msg.code, msg.message]])  # the unversioned form
    return pack([BUS_VERSION, msg.TYPE, fields.to_wire(msg)])


def _mismatch(version: int, type_name: str) -> VersionMismatch:
    theirs = ("0 (from before the bus had versions)" if version == 0 else str(version))
    return VersionMismatch(
        f"a {type_name!r} message of bus protocol version {theirs} reached a process that "
        f"speaks version {BUS_VERSION}: the services of a node must all run the same ccoin "
        f"installation; restart them together (ccoin node restart)")


def decode(data: bytes, max_size: int = MAX_SIZE) -> Message:
    """A well-formed message of our version, or an `err` reply of any version; otherwise
    `VersionMismatch` (another version) or `Malformed`."""
    value: Any = unpack(data, max_size)
    if type(value) is not tuple:
        raise Malformed("a bus message must be an array [version, type, fields]")
    if len(value) == 3 and type(value[0]) is int and type(value[1]) is str:
        version, type_name, body = value
        if version != BUS_VERSION:
            raise _mismatch(version, type_name)
    elif len(value) == 2 and type(value[0]) is str:
        type_name, body = value  # unversioned: an error reply, or a version-0 process
        if type_name != ErrorReply.TYPE and type_name in CATALOGUE:
            raise _mismatch(0, type_name)
    else:
        raise Malformed("a bus message must be an array [version, type, fields]")
    cls = CATALOGUE.get(type_name)
    if cls is None:
        raise Malformed(f"unknown message type {type_name!r}")
    msg: Message = fields.build(cls, body, type_name + ".")
    return msg


# --- the messages every service answers --------------------------------------------------------


@message("err")
class ErrorReply(Message):
    """A typed failure: `code` is one of DESIGN §6's error codes. Its shape never changes
    (see the module docstring)."""

    code: str
    message: str

    def to_exception(self) -> CcoinError:
        return error_from_code(self.code, self.message)

    @staticmethod
    def of(exc: CcoinError) -> ErrorReply:
        return ErrorReply(exc.code, exc.message)


@message("ok")
class Ok(Message):
    pass


@message("ping")
class ServicePing(Message):
    pass


@message("pong")
class ServicePong(Message):
    """`version` is the software's (`common.__version__`), not the bus protocol's.
    `problem`: why the service cannot do its job though it answers ("" when it can; state:
    its storage problem), and `fatal` whether it needs the operator (damage) rather than
    clearing by itself (a full disk)."""

    service: str
    version: str
    problem: str = ""
    fatal: bool = False
