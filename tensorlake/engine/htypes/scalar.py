"""``text`` and ``json``: one Python value per row (a str, or any JSON value), stored as
UTF-8 / compact JSON with shape (1,); ``list``: a JSON list per row, shape (len,), read
as an object array of its items (Deep Lake's ``list`` htype). ``None`` appended is the
htype's empty value, as in Deep Lake: ``""``, ``{}``, ``[]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tensorlake.compression import compress, decompress
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import (
    Encoded,
    Htype,
    Invalid,
    Pending,
    json_dumps,
    json_loads,
)

__all__ = ["JsonHtype", "ListHtype", "TextHtype"]


@dataclass(frozen=True, slots=True)
class TextHtype(Htype):
    name: str = "text"
    dtype: str | None = "str"
    scalar: ClassVar[bool] = True

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if value is None or (type(value) in (list, tuple) and not value):
            value = ""
        elif not isinstance(value, str):
            value = _unwrap_scalar(value, str, "a string")
        return compress(value.encode("utf-8"), meta.sample_compression), (1,)

    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        return bytes(_raw(meta, data)).decode("utf-8")

    def stack(self, values: list[Any]) -> np.ndarray:
        return np.array(values, dtype=str)


@dataclass(frozen=True, slots=True)
class JsonHtype(Htype):
    name: str = "json"
    dtype: str | None = "json"
    scalar: ClassVar[bool] = True

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if value is None:
            value = {}
        try:
            return compress(json_dumps(value), meta.sample_compression), (1,)
        except (TypeError, ValueError) as err:
            raise Invalid(f"expected a JSON-serialisable value: {err}") from None

    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        if not len(data):  # an empty row written before the tensor became json
            return {}
        return json_loads(bytes(_raw(meta, data)))

    def stack(self, values: list[Any]) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):  # lists must stay single objects, not a new axis
            out[i] = v
        return out


@dataclass(frozen=True, slots=True)
class ListHtype(Htype):
    """A JSON list per row (items of any JSON type, numpy arrays as nested lists)."""

    name: str = "list"
    dtype: str | None = "object"
    raw_rows: ClassVar[bool] = False

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if value is None:
            value = []
        elif isinstance(value, np.ndarray):
            value = list(value) if value.dtype == object else value.tolist()
        if not isinstance(value, (list, tuple)):
            raise Invalid(f"a 'list' row is a list (or tuple), got {type(value).__name__}.")
        try:
            data = json_dumps(list(value))
        except (TypeError, ValueError) as err:
            raise Invalid(f"expected a list of JSON-serialisable items: {err}") from None
        return compress(data, meta.sample_compression), (len(value),)

    def decode(
        self,
        meta: TensorMeta,
        data: memoryview | bytes,
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> Any:
        items = json_loads(bytes(_raw(meta, data))) if len(data) else []
        arr = np.empty(len(items), dtype=object) if out is None else out
        for i, item in enumerate(items):  # one by one: nested lists stay single objects
            arr[i] = item
        return arr

    def data(self, value: Any, meta: TensorMeta, one_row: bool) -> dict[str, Any]:
        if one_row:
            return {"value": list(value)}
        return {"value": [list(v) for v in value]}


def _raw(meta: TensorMeta, data: memoryview | bytes) -> memoryview | bytes:
    compression = meta.sample_compression
    # no bytes: an empty row written before the tensor's kind was known (generic rows)
    return decompress(data, compression) if compression and len(data) else data


def _unwrap_scalar(value: Any, kind: type, what: str) -> Any:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0].item()
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, kind):
        raise Invalid(f"expected {what}, got {type(value).__name__}.")
    return value
