"""Reading ``link[...]`` tensors: fetch the objects (concurrently), check they did not
change since ingest (per the dataset's link policy), decode them."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tensorlake.compression import decode_image, read_image_shape
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.links.companions import needs_fetch
from tensorlake.engine.links.resolver import LinkResolver
from tensorlake.engine.links.sample import LinkedSample
from tensorlake.errors import (
    DatasetError,
    KeyNotFoundError,
    LinkChangedError,
    LinkChangedWarning,
    LinkError,
)
from tensorlake.storage import ObjectInfo

__all__ = ["LINK_POLICIES", "LinkReader", "StoredRows", "check_policy"]

LINK_POLICIES = ("warn", "error", "ignore")
"""What reading an object that changed since ingest does (``ds.link_policy``)."""

Stored = tuple[bytes | memoryview, tuple[int, ...]]


class StoredRows(Protocol):
    """What a reader needs of a tensor's storage (a ``TensorEngine`` is one)."""

    @property
    def meta(self) -> TensorMeta: ...

    def read_stored(self, rows: Sequence[int] | np.ndarray) -> list[Stored]: ...

    def read_shapes(self, rows: Sequence[int] | np.ndarray) -> list[tuple[int, ...]]: ...


def check_policy(policy: str) -> str:
    if policy not in LINK_POLICIES:
        raise LinkError(f"link_policy must be one of {LINK_POLICIES}, got {policy!r}.")
    return policy


class LinkReader:
    """The objects behind some rows of one link tensor.

    ``info`` is the tensor's sample-info companion (None when it has none): its rows are
    raw JSON (``companions.py`` gives it no compression).
    """

    def __init__(
        self,
        rows: StoredRows,
        info: StoredRows | None,
        resolver: LinkResolver,
        policy: str = "warn",
    ) -> None:
        self._rows = rows
        self._info = info
        self._resolver = resolver
        self._policy = policy

    @property
    def name(self) -> str:
        return self._rows.meta.name

    def links(self, rows: np.ndarray) -> list[LinkedSample]:
        return [LinkedSample.from_stored(data) for data, _ in self._rows.read_stored(rows)]

    def fetch(self, rows: np.ndarray) -> list[bytes]:
        """The linked objects' bytes, fetched concurrently, checked against the versions
        recorded at ingest (an empty row's: no bytes)."""
        fetched = self._resolver.map_concurrently(self._fetch_or_empty, self.links(rows))
        self._check_versions(rows, [version for _, version in fetched])
        return [data for data, _ in fetched]

    def read(self, rows: np.ndarray, aslist: bool) -> Any:
        """Decoded linked images; each thread fetches and decodes, so decoding overlaps
        the other fetches."""

        def one(link: LinkedSample) -> tuple[np.ndarray, str]:
            if not link.url:  # an empty row
                return np.zeros((0, 0, 0), np.uint8), ""
            data, info = self._fetch_one(link)
            return decode_image(data), info.version

        done = self._resolver.map_concurrently(one, self.links(rows))
        self._check_versions(rows, [version for _, version in done])
        arrays = [arr for arr, _ in done]
        if aslist:
            return arrays
        if len({a.shape for a in arrays}) > 1:
            raise DatasetError(
                f"Tensor '{self.name}' links images of different shapes in this selection; "
                "use .numpy(aslist=True) to get a list of arrays."
            )
        return np.stack(arrays) if arrays else np.zeros((0, 0, 0, 3), np.uint8)

    def shapes(self, rows: np.ndarray) -> list[tuple[int, ...]]:
        """Each linked object's shape: from the chunk headers when ingest recorded it (verify
        or a companion), else from the objects' headers (fetched)."""
        if needs_fetch(self._rows.meta.extra):
            return self._rows.read_shapes(rows)
        return [tuple(read_image_shape(d)) if len(d) else (0, 0, 0) for d in self.fetch(rows)]

    def verify(self, rows: np.ndarray) -> dict[str, Any]:
        """Which linked objects vanished or changed since ingest (needs the sample info)."""
        recorded = self._recorded_versions(rows)
        if recorded is None:
            raise DatasetError(
                f"'{self.name}' keeps no sample info to compare with; create link tensors "
                "with create_sample_info_tensor=True (the default) to pin object versions."
            )
        links = self.links(rows)

        def state(link: LinkedSample) -> str | None:
            if not link.url:  # an empty row links nothing: nothing can be missing
                return ""
            try:
                return self._resolver.info(link).version
            except KeyNotFoundError:
                return None

        now = self._resolver.map_concurrently(state, links)
        report: dict[str, Any] = {"checked": len(links), "missing": [], "changed": []}
        for row, link, old, new in zip(rows.tolist(), links, recorded, now):
            if new is None:
                report["missing"].append({"row": int(row), "url": link.url})
            elif old and new != old:
                report["changed"].append({"row": int(row), "url": link.url})
        return report

    def _fetch_or_empty(self, link: LinkedSample) -> tuple[bytes, str]:
        if not link.url:
            return b"", ""
        data, info = self._fetch_one(link)
        return data, info.version

    def _fetch_one(self, link: LinkedSample) -> tuple[bytes, ObjectInfo]:
        try:
            return self._resolver.fetch(link)
        except KeyNotFoundError as err:
            raise KeyNotFoundError(
                f"linked object {link.url} no longer exists (ds.{self.name}.verify_links() "
                "lists every missing or changed object).",
                key=err.key,
            ) from None

    def _recorded_versions(self, rows: np.ndarray) -> list[str] | None:
        if self._info is None:
            return None
        infos = [json.loads(bytes(data)) for data, _ in self._info.read_stored(rows)]
        return [i.get("version", "") for i in infos]

    def _check_versions(self, rows: np.ndarray, seen: list[str]) -> None:
        if self._policy == "ignore":
            return
        recorded = self._recorded_versions(rows)
        if recorded is None:
            return
        changed = [int(r) for r, a, b in zip(rows.tolist(), recorded, seen) if a and a != b]
        if not changed:
            return
        message = (
            f"{len(changed)} linked object(s) of '{self.name}' changed since they were "
            f"ingested (rows {changed[:10]}{'...' if len(changed) > 10 else ''}): the data read "
            "is not what the dataset recorded. ds.link_policy = 'error' makes this an error, "
            "'ignore' silences it."
        )
        if self._policy == "error":
            raise LinkChangedError(message)
        warnings.warn(LinkChangedWarning(message), stacklevel=4)
