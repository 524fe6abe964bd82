"""Sample values <-> stored bytes for one tensor, following its htype and compression.

``encode`` validates first and only then serialises, so it raises ``SampleError`` before
any state changes. Pending, not-yet-applied effects of a batch (the dtype fixed by the
first sample, new class names) live in a ``Pending`` object that the caller applies
only once every sample of the batch is valid.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tensorlake.compression import (
    compress,
    decode_image,
    decompress,
    encode_image,
    pack_bool,
    pack_bool_array,
    unpack_bool,
)
from tensorlake.engine.htypes import IMAGE_COMPRESSIONS, Htype, get_htype, is_link, json_dumps
from tensorlake.engine.links import LinkedSample
from tensorlake.engine.manifest import TensorMeta
from tensorlake.engine.sample import Sample
from tensorlake.errors import FormatError, SampleError


@dataclass(slots=True)
class Pending:
    """Effects of validated-but-unapplied samples on a tensor's meta."""

    dtype: str | None
    ndim: int | None
    class_names: list[str] | None
    new_class_names: list[str] = field(default_factory=list)
    links: Any = None  # LinkResolver of the dataset, for link tensors
    linked: list[Any] = field(default_factory=list)  # LinkedObject (or None) per link row
    prefetched: dict[Any, Any] = field(default_factory=dict)  # link -> LinkedObject | error

    @classmethod
    def of(cls, meta: TensorMeta) -> Pending:
        ndim = len(meta.min_shape) if meta.min_shape is not None else None
        # the meta's own list: _labels_to_ids copies it before adding a name
        return cls(meta.dtype, ndim, meta.info.get("class_names"), [], None, [], {})

    def apply(self, meta: TensorMeta) -> None:
        meta.dtype = self.dtype
        if self.new_class_names:
            meta.info.setdefault("class_names", []).extend(self.new_class_names)
            self.new_class_names = []


class _Invalid(Exception):
    """Raised inside validation; turned into SampleError with tensor and row."""


def encode(
    meta: TensorMeta, value: Any, pending: Pending, row: int
) -> tuple[bytes, tuple[int, ...]]:
    """Validate ``value`` for ``meta`` and return its stored bytes and shape."""
    try:
        return _encode(meta, value, pending)
    except _Invalid as err:
        raise SampleError(str(err), tensor=meta.name, index=row) from None
    except SampleError as err:  # e.g. an unreadable tl.read() path
        raise SampleError(str(err), tensor=meta.name, index=row) from err.__cause__
    except FormatError as err:  # e.g. a tl.read() file that is not a valid image
        raise SampleError(f"not a valid sample: {err}", tensor=meta.name, index=row) from err


def _encode(meta: TensorMeta, value: Any, pending: Pending) -> tuple[bytes, tuple[int, ...]]:
    htype = get_htype(meta.htype)
    compression = meta.sample_compression
    if htype.scalar:
        if htype.name == "text":
            if not isinstance(value, str):
                value = _unwrap_scalar(value, str, "a string")
            return compress(value.encode("utf-8"), compression), (1,)
        try:
            return compress(json_dumps(value), compression), (1,)
        except (TypeError, ValueError) as err:
            raise _Invalid(f"expected a JSON-serialisable value: {err}") from None
    if is_link(htype.name):
        return _encode_link(meta, value, pending)

    if isinstance(value, Sample):
        if compression is not None and value.compression == compression:
            shape = _check_shape(htype, value.shape, pending)
            _check_dtype(_UINT8, pending)
            return value.buffer, shape
        if value.compression is None:
            raise _Invalid(f"{value!r} is not a jpeg or png image and cannot be decoded.")
        value = value.array

    arr = _to_array(htype.name, value, meta, pending)
    shape = _check_shape(htype, arr.shape, pending)
    if arr.shape != shape:
        arr = arr.reshape(shape)
    if compression in IMAGE_COMPRESSIONS:
        if arr.dtype != np.uint8:
            raise _Invalid(f"{compression} samples must be uint8, got {arr.dtype}.")
        try:
            return encode_image(arr, compression), shape
        except ValueError as err:
            raise _Invalid(str(err)) from None
    if compression is None:
        raw = pack_bool(arr) if arr.dtype == np.bool_ else np.ascontiguousarray(arr).tobytes()
        return raw, shape
    # the codec reads the array's memory: no intermediate bytes copy
    packed = pack_bool_array(arr) if arr.dtype == np.bool_ else np.ascontiguousarray(arr)
    return compress(packed, compression), shape


def _encode_link(meta: TensorMeta, value: Any, pending: Pending) -> tuple[bytes, tuple[int, ...]]:
    """A link row: the URL and creds key; the object is fetched only when the tensor
    verifies links or records their shape or info."""
    if not isinstance(value, LinkedSample):
        raise _Invalid(
            f"a '{meta.htype}' tensor takes tl.link(url), got {type(value).__name__}. "
            "Use tl.link(path_or_url, creds_key=...)."
        )
    pending.links.check_key(value.creds_key)
    found = None
    if needs_fetch(meta):
        found = pending.prefetched.pop(value, None)
        if isinstance(found, Exception):
            raise found
        if found is None:
            found = pending.links.inspect(value, link_check(meta))
    pending.linked.append(found)
    shape = _check_shape(_IMAGE, found.shape if found else (0, 0, 3), pending)
    _check_dtype(_UINT8, pending)
    return json_dumps(value.to_json()), shape


def needs_fetch(meta: TensorMeta) -> bool:
    """Whether appending to this link tensor fetches each object."""
    extra = meta.extra
    return bool(extra.get("verify") or extra.get("shape_tensor") or extra.get("info_tensor"))


def link_check(meta: TensorMeta) -> str | None:
    """The format linked objects must have (only checked with ``verify``)."""
    return meta.sample_compression if meta.extra.get("verify") else None


def _unwrap_scalar(value: Any, kind: type, what: str) -> Any:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0].item()
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, kind):
        raise _Invalid(f"expected {what}, got {type(value).__name__}.")
    return value


def _to_array(htype: str, value: Any, meta: TensorMeta, pending: Pending) -> np.ndarray:
    if type(value) is np.ndarray:  # the common case, checked first: no conversion
        arr = value
    else:
        if htype == "class_label":
            value = _labels_to_ids(value, pending)
        if isinstance(value, (str, bytes)) or value is None:
            raise _Invalid(f"expected a number or array, got {type(value).__name__}.")
        try:
            arr = np.asarray(value)
        except ValueError as err:
            raise _Invalid(
                f"cannot be made into an array ({err}); ragged rows need one array each."
            ) from None
    if arr.dtype.kind in "OUSV":
        raise _Invalid(f"expected numeric data, got an array of {arr.dtype}.")
    ndim = arr.ndim
    if htype == "bbox":
        if arr.size == 0:
            arr = arr.reshape(0, 4)
        elif ndim == 1 and arr.shape[0] == 4:
            arr = arr.reshape(1, 4)
    elif ndim == 2 and htype in _CHANNELS_ADDED:
        arr = arr[:, :, None]
    elif ndim == 0 and htype == "class_label":
        arr = arr.reshape(1)
    return _cast(arr, meta, pending)


def _labels_to_ids(value: Any, pending: Pending) -> Any:
    labels = [value] if isinstance(value, str) else value
    if isinstance(labels, (list, tuple)) and any(isinstance(v, str) for v in labels):
        if not all(isinstance(v, str) for v in labels):
            raise _Invalid("class labels must be all names or all integers, not a mix.")
        if pending.class_names is None:
            pending.class_names = []
        ids = []
        for name in labels:
            if name not in pending.class_names:
                if not pending.new_class_names:  # the first new name: copy the meta's list
                    pending.class_names = list(pending.class_names)
                pending.class_names.append(name)
                pending.new_class_names.append(name)
            ids.append(pending.class_names.index(name))
        return np.asarray(ids, dtype=np.uint32)
    return value


def _cast(arr: np.ndarray, meta: TensorMeta, pending: Pending) -> np.ndarray:
    if meta.htype == "binary_mask" and arr.dtype != np.bool_:
        if arr.dtype.kind in "iuf" and np.isin(arr, (0, 1)).all():
            return arr.astype(bool)
        raise _Invalid(f"binary_mask samples must be boolean (or 0/1), got {arr.dtype}.")
    target = pending.dtype
    if target is None:
        pending.dtype = arr.dtype.name
        return arr
    tdt = _dtype(target)
    if arr.dtype == tdt:
        return arr
    if arr.dtype.kind == "b" and tdt.kind != "b":
        raise _Invalid(f"expected dtype {tdt}, got bool.")
    if not np.can_cast(arr.dtype, tdt, casting="same_kind") and not (
        arr.dtype.kind in "iub" and tdt.kind in "iuf"
    ):
        raise _Invalid(f"expected dtype {tdt}, got {arr.dtype} which cannot be cast safely.")
    if tdt.kind in "iu" and arr.dtype.kind in "iu" and arr.size:
        info = np.iinfo(tdt)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise _Invalid(f"values [{lo}, {hi}] do not fit dtype {tdt}.")
    return arr.astype(tdt)


_CHANNELS = {"image": (1, 3, 4), "image.rgb": (3,), "image.gray": (1,)}
_CHANNELS_ADDED = ("image", "image.rgb", "image.gray", "binary_mask")  # (H, W) -> (H, W, 1)
_IMAGE = get_htype("image")
_UINT8 = np.dtype(np.uint8)


@functools.lru_cache(maxsize=64)
def _dtype(name: str) -> np.dtype:
    """``np.dtype(name)``, which is slow enough to matter once per sample."""
    return np.dtype(name)


def _check_shape(htype: Htype, shape: tuple[int, ...], pending: Pending) -> tuple[int, ...]:
    shape = tuple(map(int, shape))
    channels = _CHANNELS.get(htype.name)
    if channels is not None:
        if len(shape) != 3 or shape[2] not in channels:
            raise _Invalid(
                f"expected an image of shape (H, W, C) with C in {channels}, got {shape}."
            )
    elif htype.ndims is not None and len(shape) not in htype.ndims:
        raise _Invalid(
            f"expected a {htype.ndims[0]}-D sample for htype '{htype.name}', got shape {shape}."
        )
    if htype.name == "bbox" and shape[1] != 4:
        raise _Invalid(f"expected boxes of shape (N, 4), got {shape}.")
    if pending.ndim is None:
        pending.ndim = len(shape)
    elif pending.ndim != len(shape):
        raise _Invalid(
            f"expected a {pending.ndim}-D sample like the earlier rows, got shape {shape}."
        )
    return shape


def _check_dtype(dtype: np.dtype, pending: Pending) -> None:
    if pending.dtype is None:
        pending.dtype = dtype.name
    elif _dtype(pending.dtype) != dtype:
        raise _Invalid(f"expected dtype {pending.dtype}, got {dtype}.")


def decode(
    meta: TensorMeta,
    data: memoryview | bytes,
    shape: tuple[int, ...],
    out: np.ndarray | None = None,
) -> Any:
    """Stored bytes -> the value a reader gets (array, or str / object for text and json)."""
    compression = meta.sample_compression
    if is_link(meta.htype):
        d = json.loads(bytes(data))
        return LinkedSample(d["url"], d.get("creds_key"))
    if compression in IMAGE_COMPRESSIONS:
        arr = decode_image(data, out=out)
        if arr.shape != tuple(shape):
            raise FormatError(
                f"tensor '{meta.name}': image decoded to {arr.shape}, expected {shape}."
            )
        return arr
    raw = decompress(data, compression) if compression else data
    if meta.htype == "text":
        return bytes(raw).decode("utf-8")
    if meta.htype == "json":
        return json.loads(bytes(raw))
    dtype = np.dtype(meta.dtype or "uint8")
    if dtype == np.bool_:
        arr = unpack_bool(raw, shape)
    else:
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(raw) != expected:
            raise FormatError(
                f"tensor '{meta.name}': a row holds {len(raw)} bytes, expected {expected} for "
                f"shape {shape} and dtype {dtype}."
            )
        arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if out is not None:
        out[...] = arr
        return out
    return arr if arr.flags.writeable else arr.copy()
