"""``sample_out``: where a transform puts the rows it makes from one input item."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tensorlake.api.tensor import Tensor
from tensorlake.engine.htypes.sample import Sample
from tensorlake.errors import SampleError, TensorNotFoundError

__all__ = ["EmptySample", "Row", "RowValue", "SampleOut", "TensorOut", "plain", "rows_of"]


class TensorOut:
    """``sample_out.<tensor>``: append values to one tensor."""

    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def append(self, value: Any) -> None:
        self._values.append(plain(value))

    def extend(self, values: Iterable[Any]) -> None:
        self._values.extend(map(plain, values))

    def __len__(self) -> int:
        return len(self._values)


class SampleOut:
    """Collects the rows a transform appends for one input item.

    Example::

        @tl.compute
        def fn(item, sample_out):
            sample_out.append({"images": tl.read(item), "labels": 0})
            sample_out.labels.append(1)          # one tensor at a time also works
    """

    # set in __init__ (through object.__setattr__: assigning attributes is refused)
    _tensors: Collection[str] | None
    columns: dict[str, list[Any]]

    def __init__(self, tensors: Collection[str] | None) -> None:
        if tensors is not None and not isinstance(tensors, (set, frozenset)):
            tensors = frozenset(tensors)
        object.__setattr__(self, "_tensors", tensors)
        object.__setattr__(self, "columns", {})

    def _column(self, name: str) -> list[Any]:
        if self._tensors is not None and name not in self._tensors:
            raise TensorNotFoundError(
                f"sample_out has no tensor '{name}'. Tensors of the output dataset: "
                f"{sorted(self._tensors)}."
            )
        return self.columns.setdefault(name, [])

    def __getitem__(self, name: str) -> TensorOut:
        return TensorOut(self._column(name))

    def __getattr__(self, name: str) -> TensorOut:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except TensorNotFoundError as err:
            raise AttributeError(str(err)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("use sample_out.<tensor>.append(value) or sample_out.append({...})")

    def append(self, sample: Mapping[str, Any]) -> None:
        """Append one row: a value per tensor."""
        if not isinstance(sample, (dict, Mapping)):  # dict first: the ABC check is slow
            raise SampleError(
                f"sample_out.append() takes a dict of tensor -> value, got {type(sample).__name__}."
            )
        columns = self.columns
        for name, value in sample.items():
            column = columns.get(name)
            if column is None:
                column = self._column(name)
            column.append(plain(value))

    def extend(self, samples: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> None:
        """Append many rows: a dict of equal-length lists, or a list of row dicts."""
        if isinstance(samples, Mapping):
            for name, values in samples.items():
                self._column(name).extend(values)
        else:
            for sample in samples:
                self.append(sample)

    def take(self) -> dict[str, list[Any]]:
        """The rows appended so far (and forget them)."""
        columns = self.columns
        object.__setattr__(self, "columns", {})
        return columns

    def __len__(self) -> int:
        return max((len(v) for v in self.columns.values()), default=0)


def plain(value: Any) -> Any:
    """What a value appended to ``sample_out`` stores: a row's value passed on from an
    earlier stage (``sample_in.images``) or a one-row tensor view of an input dataset is
    its value (Deep Lake's transforms take both)."""
    if isinstance(value, RowValue):
        return value.value
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, EmptySample):
        return value.numpy()
    return value


class EmptySample:
    """The sample of a tensor past its end: ``numpy()`` is an empty array of the
    tensor's dtype and rank (appending it appends an empty row)."""

    __slots__ = ("_array",)

    def __init__(self, tensor: Tensor) -> None:
        shape = tensor.meta.max_shape or (0,)
        self._array = np.zeros((0,) * len(shape), dtype=tensor.dtype or np.float32)

    def numpy(self, aslist: bool = False) -> np.ndarray:
        return self._array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._array if dtype is None else self._array.astype(dtype)

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"EmptySample(shape={self._array.shape})"


class RowValue:
    """``row.<tensor>``: one value of a row passed between pipeline stages, read the way
    a dataset's tensor is (``.numpy()``, ``.data()``, ``.text()``), as Deep Lake's
    transforms read theirs."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def numpy(self, aslist: bool = False) -> Any:
        """The value as an array (an image read with ``tl.read`` decoded); text as a
        str array; ``aslist`` is accepted for Deep Lake's signature."""
        value = self.value
        if isinstance(value, Sample):
            return value.array
        return np.asarray(value)

    def data(self) -> dict[str, Any]:
        return {"value": self.numpy()}

    def text(self) -> str:
        return str(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"RowValue({self.value!r})"


class Row(Mapping[str, Any]):
    """One sample an earlier stage of a pipeline appended, as the next stage receives
    it: ``row["images"]`` is the value appended, ``row.images.numpy()`` (Deep Lake's
    way of reading a sample) its array."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> RowValue:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return RowValue(self._values[name])
        except KeyError:
            raise AttributeError(
                f"The sample has no tensor '{name}'; it has {sorted(self._values)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({self._values!r})"


def rows_of(columns: Mapping[str, Sequence[Any]]) -> list[Row]:
    """Column lists -> rows (the items a composed next transform receives)."""
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise SampleError(f"every tensor needs the same number of samples, got {lengths}.")
    n = next(iter(lengths.values()), 0)
    return [Row({name: values[i] for name, values in columns.items()}) for i in range(n)]
