"""The ``Htype`` object: what a tensor's samples are, how they are checked, how stored.

An htype is a named bundle of defaults plus validation. ``encode`` turns whatever a user
appends (numbers, lists, arrays, strings, files read with ``tl.read``) into the stored
bytes and shape of one row, validating *before* anything is written, so a bad sample
leaves the dataset unchanged; ``decode`` is its inverse. This class is the generic
array htype; each other htype is a subclass that overrides the hooks it changes, and
``registry.py`` maps names to them. Effects of a batch that are applied only once every
sample of it is valid (the dtype fixed by the first sample, new class names) live in a
``Pending``.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tensorlake.compression import (
    compress,
    decompress,
    normalize_compression,
    pack_bool,
    pack_bool_array,
    unpack_bool,
)
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.image_rows import decode_image_row, encode_image_row, row_codec
from tensorlake.engine.htypes.sample import Sample
from tensorlake.engine.links.resolver import LinkedObject, LinkResolver
from tensorlake.engine.links.sample import LinkedSample
from tensorlake.errors import FormatError, HtypeArgumentError, HtypeError

__all__ = [
    "IMAGE_COMPRESSIONS",
    "MAX_DIM",
    "UNSET",
    "Encoded",
    "Htype",
    "Invalid",
    "Pending",
    "cached_dtype",
    "decompress_row",
    "dtype_name",
    "json_dumps",
    "json_loads",
]

IMAGE_COMPRESSIONS = ("jpeg", "png")
UNSET: Any = object()  # marks a create_tensor argument the user did not give
UINT8 = np.dtype(np.uint8)

Encoded = tuple[bytes | memoryview, tuple[int, ...]]
"""A row as stored: its bytes and its shape."""

MAX_DIM = 2**32 - 1
"""The largest dimension a sample may have: chunk headers store dimensions as uint32."""


class Invalid(Exception):
    """Raised inside validation; turned into ``SampleError`` with tensor and row."""


@dataclass(slots=True)
class Pending:
    """Effects of validated-but-unapplied samples on a tensor's meta, and what one batch
    of appends to that tensor shares (its htype, the dataset's link resolver)."""

    htype: Htype
    dtype: str | None
    ndim: int | None
    class_names: list[str] | None
    new_class_names: list[str] = field(default_factory=list)
    links: LinkResolver | None = None  # for link tensors
    # per link row, when fetched (None for an empty row)
    linked: list[LinkedObject | None] = field(default_factory=list)
    prefetched: dict[LinkedSample, LinkedObject | Exception] = field(default_factory=dict)
    new_htype: str | None = None  # a generic tensor's first rows made it text or json
    inner: Pending | None = None  # a sequence tensor's items (htypes/sequence.py)

    @classmethod
    def of(cls, meta: TensorMeta, htype: Htype, links: LinkResolver | None = None) -> Pending:
        ndim = len(meta.min_shape) if meta.min_shape is not None else None
        # the meta's own list: ClassLabelHtype copies it before adding a name
        return cls(htype, meta.dtype, ndim, meta.info.get("class_names"), [], links)

    def apply(self, meta: TensorMeta) -> None:
        if self.new_htype is not None:
            meta.htype = self.new_htype
        meta.dtype = self.dtype
        if self.new_class_names:
            meta.info.setdefault("class_names", []).extend(self.new_class_names)
            self.new_class_names = []


def dtype_name(dtype: Any) -> str:
    """The numpy name of ``create_tensor(dtype=...)`` (``HtypeArgumentError`` if numpy
    knows no such dtype)."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise HtypeArgumentError(
            f"dtype={dtype!r} is not a numpy dtype; use e.g. 'uint8', 'float32' or np.int64."
        ) from None


@functools.lru_cache(maxsize=64)
def cached_dtype(name: str) -> np.dtype:
    """``np.dtype(name)``, which is slow enough to matter once per sample."""
    return np.dtype(name)


@dataclass(frozen=True, slots=True)
class Htype:
    """Defaults and rules of one htype; this class itself is ``generic``."""

    name: str
    dtype: str | None = None  # fixed dtype, or None when the first sample (or dtype=) decides
    sample_compression: Any = None  # default; UNSET means the user must choose
    compressions: tuple[str | None, ...] = (None, "lz4")
    ndims: tuple[int, ...] | None = None  # allowed sample ranks after normalisation
    info_keys: tuple[str, ...] = ()  # create_tensor keyword arguments kept in tensor.info

    scalar: ClassVar[bool] = False  # one Python value per row (text, json), shape (1,)
    is_link: ClassVar[bool] = False  # rows name objects elsewhere (link[...])
    # an uncompressed row is the C-order bytes of an array of its stored shape (what the
    # vectorised readers slice); False for rows with their own layout (sequences, lists)
    raw_rows: ClassVar[bool] = True
    as_list: ClassVar[bool] = False  # rows read back as lists (polygon), never stacked
    is_sequence: ClassVar[bool] = False  # each row is a list of items (sequence[...])
    sample_info: ClassVar[bool] = False  # create_sample_info_tensor applies (images ...)

    # -- creating a tensor ----------------------------------------------------------------
    def info_from_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Validate htype-specific create_tensor arguments; return the tensor's first info."""
        unknown = set(kwargs) - set(self.info_keys)
        if unknown:
            raise HtypeArgumentError(
                f"create_tensor() got unexpected arguments {sorted(unknown)} for htype "
                f"'{self.name}'"
                + (f"; it accepts {list(self.info_keys)}." if self.info_keys else ".")
            )
        return self.initial_info(kwargs)

    def initial_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {}

    def resolve_compression(self, sample_compression: Any) -> str | None:
        """The sample compression a new tensor gets, validated against this htype."""
        if sample_compression is UNSET:
            if self.sample_compression is UNSET:
                raise HtypeError(
                    f"htype '{self.name}' needs an explicit sample_compression: one of "
                    f"{', '.join(repr(c) for c in self.compressions)} (e.g. 'jpeg' to store "
                    "JPEG files as they are)."
                )
            return self.sample_compression
        try:
            name = normalize_compression(sample_compression)
        except ValueError:
            name = sample_compression  # unknown: refused below, naming this htype's choices
        if name not in self.compressions:
            raise HtypeError(
                f"sample_compression {sample_compression!r} is not valid for htype "
                f"'{self.name}'; choose one of {', '.join(repr(c) for c in self.compressions)}."
            )
        return name

    def resolve_dtype(self, dtype: Any) -> str | None:
        """The dtype a new tensor records, given ``create_tensor(dtype=...)``."""
        if self.dtype is not None:
            if dtype is not None and not self.scalar and dtype_name(dtype) != self.dtype:
                raise HtypeError(
                    f"htype '{self.name}' stores {self.dtype}; dtype={dtype!r} conflicts."
                )
            return self.dtype
        return None if dtype is None else dtype_name(dtype)

    # -- writing ------------------------------------------------------------------------
    def prepare_batch(self, meta: TensorMeta, values: Any, pending: Pending) -> None:
        """Called once before a batch of values is encoded (link tensors fetch here)."""

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        """Validate ``value`` and return its stored bytes and shape (raises ``Invalid``)."""
        if value is None or (type(value) in (list, tuple) and not value):
            return self.encode_empty(meta, pending)
        compression = row_codec(meta)
        if isinstance(value, Sample):
            if compression is not None and value.compression == compression:
                shape = self.check_shape(value.shape, pending)
                check_dtype(UINT8, pending)
                return value.buffer, shape
            if value.compression is None:
                raise Invalid(f"{value!r} is not a jpeg or png image and cannot be decoded.")
            value = value.array
        arr = self.to_array(value, meta, pending)
        shape = self.check_shape(arr.shape, pending)
        if arr.shape != shape:
            arr = arr.reshape(shape)
        if compression in IMAGE_COMPRESSIONS:
            try:
                return encode_image_row(arr, compression), shape
            except ValueError as err:
                raise Invalid(str(err)) from None
        if compression is None:
            raw = pack_bool(arr) if arr.dtype == np.bool_ else np.ascontiguousarray(arr).tobytes()
            return raw, shape
        # the codec reads the array's memory: no intermediate bytes copy
        packed = pack_bool_array(arr) if arr.dtype == np.bool_ else np.ascontiguousarray(arr)
        return compress(packed, compression), shape

    def to_array(self, value: Any, meta: TensorMeta, pending: Pending) -> np.ndarray:
        if type(value) is np.ndarray:  # the common case, checked first: no conversion
            arr = value
        else:
            value = self.convert(value, pending)
            if isinstance(value, (str, bytes)) or value is None:
                raise Invalid(f"expected a number or array, got {type(value).__name__}.")
            try:
                arr = np.asarray(value)
            except ValueError as err:
                raise Invalid(
                    f"cannot be made into an array ({err}); ragged rows need one array each."
                ) from None
        if arr.dtype.kind in "OUSV":
            raise Invalid(f"expected numeric data, got an array of {arr.dtype}.")
        return self.cast(self.normalize(arr), pending)

    def convert(self, value: Any, pending: Pending) -> Any:
        """A value that is not an array, before ``np.asarray`` (class names -> ids)."""
        return value

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        """The canonical shape of a sample (e.g. a 2-D image gets its channel axis)."""
        return arr

    def cast(self, arr: np.ndarray, pending: Pending) -> np.ndarray:
        """``arr`` in the tensor's dtype (the first sample fixes it), casting only safely."""
        target = pending.dtype
        if target is None:
            pending.dtype = arr.dtype.name
            return arr
        tdt = cached_dtype(target)
        if arr.dtype == tdt:
            return arr
        if arr.dtype.kind == "b" and tdt.kind != "b":
            raise Invalid(f"expected dtype {tdt}, got bool.")
        if not np.can_cast(arr.dtype, tdt, casting="same_kind") and not (
            arr.dtype.kind in "iub" and tdt.kind in "iuf"
        ):
            raise Invalid(f"expected dtype {tdt}, got {arr.dtype} which cannot be cast safely.")
        if tdt.kind in "iu" and arr.dtype.kind in "iu" and arr.size:
            info = np.iinfo(tdt)
            lo, hi = arr.min(), arr.max()
            if lo < info.min or hi > info.max:
                raise Invalid(f"values [{lo}, {hi}] do not fit dtype {tdt}.")
        return arr.astype(tdt)

    def check_shape(self, shape: tuple[int, ...], pending: Pending) -> tuple[int, ...]:
        """``shape`` as ints, if this htype allows it and it has the rank of earlier rows.

        A scalar is stored as shape (1,), as Deep Lake does (``t.numpy()`` of N scalar
        rows is (N, 1)), except in a tensor whose earlier rows are 0-d (written before
        this rule). An array of no elements takes the rank of the earlier rows.
        """
        shape = tuple(map(int, shape))
        if any(d > MAX_DIM for d in shape):  # chunk headers store each dimension in 32 bits
            raise Invalid(
                f"shape {shape} has a dimension over {MAX_DIM:,}, the most a chunk stores; "
                "split the sample into several rows, or reshape it."
            )
        if not shape and pending.ndim != 0:
            shape = (1,)
        elif pending.ndim is not None and pending.ndim != len(shape) and 0 in shape:
            shape = (0,) * pending.ndim
        self.check_rank(shape)
        if pending.ndim is None:
            pending.ndim = len(shape)
        elif pending.ndim != len(shape):
            raise Invalid(
                f"expected a {pending.ndim}-D sample like the earlier rows, got shape {shape}."
            )
        return shape

    def check_rank(self, shape: tuple[int, ...]) -> None:
        if self.ndims is not None and len(shape) not in self.ndims:
            raise Invalid(
                f"expected a {self.ndims[0]}-D sample for htype '{self.name}', got shape {shape}."
            )

    # -- empty rows (None) ------------------------------------------------------------
    def empty_shape(self, pending: Pending) -> tuple[int, ...] | None:
        """The shape of an empty row: no elements, the tensor's rank (None: no row has
        fixed the rank yet)."""
        ndim = pending.ndim
        if ndim is None and self.ndims is not None and len(self.ndims) == 1:
            ndim = self.ndims[0]
        return None if ndim is None else (0,) * ndim

    def encode_empty(self, meta: TensorMeta, pending: Pending) -> Encoded:
        """``None`` (or ``[]``) appended: a row of no bytes, as Deep Lake stores it. It
        fixes neither dtype nor rank. Before any row fixed the rank its shape is ``()``
        (no bytes and no dimensions: what no other row is), which fixes nothing and
        which chunks and readers widen to the tensor's rank, (0, ..., 0)."""
        shape = self.empty_shape(pending)
        return b"", () if shape is None else shape

    def decode_empty(self, meta: TensorMeta, shape: tuple[int, ...], out: np.ndarray | None) -> Any:
        """The value of a row stored as no bytes (None when such a row is not empty:
        a codec that stores something for every sample reads it)."""
        if 0 not in shape:
            if shape:
                return None  # zero bytes for elements: let the codec report it
            shape = (0,)  # a 0-d tensor's empty row
        rank = len(meta.max_shape) if meta.max_shape else len(shape)
        if len(shape) != rank:
            shape = (0,) * rank
        empty = np.zeros(shape, dtype=np.dtype(_numeric_dtype(meta.dtype)))
        if out is not None:
            out[...] = empty if out.shape == empty.shape else 0
            return out
        return empty

    # -- companions ---------------------------------------------------------------------
    def records_shapes(self) -> bool:
        """Whether ``create_shape_tensor`` applies (Deep Lake: not for text and json)."""
        return not self.scalar

    def records_sample_info(self) -> bool:
        """Whether ``create_sample_info_tensor`` applies (images, masks, links)."""
        return self.sample_info

    def sample_shape(self, data: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
        """A row of the shape companion for a row stored as ``data`` of ``shape``."""
        return np.asarray(shape, dtype=np.uint32)

    def sample_infos(self, values: Any, pending: Pending) -> list[dict[str, Any]]:
        """Rows of the sample-info companion for appended ``values``: what a file read
        with ``tl.read`` tells (Deep Lake's ``sample_info``), ``{}`` for arrays."""
        return [v.info if isinstance(v, Sample) else {} for v in values]

    # -- reading ------------------------------------------------------------------------
    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        """Stored bytes -> the value a reader gets (``out``: decode into that array)."""
        if not len(data):
            empty = self.decode_empty(meta, shape, out)
            if empty is not None:
                return empty
        compression = row_codec(meta)
        if compression in IMAGE_COMPRESSIONS:
            return decode_image_row(meta, data, tuple(shape), out)
        raw = _decompress(meta, data, compression)
        dtype = np.dtype(meta.dtype or "uint8")
        if dtype == np.bool_:
            arr = unpack_bool(raw, shape)
        else:
            expected = math.prod(shape) * dtype.itemsize
            if len(raw) != expected:
                raise FormatError(
                    f"tensor '{meta.name}': a row holds {len(raw)} bytes, expected {expected} "
                    f"for shape {shape} and dtype {dtype}."
                )
            arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if out is not None:
            out[...] = arr
            return out
        return arr if arr.flags.writeable else arr.copy()

    def stack(self, values: list[Any]) -> np.ndarray:
        """A 1-D array of decoded scalar values (text and json htypes), never nested."""
        raise NotImplementedError(f"htype '{self.name}' has no scalar values")

    def data(self, value: Any, meta: TensorMeta, one_row: bool) -> dict[str, Any]:
        """``tensor.data()``: decoded rows as Python-friendly values."""
        return {"value": value}


def decompress_row(meta: TensorMeta, data: memoryview | bytes) -> Any:
    """A row's bytes before its tensor's sample compression (``lz4``) was applied."""
    return _decompress(meta, data, meta.sample_compression)


def _decompress(meta: TensorMeta, data: memoryview | bytes, compression: str | None) -> Any:
    if not compression:
        return data
    try:
        return decompress(data, compression)
    except ValueError as err:  # a codec this version does not know (a newer writer's)
        raise FormatError(
            f"tensor '{meta.name}' stores samples as {compression!r}, which this version of "
            f"tensorlake cannot read ({err}). Upgrade tensorlake."
        ) from err


def _numeric_dtype(name: str | None) -> str:
    """The numpy dtype of an empty row's array (text and json tensors hold objects)."""
    if name is None:
        return "uint8"
    return "object" if name in ("json", "str", "object") else name


def check_dtype(dtype: np.dtype, pending: Pending) -> None:
    if pending.dtype is None:
        pending.dtype = dtype.name
    elif cached_dtype(pending.dtype) != dtype:
        raise Invalid(f"expected dtype {pending.dtype}, got {dtype}.")


def json_dumps(value: Any) -> bytes:
    """A row's JSON bytes; ``Invalid`` for a value nested too deeply to encode (Python's
    recursion limit, about 1,000 levels), instead of a ``RecursionError``."""
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, default=_json_default
        ).encode()
    except RecursionError:
        raise Invalid(
            "the value is nested too deeply to store as JSON (Python's recursion limit, "
            f"{sys.getrecursionlimit()} levels); flatten it, or store it as text."
        ) from None


def json_loads(data: bytes) -> Any:
    """A stored row's JSON value; ``FormatError`` for bytes nested too deeply to decode
    in this process (written where the recursion limit was higher) or not JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise FormatError(
            "a stored JSON row is nested deeper than this process's recursion limit "
            f"({sys.getrecursionlimit()}); raise it with sys.setrecursionlimit to read it."
        ) from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
