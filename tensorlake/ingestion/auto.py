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

import os
from pathlib import Path
from typing import Any

from tensorlake import config
from tensorlake.api.dataset import Dataset
from tensorlake.errors import IngestError
from tensorlake.ingestion.archive import ingest_archive
from tensorlake.ingestion.classification import ingest_classification
from tensorlake.ingestion.coco import ingest_coco
from tensorlake.ingestion.files import FileSource
from tensorlake.ingestion.generic import ingest_files
from tensorlake.ingestion.layout import choose_layout
from tensorlake.ingestion.manifest import ingest_manifest
from tensorlake.ingestion.naming import check_dataset_name, name_from_source

__all__ = ["FORMATS", "default_dest", "detect_format", "ingest"]

FORMATS = ("auto", "classification", "coco", "manifest", "archive", "files")
MANIFEST_SUFFIXES = (".json", ".jsonl", ".csv")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


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
    return choose_layout(FileSource(text, creds))[0]


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
        _, coco = choose_layout(FileSource(src, creds), "coco")
        assert coco is not None
        return ingest_coco(
            coco.images, coco.annotations, dest, src_creds=creds, link=link, **common
        )
    if kind == "archive":
        return ingest_archive(src, dest, src_creds=creds, link=link, **common)
    if kind == "manifest":
        return ingest_manifest(
            src,
            dest,
            link=link,
            skip_duplicate_urls=skip_duplicate_urls,
            src_creds=creds,
            **common,
        )
    if kind == "files":
        if link:
            raise IngestError("link=True is for images: a files dataset stores the bytes.")
        return ingest_files(src, dest, src_creds=creds, **common)
    raise AssertionError(kind)  # FORMATS lists no other
