"""``create_tensor``'s arguments: which it takes, for which htype, and what they mean.

Deep Lake 3's arguments, with its meanings:

* ``sample_compression`` / ``chunk_compression``: per sample (``jpeg``, ``png``,
  ``lz4``; per htype) or per chunk (``lz4``, or ``jpeg`` / ``png`` where the htype takes
  them per sample: applied row by row, ``image_rows.py``); not both, as in Deep Lake. An
  image tensor needs one of the two.
* ``create_shape_tensor``, ``create_id_tensor``, ``create_sample_info_tensor``: hidden
  companion tensors kept in step with the rows (``engine/links/companions.py``). Deep
  Lake makes all three for every tensor unless told not to; tensorlake makes them for
  link tensors only (shape and info, when ``verify``) unless asked, since every
  companion is another tensor written on each append, and chunk headers already hold
  every row's shape. ``create_sample_info_tensor`` applies to images, segment masks and
  links, ``create_shape_tensor`` to everything but text and json (elsewhere they are
  ignored, as in Deep Lake).
* ``verify`` (link htypes): fetch and check each object at append time. Without it,
  link tensors get no shape or info companion unless asked for one explicitly.
* ``tiling_threshold``: samples larger than this many bytes are split into tiles of
  about that size (default: the chunk size); ``-1`` never tiles.
* ``hidden``, ``max_chunk_size``, ``exist_ok``, ``verbose`` (accepted; tensorlake
  prints no warnings from here).
* ``downsampling``: not supported (Deep Lake's downsampled copies feed its web viewer);
  only ``None`` is accepted.

Any other argument must be one the htype takes (``class_names``, ``coords`` ...), else
``HtypeArgumentError`` names it and lists every accepted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

from tensorlake import config
from tensorlake.compression import normalize_compression
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import IMAGE_COMPRESSIONS, UNSET, Htype
from tensorlake.engine.htypes.registry import get_htype
from tensorlake.engine.links.companions import ID, INFO, SHAPE, Companion, companion_metas
from tensorlake.errors import HtypeArgumentError, HtypeError

__all__ = ["COMMON_ARGS", "new_tensor_metas"]

_POPPED = (
    "create_shape_tensor",
    "create_id_tensor",
    "create_sample_info_tensor",
    "verify",
    "verbose",
    "downsampling",
    "tiling_threshold",
)
"""The arguments handled here, before the htype sees the rest."""

COMMON_ARGS = (
    "htype",
    "dtype",
    "sample_compression",
    "chunk_compression",
    "hidden",
    "max_chunk_size",
    "exist_ok",
    *_POPPED,
)
"""Arguments every htype takes (Deep Lake's ``create_tensor`` signature)."""


def new_tensor_metas(
    name: str,
    htype: str = "generic",
    dtype: Any = None,
    sample_compression: Any = UNSET,
    chunk_compression: Any = None,
    max_chunk_size: int | None = None,
    hidden: bool = False,
    **kwargs: Any,
) -> tuple[TensorMeta, list[TensorMeta]]:
    """The meta of a new tensor ``name`` and those of its hidden companions, from
    ``create_tensor``'s arguments (validated here, before anything is created)."""
    spec = get_htype(htype)
    args = {k: kwargs.pop(k) for k in _POPPED if k in kwargs}
    unknown = set(kwargs) - set(spec.info_keys)
    if unknown:
        accepted = [*COMMON_ARGS, *spec.info_keys]
        raise HtypeArgumentError(
            f"create_tensor() got unexpected arguments {sorted(unknown)} for htype "
            f"'{spec.name}'; it accepts {', '.join(accepted)}."
        )
    if args.get("downsampling") is not None:
        raise HtypeArgumentError(
            f"create_tensor(downsampling={args['downsampling']!r}): downsampling is not "
            "supported by tensorlake (Deep Lake keeps downsampled copies for its web "
            "viewer); leave it out, or resize images before appending them."
        )
    chunk = _chunk_compression(chunk_compression, spec)
    if chunk is not None and sample_compression not in (UNSET, None):
        raise HtypeError(
            f"create_tensor() got sample_compression={sample_compression!r} and "
            f"chunk_compression={chunk_compression!r}: choose one, samples are compressed "
            "either one by one or a chunk at a time (as in Deep Lake)."
        )
    if sample_compression is UNSET and chunk is not None and None in spec.compressions:
        sample_compression = None  # compressed per chunk, as Deep Lake allows for images
    meta = TensorMeta(
        name=name,
        htype=spec.name,
        info=spec.info_from_args(kwargs),
        sample_compression=spec.resolve_compression(sample_compression),
        chunk_compression=chunk,
        dtype=spec.resolve_dtype(dtype),
        max_chunk_size=_max_chunk_size(max_chunk_size),
        hidden=bool(hidden),
    )
    threshold = _tiling_threshold(args.get("tiling_threshold"))
    if threshold is not None:
        meta.extra["tiling_threshold"] = threshold
    wanted = _companions(spec, args)
    if spec.is_link:
        meta.extra["verify"] = bool(args.get("verify", True))
    extra, companions = companion_metas(name, wanted)
    meta.extra.update(extra)
    return meta, companions


def _companions(spec: Htype, args: Mapping[str, Any]) -> list[Companion]:
    """Which companions a tensor gets (see the module's docstring for the defaults)."""
    default = bool(args.get("verify", True)) if spec.is_link else False
    wanted = []
    for companion, applies in (
        (SHAPE, spec.records_shapes()),
        (ID, True),
        (INFO, spec.records_sample_info()),
    ):
        value = args.get(companion.arg)
        ask = (companion is not ID and default) if value is None else _flag(companion.arg, value)
        if ask and applies:
            wanted.append(companion)
    return wanted


def _flag(arg: str, value: Any) -> bool:
    if not isinstance(value, (bool, int)):
        raise HtypeError(f"create_tensor({arg}=...) takes True or False, got {value!r}.")
    return bool(value)


def _chunk_compression(value: Any, spec: Htype) -> str | None:
    """``lz4``, or an image format the htype stores (``png``, ``jpeg``; ``jpg`` too)."""
    if value is UNSET or value is None:
        return None
    try:
        name = normalize_compression(value)
    except ValueError:
        name = None
    images = [c for c in spec.compressions if c in IMAGE_COMPRESSIONS]
    if name != "lz4" and name not in images:
        choices = ", ".join(repr(c) for c in ("lz4", *images))
        raise HtypeError(
            f"chunk_compression {value!r} is not supported for htype '{spec.name}'; use "
            f"one of {choices} or None."
        )
    return name


def _max_chunk_size(value: Any) -> int:
    if value is None:
        return config.chunk_size()
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise HtypeError(f"max_chunk_size must be a positive number of bytes, got {value!r}.")
    return int(value)


def _tiling_threshold(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or (value <= 0 and value != -1):
        raise HtypeError(
            f"tiling_threshold must be a positive number of bytes, or -1 to never tile; "
            f"got {value!r}."
        )
    return int(value)
