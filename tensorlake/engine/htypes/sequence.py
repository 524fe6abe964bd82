"""``sequence[X]``: each row is a list of items of htype ``X`` (frames of a video as
``sequence[image]``, per-frame labels as ``sequence[class_label]``), Deep Lake's
sequence htypes. Each item is validated and encoded by ``X`` (its compression, dtype,
class names); ``sequence`` alone is ``sequence[generic]``.

A row ``[item_0, ..., item_{n-1}]`` is stored as one row (so rows stay rows: chunks,
tiles, updates and removals work as for any tensor)::

    u32 n, u32 r             item count and item rank
    u32[n * r]               each item's shape
    u64[n + 1]               offsets of the items' bytes after this header
    bytes                    the items as X stores them (JPEG files, lz4 arrays ...)

with shape ``(n, *d)``, ``d`` the items' common shape (per dimension the largest when
they differ). Reading a row gives an ``(n, *d)`` array when its items have one shape,
else a list of arrays; ``numpy(aslist=True)`` of many rows a list (per row) of lists of
items, as in Deep Lake.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import Encoded, Htype, Invalid, Pending
from tensorlake.errors import FormatError, HtypeError

__all__ = ["SequenceHtype", "sequence_of"]

_HEAD = struct.Struct("<II")
_U32 = np.dtype("<u4")
_U64 = np.dtype("<u8")


@dataclass(frozen=True, slots=True)
class SequenceHtype(Htype):
    inner: Htype = field(default_factory=lambda: Htype("generic"))

    raw_rows: ClassVar[bool] = False
    is_sequence: ClassVar[bool] = True

    # -- creating a tensor: the item htype's rules --------------------------------------
    def initial_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.inner.info_from_args(kwargs)

    def resolve_compression(self, sample_compression: Any) -> str | None:
        return self.inner.resolve_compression(sample_compression)

    def resolve_dtype(self, dtype: Any) -> str | None:
        return self.inner.resolve_dtype(dtype)

    def records_shapes(self) -> bool:
        return self.inner.records_shapes()

    def records_sample_info(self) -> bool:
        return self.inner.records_sample_info()

    # -- writing ------------------------------------------------------------------------
    def _items_pending(self, pending: Pending) -> Pending:
        """The items' own pending state: their rank is one less than the rows'."""
        if pending.inner is None:
            pending.inner = Pending(
                self.inner,
                pending.dtype,
                None if pending.ndim is None else pending.ndim - 1,
                pending.class_names,
                pending.new_class_names,  # the same list: names met in items are applied
                pending.links,
            )
        return pending.inner

    def prepare_batch(self, meta: TensorMeta, values: Any, pending: Pending) -> None:
        self._items_pending(pending)

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        items = _items(value)
        inner = self._items_pending(pending)
        encoded = [self.inner.encode(meta, item, inner) for item in items]
        pending.dtype = inner.dtype
        shapes = [s for _, s in encoded]
        rank = inner.ndim
        if rank is None and self.inner.scalar:
            rank = 1
        elif rank is None and self.inner.ndims is not None and len(self.inner.ndims) == 1:
            rank = self.inner.ndims[0]
        elif rank is None and pending.ndim is not None:
            rank = pending.ndim - 1
        if rank is None:  # no item so far fixed the items' rank
            if not items:
                return b"", ()  # an empty row, as Htype.encode_empty writes it
            rank = 1
        shapes = [s if len(s) == rank else (0,) * rank for s in shapes]  # empty items
        dims = tuple(max(d) for d in zip(*shapes)) if shapes else (0,) * rank
        row_shape = (len(items), *dims)
        if pending.ndim is None:
            pending.ndim = len(row_shape)
        elif pending.ndim != len(row_shape):
            raise Invalid(
                f"expected items of rank {pending.ndim - 1} like the earlier rows' items, "
                f"got items of shapes {shapes[:3]}."
            )
        return _pack([d for d, _ in encoded], shapes, rank), row_shape

    # -- reading ------------------------------------------------------------------------
    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        items, shapes = _unpack(meta, data)
        inner = self.inner
        if out is not None and not inner.scalar:
            for i, (item, item_shape) in enumerate(zip(items, shapes)):
                inner.decode(meta, item, item_shape, out=out[i])
            return out
        values = [inner.decode(meta, item, s) for item, s in zip(items, shapes)]
        if inner.scalar:
            arr = inner.stack(values).reshape(len(values), 1)
        elif not values:
            arr = np.zeros(tuple(shape), dtype=np.dtype(meta.dtype or "uint8"))
        elif len(set(shapes)) == 1:
            arr = np.stack(values)
        else:
            return values  # items of different shapes: a list, as numpy(aslist=True) gives
        if out is not None:
            out[...] = arr
            return out
        return arr

    def sample_shape(self, data: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
        """The shape companion of a sequence row: its items' shapes, one row each."""
        view = memoryview(data)
        if not len(view):  # an empty row
            return np.zeros((0, 0), dtype=np.uint32)
        n, rank = _HEAD.unpack_from(view)
        shapes = np.frombuffer(view[_HEAD.size : _HEAD.size + 4 * n * rank], dtype=_U32)
        return shapes.astype(np.uint32).reshape(n, rank)

    def sample_infos(self, values: Any, pending: Pending) -> list[dict[str, Any]]:
        """A sequence row's sample info: its items' (``{"items": [...]}``)."""
        inner = self._items_pending(pending)
        return [{"items": self.inner.sample_infos(_items(v), inner)} for v in values]

    def data(self, value: Any, meta: TensorMeta, one_row: bool) -> dict[str, Any]:
        """``{"value": ...}``, with ``"text"`` per item for class labels."""
        if one_row:
            return self.inner.data(list(value), meta, one_row=False)
        out: dict[str, Any] = {"value": value}
        texts = [self.inner.data(list(v), meta, one_row=False).get("text") for v in value]
        if any(t is not None for t in texts):
            out["text"] = texts
        return out


def sequence_of(inner: Htype) -> SequenceHtype:
    """The htype ``sequence[<inner>]``."""
    if inner.is_link or inner.is_sequence:
        raise HtypeError(
            f"sequence[{inner.name}] is not supported: a sequence holds items of an array, "
            "text, json or label htype, not links or other sequences."
        )
    return SequenceHtype(
        f"sequence[{inner.name}]",
        dtype=inner.dtype,
        sample_compression=inner.sample_compression,
        compressions=inner.compressions,
        ndims=None,
        info_keys=inner.info_keys,
        inner=inner,
    )


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise Invalid("a sequence row is a list of items, got a 0-d array.")
        return list(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    raise Invalid(
        f"a sequence row is a list of items (e.g. the frames of a clip), got "
        f"{type(value).__name__}."
    )


def _pack(
    items: Sequence[bytes | memoryview], shapes: Sequence[tuple[int, ...]], rank: int
) -> bytes:
    sizes = np.fromiter((len(d) for d in items), dtype=np.int64, count=len(items))
    offsets = np.zeros(len(items) + 1, dtype=_U64)
    np.cumsum(sizes, out=offsets[1:])
    shape_arr = np.array(shapes, dtype=_U32).reshape(len(items), rank)
    return b"".join([_HEAD.pack(len(items), rank), shape_arr.tobytes(), offsets.tobytes(), *items])


def _unpack(
    meta: TensorMeta, data: bytes | memoryview
) -> tuple[list[memoryview], list[tuple[int, ...]]]:
    view = memoryview(data)
    if not len(view):  # an empty row written as no bytes
        return [], []
    try:
        n, rank = _HEAD.unpack_from(view)
        at = _HEAD.size
        shapes = np.frombuffer(view[at : at + 4 * n * rank], dtype=_U32).reshape(n, rank)
        at += 4 * n * rank
        offsets = np.frombuffer(view[at : at + 8 * (n + 1)], dtype=_U64).astype(np.int64)
        at += 8 * (n + 1)
    except (struct.error, ValueError) as err:
        raise FormatError(f"tensor '{meta.name}': a sequence row is damaged ({err}).") from err
    if len(offsets) != n + 1 or at + int(offsets[-1]) != len(view):
        raise FormatError(f"tensor '{meta.name}': a sequence row does not match its header.")
    items = [view[at + int(offsets[i]) : at + int(offsets[i + 1])] for i in range(n)]
    return items, [tuple(int(x) for x in s) for s in shapes.tolist()]
