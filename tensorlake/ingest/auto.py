"""``tl.ingest``: one entry point for every source; it tells what the source is.

=================================  ==============================================
a local folder or S3 prefix         COCO when it holds a COCO annotation file and
                                    the images, classification when its images sit
                                    in class folders, else generic files
an ``.json`` / ``.csv`` file or URL  a manifest of object URLs
an archive (local, s3://, http(s)) ``.zip``, ``.tar``, ``.tar.gz`` (by content)
=================================  ==============================================

``format=`` forces one. Without ``dest`` the dataset goes to the local home,
``$TENSORLAKE_HOME/datasets/<name>``, named after the source (``naming.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tensorlake import config
from tensorlake.api.dataset import Dataset
from tensorlake.errors import IngestError
from tensorlake.ingest.classification import SPLIT_NAMES, ingest_classification
from tensorlake.ingest.coco import ingest_coco
from tensorlake.ingest.files import IMAGE_EXTENSIONS, FileSource, is_hidden
from tensorlake.ingest.naming import check_dataset_name, name_from_source

__all__ = ["FORMATS", "default_dest", "detect_format", "ingest"]

FORMATS = ("auto", "classification", "coco", "manifest", "archive", "files")
MANIFEST_SUFFIXES = (".json", ".jsonl", ".csv")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_PEEK = 1 << 16  # bytes of a JSON file read to tell whether it is COCO


def default_dest(name: str) -> Path:
    """Where a dataset named ``name`` lives in the local home."""
    return config.home() / "datasets" / check_dataset_name(name)


def detect_format(src: str | os.PathLike[str], creds: dict[str, Any] | None = None) -> str:
    """Which source ``src`` is: one of ``FORMATS`` but ``auto``."""
    text = os.fspath(src)
    lower = text.lower().split("?", 1)[0].rstrip("/")
    if lower.endswith(MANIFEST_SUFFIXES):
        return "manifest"
    if lower.endswith(ARCHIVE_SUFFIXES) or text.startswith(("http://", "https://")):
        return "archive"
    if not text.startswith("s3://") and os.path.isfile(text):
        return "archive"  # an archive by its content (checked when it is read)
    return _folder_layout(FileSource(text, creds))


def _folder_layout(source: FileSource) -> str:
    keys = [k for k in source.list() if not is_hidden(k)]
    if _coco_annotations(source, keys):
        return "coco"
    images = [k for k in keys if os.path.splitext(k)[1].lower() in IMAGE_EXTENSIONS]
    if images and len(images) == len(keys):
        tops = {k.split("/")[0].lower() for k in images if "/" in k}
        depth = 3 if tops and tops <= set(SPLIT_NAMES) else 2
        if all(len(k.split("/")) >= depth for k in images):
            return "classification"
    return "files"


def _coco_annotations(source: FileSource, keys: list[str]) -> list[str]:
    """The COCO annotation files of a folder: JSON files at its top or in
    ``annotations/`` whose start names ``images``, ``annotations`` and ``categories``."""
    found = []
    for key in keys:
        parts = key.split("/")
        if not key.lower().endswith(".json") or not (
            len(parts) == 1 or (len(parts) == 2 and parts[0] == "annotations")
        ):
            continue
        head = source.storage.get_range(key, 0, _PEEK) if source.remote else _peek(source, key)
        if all(f'"{k}"'.encode() in head for k in ("images", "annotations", "categories")):
            found.append(key)
        elif len(head) < _PEEK:  # the whole file: the keys may come in any order
            try:
                data = json.loads(head)
            except ValueError:
                continue
            if isinstance(data, dict) and {"images", "annotations", "categories"} <= set(data):
                found.append(key)
    return found


def _peek(source: FileSource, key: str) -> bytes:
    with open(source.location(key), "rb") as f:
        return f.read(_PEEK)


def _coco_images(source: FileSource, annotations: list[str]) -> str:
    """The images folder of a COCO layout: ``images/`` if there is one, else the top
    folder holding the most images, else the folder itself."""
    counts: dict[str, int] = {}
    for key in source.list():
        parts = key.split("/")
        if len(parts) > 1 and os.path.splitext(key)[1].lower() in IMAGE_EXTENSIONS:
            counts[parts[0]] = counts.get(parts[0], 0) + 1
    folder = "images" if "images" in counts else max(counts, key=counts.__getitem__, default="")
    return source.location(folder) if folder else source.url


def ingest(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] | Dataset | None = None,
    name: str | None = None,
    format: str = "auto",
    link: bool = False,
    creds: dict[str, Any] | None = None,
    dest_creds: dict[str, Any] | None = None,
    num_workers: int = 0,
    checkpoint_interval: int = 0,
    resume: bool = False,
    ignore_errors: bool = False,
    progressbar: bool = True,
    summary: bool = True,
    overwrite: bool = False,
    skip_duplicate_urls: bool = False,
) -> Dataset:
    """Create (or grow) a dataset from any source; see the module's table for what is
    detected, ``format=`` to force it. ``creds`` are the source's (S3 keys,
    ``endpoint_url``, ``profile_name``); ``link=True`` links objects instead of copying
    them where the source allows (folders, manifests).

    Example::

        ds = tl.ingest("s3://ryft-public-sample-data/esRedditJson/")  # ~/.tensorlake/datasets/esredditjson
        ds = tl.ingest("https://host/trainingSet.tar.gz", name="lightning-train-data")
    """
    if format not in FORMATS:
        raise IngestError(f"format must be one of {FORMATS}, got {format!r}.")
    kind = detect_format(src, creds) if format == "auto" else format
    if dest is None:
        dest = default_dest(name if name is not None else name_from_source(src))
    elif name is not None:
        check_dataset_name(name)
    common: dict[str, Any] = {
        "dest_creds": dest_creds,
        "num_workers": num_workers,
        "checkpoint_interval": checkpoint_interval,
        "resume": resume,
        "ignore_errors": ignore_errors,
        "progressbar": progressbar,
        "summary": summary,
        "overwrite": overwrite,
    }
    if kind == "classification":
        return ingest_classification(src, dest, src_creds=creds, link=link, **common)
    if kind == "coco":
        source = FileSource(src, creds)
        annotations = _coco_annotations(source, source.list())
        if not annotations:
            raise IngestError(
                f"No COCO annotation file (with images, annotations and categories) at the "
                f"top of {source.url} or in its annotations/ folder."
            )
        files = [source.location(k) for k in annotations]
        images = _coco_images(source, annotations)
        return ingest_coco(images, files, dest, src_creds=creds, link=link, **common)
    raise IngestError(f"format={kind!r} sources are not available in this version yet.")
