"""Dataset names: the rule that names a dataset after its source (Grid's), and the check.

A name is lower-case ASCII letters, digits, ``-`` and ``_`` (at most 64, starting with a
letter or digit), so it is the same folder name and URL component everywhere. Without a
name given, a dataset is named after the last path component of its source, with its
suffixes stripped, made lower-case ASCII without spaces:
``s3://ryft-public-sample-data/esRedditJson/`` -> ``esredditjson``,
``https://host/subfolder/trainingSet.tar.gz`` -> ``trainingset``.
"""

from __future__ import annotations

import os
import re
import unicodedata
import urllib.parse

from tensorlake.api.names import DATASET_NAME, MAX_NAME
from tensorlake.errors import InvalidNameError

__all__ = ["MAX_NAME", "check_dataset_name", "name_from_source"]

_STRIPPED = re.compile(
    r"(\.(tar|tgz|tbz2|txz|zip|gz|bz2|xz|zst|json|jsonl|csv|tsv))+$", re.IGNORECASE
)


def check_dataset_name(name: str) -> str:
    """``name`` if it is a valid dataset name, else ``InvalidNameError`` saying why."""
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise InvalidNameError(
            f"Invalid dataset name {name!r}: use lower-case letters, digits, '-' and '_', "
            f"starting with a letter or digit, at most {MAX_NAME} characters "
            "(e.g. 'coco-train')."
        )
    return name


def name_from_source(src: str | os.PathLike[str]) -> str:
    """The name a dataset made from ``src`` gets when none is given (Grid's rule)."""
    text = os.fspath(src)
    path = urllib.parse.urlsplit(text).path if "://" in text else text
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if not parts and "://" in text:
        parts = [urllib.parse.urlsplit(text).netloc]  # a bucket alone: s3://bucket/
    last = _STRIPPED.sub("", parts[-1]) if parts else ""
    ascii_name = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9_-]+", "-", re.sub(r"\s+", "", ascii_name.lower())).strip("-_")
    if not name:
        raise InvalidNameError(
            f"Cannot name a dataset after {text!r}: its last path component has no letters "
            "or digits. Give a name (--name / name=)."
        )
    return check_dataset_name(name[:MAX_NAME].rstrip("-_"))
