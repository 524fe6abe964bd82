"""``sample_out``: where a transform puts the rows it makes from one input item."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from tensorlake.errors import SampleError, TensorNotFoundError

__all__ = ["SampleOut", "TensorOut", "rows_of"]


class TensorOut:
    """``sample_out.<tensor>``: append values to one tensor."""

    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def append(self, value: Any) -> None:
        self._values.append(value)

    def extend(self, values: Iterable[Any]) -> None:
        self._values.extend(values)

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
            column.append(value)

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


def rows_of(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Column lists -> row dicts (the items a composed next transform receives)."""
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise SampleError(f"every tensor needs the same number of samples, got {lengths}.")
    n = next(iter(lengths.values()), 0)
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]
