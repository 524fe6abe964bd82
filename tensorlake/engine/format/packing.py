"""msgpack, the encoding of every structured object tensorlake stores (manifests, table
segments, commits, staging states); a record that does not decode is a ``FormatError``."""

from __future__ import annotations

from typing import Any

import msgpack

from tensorlake.errors import FormatError

__all__ = ["pack", "unpack"]


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as err:
        raise FormatError(f"{what} is corrupt and cannot be decoded: {err}") from err
