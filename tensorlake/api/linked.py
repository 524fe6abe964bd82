"""Reading ``link[...]`` tensors: fetch the objects (concurrently), check they did not
change since ingest, decode them."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tensorlake.compression import decode_image, read_image_shape
from tensorlake.engine.dataset_core import DatasetCore
from tensorlake.engine.links import LINK_POLICIES, LinkedSample
from tensorlake.engine.sample_codec import decode
from tensorlake.errors import DatasetError, KeyNotFoundError, LinkChangedWarning
from tensorlake.storage import ObjectInfo


def links_of(core: DatasetCore, name: str, rows: np.ndarray) -> list[LinkedSample]:
    engine = core.engine(name)
    return [decode(engine.meta, data, shape) for data, shape in engine.read_stored(rows)]


def fetch(core: DatasetCore, name: str, rows: np.ndarray) -> list[bytes]:
    """The linked objects' bytes, fetched concurrently, checked against the versions
    recorded at ingest (per the dataset's ``link_policy``)."""
    fetched = core.links.map_concurrently(
        lambda link: _fetch_one(core, name, link), links_of(core, name, rows)
    )
    _check_versions(core, name, rows, [info.version for _, info in fetched])
    return [data for data, _ in fetched]


def _fetch_one(core: DatasetCore, name: str, link: LinkedSample) -> tuple[bytes, ObjectInfo]:
    try:
        return core.links.fetch(link)
    except KeyNotFoundError as err:
        raise KeyNotFoundError(
            f"linked object {link.url} no longer exists (ds.{name}.verify_links() lists "
            "every missing or changed object).",
            key=err.key,
        ) from None


def read(core: DatasetCore, name: str, rows: np.ndarray, aslist: bool) -> Any:
    """Decoded linked images; each worker fetches and decodes, so decoding overlaps
    the other fetches."""

    def one(link: LinkedSample) -> tuple[np.ndarray, str]:
        data, info = _fetch_one(core, name, link)
        return decode_image(data), info.version

    done = core.links.map_concurrently(one, links_of(core, name, rows))
    _check_versions(core, name, rows, [version for _, version in done])
    arrays = [arr for arr, _ in done]
    if aslist:
        return arrays
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DatasetError(
            f"Tensor '{name}' links images of different shapes in this selection; use "
            ".numpy(aslist=True) to get a list of arrays."
        )
    return np.stack(arrays) if arrays else np.zeros((0, 0, 0, 3), np.uint8)


def shapes(core: DatasetCore, name: str, rows: np.ndarray) -> list[tuple[int, ...]]:
    """Each linked object's shape: from the chunk headers when ingest recorded it (verify
    or a shape tensor), else from the objects' headers (fetched)."""
    engine = core.engine(name)
    extra = engine.meta.extra
    if extra.get("verify") or extra.get("shape_tensor") or extra.get("info_tensor"):
        return engine.read_shapes(rows)
    return [tuple(read_image_shape(d)) for d in fetch(core, name, rows)]


def recorded_versions(core: DatasetCore, name: str, rows: np.ndarray) -> list[str] | None:
    info_tensor = core.engine(name).meta.extra.get("info_tensor")
    if not info_tensor:
        return None
    engine = core.engine(info_tensor)
    infos = [decode(engine.meta, data, shape) for data, shape in engine.read_stored(rows)]
    return [i.get("version", "") for i in infos]


def _check_versions(core: DatasetCore, name: str, rows: np.ndarray, seen: list[str]) -> None:
    policy = core.settings.get("link_policy", "warn")
    if policy == "ignore":
        return
    recorded = recorded_versions(core, name, rows)
    if recorded is None:
        return
    changed = [int(r) for r, a, b in zip(rows.tolist(), recorded, seen) if a and a != b]
    if not changed:
        return
    message = (
        f"{len(changed)} linked object(s) of '{name}' changed since they were ingested "
        f"(rows {changed[:10]}{'...' if len(changed) > 10 else ''}): the data read is not "
        "what the dataset recorded. ds.link_policy = 'error' makes this an error, "
        "'ignore' silences it."
    )
    if policy == "error":
        raise DatasetError(message)
    warnings.warn(LinkChangedWarning(message), stacklevel=4)


def verify(core: DatasetCore, name: str, rows: np.ndarray) -> dict[str, Any]:
    """Which linked objects vanished or changed since ingest (needs the sample info)."""
    recorded = recorded_versions(core, name, rows)
    if recorded is None:
        raise DatasetError(
            f"'{name}' keeps no sample info to compare with; create link tensors with "
            "create_sample_info_tensor=True (the default) to pin object versions."
        )
    links = links_of(core, name, rows)

    def state(link: LinkedSample) -> str | None:
        try:
            return core.links.info(link).version
        except KeyNotFoundError:
            return None

    now = core.links.map_concurrently(state, links)
    report: dict[str, Any] = {"checked": len(links), "missing": [], "changed": []}
    for row, link, old, new in zip(rows.tolist(), links, recorded, now):
        if new is None:
            report["missing"].append({"row": int(row), "url": link.url})
        elif old and new != old:
            report["changed"].append({"row": int(row), "url": link.url})
    return report


def check_policy(policy: str) -> str:
    if policy not in LINK_POLICIES:
        raise ValueError(f"link_policy must be one of {LINK_POLICIES}, got {policy!r}.")
    return policy
