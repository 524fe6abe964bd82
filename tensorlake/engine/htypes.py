"""htypes: a named bundle of defaults plus validation for a tensor's samples.

Validation turns whatever a user appends (numbers, lists, arrays, strings, files read with
``tl.read``) into a canonical numpy array, string or object *before* anything is written,
so a bad sample leaves the dataset unchanged. See the table in docs/format.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.compression import normalize_compression

IMAGE_COMPRESSIONS = ("jpeg", "png")
UNSET: Any = object()  # marks a create_tensor argument the user did not give
LINK_ARGS = ("verify", "create_shape_tensor", "create_sample_info_tensor")


@dataclass(frozen=True, slots=True)
class Htype:
    """Defaults and rules of one htype."""

    name: str
    dtype: str | None  # fixed dtype, or None when the first sample (or dtype=) decides
    sample_compression: Any = None  # default; UNSET means the user must choose
    compressions: tuple[str | None, ...] = (None, "lz4")
    ndims: tuple[int, ...] | None = None  # allowed sample ranks after normalisation
    info_keys: tuple[str, ...] = ()  # create_tensor keyword arguments kept in tensor.info
    scalar: bool = False  # one Python value per row (text, json), stored with shape (1,)


HTYPES: dict[str, Htype] = {
    h.name: h
    for h in (
        Htype("generic", None),
        Htype("image", "uint8", UNSET, (None, "lz4", *IMAGE_COMPRESSIONS), (3,)),
        Htype("image.rgb", "uint8", UNSET, (None, "lz4", *IMAGE_COMPRESSIONS), (3,)),
        Htype("image.gray", "uint8", UNSET, (None, "lz4", *IMAGE_COMPRESSIONS), (3,)),
        Htype("class_label", "uint32", None, (None, "lz4"), (1,), ("class_names",)),
        Htype("bbox", "float32", None, (None, "lz4"), (2,), ("coords",)),
        Htype("binary_mask", "bool", "lz4", (None, "lz4"), (3,)),
        Htype("embedding", "float32", None, (None, "lz4"), (1,)),
        Htype("text", "str", None, (None, "lz4"), scalar=True),
        Htype("json", "json", None, (None, "lz4"), scalar=True),
        Htype("link[image]", "uint8", UNSET, IMAGE_COMPRESSIONS, (3,), LINK_ARGS),
    )
}

BBOX_TYPES = ("pixel", "fractional")
BBOX_MODES = ("LTWH", "LTRB", "CCWH")


def get_htype(name: str) -> Htype:
    try:
        return HTYPES[name]
    except KeyError:
        raise ValueError(
            f"Unknown htype {name!r}. Valid htypes: {', '.join(sorted(HTYPES))}."
        ) from None


def resolve_compression(htype: Htype, sample_compression: Any) -> str | None:
    """The sample compression a new tensor gets, validated against its htype."""
    if sample_compression is UNSET:
        if htype.sample_compression is UNSET:
            raise ValueError(
                f"htype '{htype.name}' needs an explicit sample_compression: one of "
                f"{', '.join(repr(c) for c in htype.compressions)} (e.g. 'jpeg' to store "
                "JPEG files as they are)."
            )
        return htype.sample_compression
    name = normalize_compression(sample_compression)
    if name not in htype.compressions:
        raise ValueError(
            f"sample_compression {sample_compression!r} is not valid for htype "
            f"'{htype.name}'; choose one of {', '.join(repr(c) for c in htype.compressions)}."
        )
    return name


def check_info_args(htype: Htype, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Validate htype-specific create_tensor arguments; return the tensor's initial info."""
    unknown = set(kwargs) - set(htype.info_keys)
    if unknown:
        raise TypeError(
            f"create_tensor() got unexpected arguments {sorted(unknown)} for htype "
            f"'{htype.name}'"
            + (f"; it accepts {list(htype.info_keys)}." if htype.info_keys else ".")
        )
    info: dict[str, Any] = {}
    if htype.name.startswith("link["):
        return info  # link arguments shape the tensor (see DatasetCore.create_tensor)
    if htype.name == "class_label":
        names = kwargs.get("class_names") or []
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ValueError("class_names must be a list of strings.")
        info["class_names"] = list(names)
    if htype.name == "bbox":
        coords = dict(kwargs.get("coords") or {})
        coords.setdefault("type", "pixel")
        coords.setdefault("mode", "LTWH")
        if coords["type"] not in BBOX_TYPES or coords["mode"] not in BBOX_MODES:
            raise ValueError(
                f"coords must have type in {BBOX_TYPES} and mode in {BBOX_MODES}, got {coords}."
            )
        info["coords"] = coords
    return info


def is_link(htype: str) -> bool:
    return htype.startswith("link[")


def json_dumps(value: Any) -> bytes:
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
