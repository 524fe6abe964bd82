"""The hidden tensors a tensor keeps beside its rows, and what a link tensor records.

Deep Lake's ``create_shape_tensor``, ``create_id_tensor`` and
``create_sample_info_tensor``: a tensor ``images`` may have hidden companions

* ``_images_shape`` - each row's shape (uint32; a ``list`` row's length, a sequence
  row's item shapes), so shapes are known without reading rows or fetching links;
* ``_images_id`` - a random uint64 per row, fixed when the row is appended (an update
  keeps it), which identifies a row whatever its position;
* ``_images_info`` - json per row: what is known of the sample's source (a file read
  with ``tl.read``: format, shape, file name, EXIF; a link: format, size, shape and
  version at ingest), ``{}`` when nothing is.

They hold one row per row of their tensor, kept in step by every append (``append.py``),
update and removal; ``extra`` of the tensor's meta names them. For link tensors ``verify``
(default on) fetches and checks each object at append time. Which companions a tensor
gets, and their defaults, is decided when it is created (``htypes/arguments.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake import config
from tensorlake.engine.format.manifest import TensorMeta

__all__ = [
    "COMPANIONS",
    "COMPANION_ARGS",
    "COMPANION_KEYS",
    "LINK_ARGS",
    "Companion",
    "companion_metas",
    "companion_name",
    "companion_names",
    "companion_values",
    "link_check",
    "needs_fetch",
    "new_ids",
]


@dataclass(frozen=True, slots=True)
class Companion:
    """One kind of hidden companion tensor."""

    arg: str  # the create_tensor argument that asks for it
    key: str  # where the tensor's meta.extra names it
    suffix: str  # its name: ``_<name><suffix>``
    htype: str
    dtype: str


SHAPE = Companion("create_shape_tensor", "shape_tensor", "_shape", "generic", "uint32")
ID = Companion("create_id_tensor", "id_tensor", "_id", "generic", "uint64")
INFO = Companion("create_sample_info_tensor", "info_tensor", "_info", "json", "json")

COMPANIONS = (SHAPE, ID, INFO)
COMPANION_ARGS = tuple(c.arg for c in COMPANIONS)
"""The create_tensor arguments that ask for companions."""
COMPANION_KEYS = tuple(c.key for c in COMPANIONS)
"""The keys of ``TensorMeta.extra`` that name a tensor's companions."""
LINK_ARGS = ("verify", *COMPANION_ARGS)
"""The create_tensor arguments about companions and links."""


def companion_name(name: str, suffix: str) -> str:
    """``labels/boxes`` -> ``labels/_boxes<suffix>``: Deep Lake's names, in the same group."""
    head, _, leaf = name.rpartition("/")
    return f"{head}/_{leaf}{suffix}" if head else f"_{name}{suffix}"


def companion_metas(
    name: str, wanted: Sequence[Companion]
) -> tuple[dict[str, Any], list[TensorMeta]]:
    """The ``extra`` entries naming the companions ``wanted`` of tensor ``name``, and
    their metas (hidden, uncompressed)."""
    extra: dict[str, Any] = {}
    metas = []
    for companion in wanted:
        hidden = companion_name(name, companion.suffix)
        metas.append(
            TensorMeta(
                name=hidden,
                htype=companion.htype,
                dtype=companion.dtype,
                max_chunk_size=config.chunk_size(),
                hidden=True,
            )
        )
        extra[companion.key] = hidden
    return extra, metas


def companion_names(extra: Mapping[str, Any]) -> list[str]:
    """The hidden companions of a tensor whose meta has this ``extra``."""
    return [extra[c.key] for c in COMPANIONS if extra.get(c.key)]


def new_ids(count: int) -> list[np.ndarray]:
    """``count`` random row ids (Deep Lake's: 8 random bytes each), one (1,) array each."""
    # os.urandom, not numpy's generator: a seeded or forked generator would repeat ids
    ids = np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
    return [ids[i : i + 1] for i in range(count)]


def companion_values(
    extra: Mapping[str, Any],
    count: int,
    shapes: Sequence[np.ndarray] | None = None,
    infos: Sequence[dict[str, Any]] | None = None,
    new_rows: bool = True,
) -> dict[str, list[Any]]:
    """The companion rows of ``count`` rows of a tensor whose meta has this ``extra``,
    given their shape rows and sample infos; ids only for ``new_rows`` (an update keeps
    a row's id)."""
    out: dict[str, list[Any]] = {}
    if extra.get(SHAPE.key):
        assert shapes is not None and len(shapes) == count
        out[extra[SHAPE.key]] = list(shapes)
    if new_rows and extra.get(ID.key):
        out[extra[ID.key]] = new_ids(count)
    if extra.get(INFO.key):
        out[extra[INFO.key]] = list(infos) if infos is not None else [{}] * count
    return out


def needs_fetch(extra: Mapping[str, Any]) -> bool:
    """Whether appending to the link tensor fetches each object."""
    return bool(extra.get("verify") or extra.get(SHAPE.key) or extra.get(INFO.key))


def link_check(meta: TensorMeta) -> str | None:
    """The format linked objects must have (only checked with ``verify``)."""
    return meta.sample_compression if meta.extra.get("verify") else None
