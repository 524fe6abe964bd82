"""What a folder (local or an S3 prefix) holds, for ingesting it by its layout.

In this order: a COCO layout (a JSON with ``images``, ``annotations`` and ``categories``
at the top or in ``annotations/``, and the folder holding the images it names), a
classification folder (every file an image in a class folder, hidden files aside), or
else any files. ``tl.ingest`` and ``tl.ingest_archive`` both decide with this.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tensorlake.errors import IngestError
from tensorlake.ingestion.classification import scan
from tensorlake.ingestion.files import FileSource, is_hidden
from tensorlake.ingestion.run import IngestReport

__all__ = ["LAYOUTS", "CocoLayout", "choose_layout", "find_coco", "is_classification"]

LAYOUTS = ("auto", "classification", "coco", "files")
PEEK = 1 << 16  # bytes of a JSON file read to tell whether it is COCO
_FILE_NAME = re.compile(rb'"file_name"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class CocoLayout:
    """Where a COCO layout's images and annotation files are (paths or URLs)."""

    images: str
    annotations: list[str]


def choose_layout(source: FileSource, layout: str = "auto") -> tuple[str, CocoLayout | None]:
    """The layout to ingest ``source`` as (``layout`` forces one: an ``IngestError``
    when the folder does not have it), and for COCO where its parts are."""
    if layout not in LAYOUTS:
        raise IngestError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}.")
    keys = source.list()
    if layout in ("auto", "coco"):
        coco = find_coco(source, keys)
        if coco is not None:
            return "coco", coco
        if layout == "coco":
            raise IngestError(
                f"layout='coco': {source.url} holds no COCO annotations JSON (with images, "
                "annotations and categories) beside a folder of its images."
            )
    if layout in ("auto", "classification"):
        if is_classification(source):
            return "classification", None
        if layout == "classification":
            raise IngestError(
                f"layout='classification': {source.url} is not <class>/<image> or "
                "<split>/<class>/<image> (some files are not images in class folders)."
            )
    return "files", None


def is_classification(source: FileSource) -> bool:
    """Every file (hidden ones aside) is an image in a class folder."""
    report = IngestReport(source.url)
    found = scan(source, report)
    return bool(found.images) and set(report.skipped) <= {"hidden files"}


def find_coco(source: FileSource, keys: list[str] | None = None) -> CocoLayout | None:
    """COCO annotation files at the top or in ``annotations/`` (told by their first
    bytes: a file is read whole only by the ingest), and the folder holding the first
    image they name."""
    keys = source.list() if keys is None else keys
    annotations, first = [], None
    for key in keys:
        parts = key.split("/")
        at_top = len(parts) == 1 or (len(parts) == 2 and parts[0] == "annotations")
        if not at_top or not key.lower().endswith(".json") or is_hidden(key):
            continue
        head = source.read_head(key, PEEK)
        if not _is_coco(head):
            continue
        annotations.append(source.location(key))
        match = _FILE_NAME.search(head)
        if first is None and match:
            first = json.loads(b'"' + match.group(1) + b'"')
    if not annotations or not isinstance(first, str):
        return None
    suffix = first.strip("/")
    holders = sorted(
        k[: -len(suffix)].rstrip("/") for k in keys if k == suffix or k.endswith("/" + suffix)
    )
    if not holders:
        return None
    images = source.location(holders[0]) if holders[0] else source.url
    return CocoLayout(images, annotations)


def _is_coco(head: bytes) -> bool:
    if all(f'"{k}"'.encode() in head for k in ("images", "annotations", "categories")):
        return True
    if len(head) < PEEK:  # the whole file: its keys may come in any order
        try:
            data = json.loads(head)
        except ValueError:
            return False
        return isinstance(data, dict) and all(
            isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
        )
    return False
