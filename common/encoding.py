"""Canonical msgpack: the one place bytes are produced from and parsed into values.

Every value is encoded as msgpack with `use_bin_type=True` (bytes as bin, str as str) and
domain objects as fixed-order arrays. msgpack accepts several byte forms of one value
(non-minimal integer widths, float32 vs float64, ...), so decoding re-encodes and compares:
only the canonical form is accepted, and a hash of the bytes is a hash of the value.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

from common.errors import Malformed, TooLarge

MAX_FRAME = 16 * 1024 * 1024
MEDIA_TYPE = "application/msgpack"  # msgpack over HTTP (the REST batch route's binary form)

# `packb` makes a Packer per call, which costs three times the packing of a small value
# (every transaction, key and index entry is one); a Packer is reused, one per thread since
# it keeps a buffer between the start and the end of a call.
_packers = threading.local()


def pack(value: Any) -> bytes:
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    try:
        return packer.pack(value)
    except (OverflowError, TypeError, ValueError) as exc:
        raise Malformed(f"cannot encode: {exc}") from None


# what msgpack raises on bytes it cannot read (ExtraData is a ValueError; OutOfData, of a
# truncated value, comes from an Unpacker)
_UNREADABLE = (ValueError, TypeError, msgpack.OutOfData, msgpack.FormatError,
               msgpack.StackError, UnicodeDecodeError)


def _check_size(data: bytes, max_size: int) -> None:
    if len(data) > max_size:
        raise TooLarge(f"{len(data)} bytes exceeds {max_size}")


def unpack(data: bytes, max_size: int = MAX_FRAME) -> Any:
    """Decode untrusted bytes (tuples for arrays); any failure is `Malformed`/`TooLarge`."""
    _check_size(data, max_size)
    try:
        return msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=True)
    except _UNREADABLE as exc:
        raise Malformed(f"undecodable msgpack: {exc.__class__.__name__}") from None


def unpack_head(data: bytes, max_size: int = MAX_FRAME) -> tuple[int, Any]:
    """The length of the array `data` encodes and its first element, read without decoding
    the rest (a block's header, not its transactions); `Malformed` when `data` does not
    begin with an array. Nothing after the first element is checked."""
    _check_size(data, max_size)
    unpacker = msgpack.Unpacker(raw=False, use_list=False, strict_map_key=True,
                                max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    try:
        count = unpacker.read_array_header()
        return count, unpacker.unpack() if count else None
    except _UNREADABLE as exc:
        raise Malformed(f"undecodable msgpack: {exc.__class__.__name__}") from None


def unpack_canonical(data: bytes, max_size: int = MAX_FRAME) -> Any:
    value = unpack(data, max_size)
    if pack(value) != data:
        raise Malformed("non-canonical encoding")
    return value
