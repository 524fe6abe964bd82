"""Names of tensors and groups: ``images``, ``labels/boxes`` (groups separated by ``/``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tensorlake.errors import InvalidNameError

__all__ = ["check_name", "check_not_attribute", "parents"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
MAX_PART = 200
"""The longest part of a name: each part is a folder of the chunk keys, with companions'
affixes (``_<name>_shape``) still under a file system's 255-byte limit."""
MAX_NAME = 512
"""The longest name: its chunk keys stay well under S3's 1,024-byte limit on keys."""


def check_name(name: str) -> None:
    parts = name.split("/") if isinstance(name, str) else [None]
    if not name or not all(isinstance(p, str) and _NAME.match(p) for p in parts):
        raise InvalidNameError(
            f"Invalid tensor or group name {name!r}: use letters, digits, '_', '-', '.', "
            "with '/' separating groups (e.g. 'images' or 'labels/boxes')."
        )
    if len(name) > MAX_NAME or max(len(p) for p in parts) > MAX_PART:
        raise InvalidNameError(
            f"Invalid tensor or group name {name[:40]!r}... ({len(name)} characters): a name "
            f"has at most {MAX_NAME} characters and each '/'-separated part at most "
            f"{MAX_PART}; choose a shorter name."
        )


def check_not_attribute(name: str, attributes: Iterable[str]) -> None:
    """Refuse a tensor or group whose name (its last part) is one of ``attributes``: the
    dataset's own (``info``, ``commit``, ``tensors`` ...), which ``ds.<name>`` would
    give instead of it. Deep Lake refuses these names too."""
    leaf = name.rpartition("/")[2] if isinstance(name, str) else name
    if leaf in set(attributes):
        raise InvalidNameError(
            f"Invalid tensor or group name {name!r}: '{leaf}' is a dataset attribute "
            f"(ds.{leaf}), so the tensor could not be reached as one; choose another name "
            f"(e.g. '{leaf}_')."
        )


def parents(name: str) -> list[str]:
    """The groups ``name`` is in, outermost first: ``a/b/c`` -> ``["a", "a/b"]``."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
