"""msgpack, the encoding of every structured object tensorlake stores (manifests, table
segments, commits, staging states); a record that does not decode is a ``FormatError``."""

from __future__ import annotations

from typing import Any

import msgpack

from tensorlake.errors import FormatError

__all__ = ["pack", "unpack"]


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes, what: str, key: str | None = None) -> Any:
    """The object ``data`` encodes; ``FormatError`` (naming ``what``, and ``key`` when given)
    if it does not decode. msgpack bounds every declared length by the input's, so a
    damaged length cannot make it allocate more than the object justifies."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as err:
        where = f" ({key})" if key is not None and key not in what else ""
        raise FormatError(
            f"{what}{where} is corrupt and cannot be decoded: {err}", key=key
        ) from err
