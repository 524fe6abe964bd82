"""``ds.info`` and ``tensor.info``: a dict with attribute access that is saved on change."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

__all__ = ["Info"]


class Info(MutableMapping[str, Any]):
    """Free-form metadata stored with the dataset version (JSON-like values).

    Example::

        ds.info.description = "COCO train 2017"
        ds.info.update(source="s3://bucket/coco")
        ds.labels.info.class_names
    """

    __slots__ = ("_before_change", "_data", "_on_change")

    def __init__(
        self,
        data: dict[str, Any],
        on_change: Callable[[], None],
        before_change: Callable[[], None] = lambda: None,
    ) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_on_change", on_change)
        object.__setattr__(self, "_before_change", before_change)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._before_change()
        self._data[key] = value
        self._on_change()

    def __delitem__(self, key: str) -> None:
        self._before_change()
        del self._data[key]
        self._on_change()

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(f"info has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def update(self, *args: Any, **kwargs: Any) -> None:  # one save, not one per key
        self._before_change()
        self._data.update(*args, **kwargs)
        self._on_change()

    def __repr__(self) -> str:
        return repr(self._data)
