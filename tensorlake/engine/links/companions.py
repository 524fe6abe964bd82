"""What a link tensor records beside its URLs, and the hidden tensors that hold it.

Deep Lake's ``create_shape_tensor`` / ``create_sample_info_tensor``: a link tensor
``images`` gets hidden companions ``_images_shape`` (each object's shape, uint32) and
``_images_info`` (format, size, shape and version as seen at ingest, raw JSON), filled
as rows are appended. They let a reader know shapes without fetching, and tell when an
object changed since ingest. ``verify`` (default on) fetches and checks each object at
append time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tensorlake import config
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.links.resolver import LinkedObject

__all__ = [
    "LINK_ARGS",
    "companion_metas",
    "companion_names",
    "companion_values",
    "link_check",
    "needs_fetch",
]

LINK_ARGS = ("verify", "create_shape_tensor", "create_sample_info_tensor")
"""The create_tensor arguments of link htypes."""

_COMPANIONS = (  # argument, meta.extra key, name suffix, htype, dtype
    ("create_shape_tensor", "shape_tensor", "_shape", "generic", "uint32"),
    ("create_sample_info_tensor", "info_tensor", "_info", "json", "json"),
)


def companion_metas(name: str, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[TensorMeta]]:
    """The ``extra`` a new link tensor ``name`` records, and the metas of its companions."""
    head, _, leaf = name.rpartition("/")
    prefix = f"{head}/_{leaf}" if head else f"_{name}"
    extra: dict[str, Any] = {"verify": bool(args.get("verify", True))}
    metas = []
    for arg, key, suffix, htype, dtype in _COMPANIONS:
        if args.get(arg, True):
            hidden = prefix + suffix
            metas.append(
                TensorMeta(
                    name=hidden,
                    htype=htype,
                    dtype=dtype,
                    max_chunk_size=config.chunk_size(),
                    hidden=True,
                )
            )
            extra[key] = hidden
    return extra, metas


def companion_names(extra: Mapping[str, Any]) -> list[str]:
    """The hidden tensors of a link tensor whose meta has this ``extra``."""
    return [extra[key] for _, key, *_ in _COMPANIONS if extra.get(key)]


def companion_values(
    extra: Mapping[str, Any], linked: Sequence[LinkedObject]
) -> dict[str, list[Any]]:
    """The companion rows of appended link rows, from what ingest learned of each object."""
    out: dict[str, list[Any]] = {}
    if extra.get("shape_tensor"):
        out[extra["shape_tensor"]] = [np.asarray(o.shape, dtype=np.uint32) for o in linked]
    if extra.get("info_tensor"):
        out[extra["info_tensor"]] = [o.to_json() for o in linked]
    return out


def needs_fetch(extra: Mapping[str, Any]) -> bool:
    """Whether appending to the link tensor fetches each object."""
    return bool(extra.get("verify") or extra.get("shape_tensor") or extra.get("info_tensor"))


def link_check(meta: TensorMeta) -> str | None:
    """The format linked objects must have (only checked with ``verify``)."""
    return meta.sample_compression if meta.extra.get("verify") else None
