"""COCO annotation files: read (local, ``s3://`` or ``http(s)://``), checked and merged.

Every inconsistency is an ``IngestError`` here, in the parent, before anything is written:
files that are not COCO, unknown image or category ids, bad boxes, segmentations or
keypoints. Several files (instances, person_keypoints ...) merge by id: an annotation in
two files is one object with the keys of both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from tensorlake.errors import IngestError, KeyNotFoundError, StorageError
from tensorlake.ingestion.run import IngestReport
from tensorlake.storage import from_url

__all__ = [
    "NOT_STORED",
    "CocoImage",
    "CocoObject",
    "MergedAnnotations",
    "read_annotation_file",
    "some_ids",
]

_REQUIRED = ("images", "annotations", "categories")
NOT_STORED = ("id", "num_keypoints")  # annotation keys no tensor holds: ignored anyway
_SHOWN = 5  # offending ids named in an error


@dataclass(frozen=True, slots=True)
class CocoObject:
    """One annotation, checked: what its row needs of it."""

    id: Any  # the annotation's id, for messages
    label: int  # index into the category-id order
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: int
    segmentation: Any  # polygons (list of lists), an RLE dict, or None
    keypoints: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class CocoImage:
    """One item: an image and its objects (``str``: its file, for the report)."""

    id: int
    file_name: str
    height: int
    width: int
    objects: tuple[CocoObject, ...]
    ahead: tuple[str, ...] = ()  # the files read next, for a remote source's prefetch

    def __str__(self) -> str:
        return self.file_name

    def __repr__(self) -> str:
        return f"COCO image {self.id} ({self.file_name})"


def read_annotation_file(location: str, creds: dict[str, Any] | None) -> dict[str, Any]:
    try:
        if "://" in location and not location.startswith("file://"):
            parent, _, name = location.rstrip("/").rpartition("/")
            scheme_creds = creds if location.startswith("s3://") else None
            raw = from_url(parent, creds=scheme_creds, read_only=True).get(name)
        else:
            with open(os.path.expanduser(location.removeprefix("file://")), "rb") as f:
                raw = f.read()
    except (KeyNotFoundError, FileNotFoundError, IsADirectoryError) as err:
        raise IngestError(f"The annotation file {location} does not exist.") from err
    except (StorageError, OSError, ValueError) as err:
        raise IngestError(f"Cannot read the annotation file {location}: {err}") from err
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise IngestError(
            f"The annotation file {location} is not JSON ({err}); expected a COCO file."
        ) from err
    if not isinstance(data, dict) or any(not isinstance(data.get(k), list) for k in _REQUIRED):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise IngestError(
            f"{location} is not a COCO annotation file: expected lists 'images', "
            f"'annotations' and 'categories', found {found}."
        )
    return data


class MergedAnnotations:
    """The annotation files merged: images by id, categories by id, annotations by id
    (an annotation in several files, e.g. instances and person_keypoints, is one
    object with the keys of both; a key given differently is an error)."""

    def __init__(self) -> None:
        self.images: dict[int, dict[str, Any]] = {}
        self.categories: dict[int, dict[str, Any]] = {}
        self.annotations: list[dict[str, Any]] = []
        self._by_id: dict[Any, dict[str, Any]] = {}
        self._keys: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self._keys

    def add(self, location: str, data: dict[str, Any]) -> None:
        for img in data["images"]:
            missing = [k for k in ("id", "file_name", "height", "width") if k not in img]
            if missing:
                raise IngestError(f"{location}: an image has no {missing}: {_short(img)}.")
            if not isinstance(img["id"], int) or isinstance(img["id"], bool):
                raise IngestError(f"{location}: image ids are integers, got {_short(img)}.")
            _merge(self.images, img["id"], img, location, "image")
        for cat in data["categories"]:
            if "id" not in cat or "name" not in cat:
                raise IngestError(f"{location}: a category has no 'id' or 'name': {_short(cat)}.")
            _merge(self.categories, cat["id"], cat, location, "category")
        earlier = dict(self._by_id)
        for ann in data["annotations"]:
            for key in ("image_id", "category_id", "bbox"):
                if key not in ann:
                    raise IngestError(f"{location}: an annotation has no '{key}': {_short(ann)}.")
            self._keys.update(ann)
            if "id" in ann and ann["id"] in earlier:
                _merge(self._by_id, ann["id"], ann, location, "annotation")
                continue
            ann = dict(ann)
            self.annotations.append(ann)
            if "id" in ann:
                self._by_id[ann["id"]] = ann

    def items(
        self, names: dict[str, str], report: IngestReport
    ) -> tuple[list[CocoImage], list[str], list[list[int]], str]:
        """Every image with its checked objects, in image-id order; the keypoint names,
        the skeleton (0-based) and the keypoints' dtype."""
        order = sorted(self.categories)
        label = {cid: i for i, cid in enumerate(order)}
        kp_names, skeleton = self._keypoint_schema()
        objects: dict[int, list[CocoObject]] = {i: [] for i in self.images}
        bad: dict[str, list[Any]] = {}
        outside = short = 0
        fractional = False
        for ann in self.annotations:
            img = self.images.get(ann["image_id"])
            if img is None:
                bad.setdefault("image ids not in 'images'", []).append(ann["image_id"])
                continue
            if ann["category_id"] not in label:
                bad.setdefault("category ids not in 'categories'", []).append(ann["category_id"])
                continue
            bbox = ann["bbox"]
            if not _numbers(bbox, 4):
                bad.setdefault("bboxes that are not 4 numbers", []).append(ann.get("id"))
                continue
            segm, problem, out, dropped = _segmentation(ann.get("segmentation"), img)
            if problem:
                bad.setdefault(problem, []).append(ann.get("id"))
                continue
            outside += out
            short += dropped
            kps = ann.get("keypoints")
            if kps is not None:
                if not _numbers(kps, len(kp_names) * 3 if kp_names else None) or len(kps) % 3:
                    bad.setdefault(
                        f"keypoints that are not {3 * len(kp_names) or '3K'} numbers", []
                    ).append(ann.get("id"))
                    continue
                fractional = fractional or any(float(v) != int(v) for v in kps)
            objects[ann["image_id"]].append(
                CocoObject(
                    ann.get("id"),
                    label[ann["category_id"]],
                    (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])),
                    float(ann.get("area", 0.0)),
                    int(ann.get("iscrowd", 0)),
                    segm,
                    None if kps is None else tuple(kps),
                )
            )
        if bad:
            what = "; ".join(
                f"{len(ids)} annotations with {why} ({some_ids(ids)})" for why, ids in bad.items()
            )
            raise IngestError(f"The COCO annotations are inconsistent: {what}.")
        k = {len(o.keypoints) for objs in objects.values() for o in objs if o.keypoints}
        if len(k) > 1:
            raise IngestError(
                f"Objects have different numbers of keypoint values ({sorted(k)}); a "
                "keypoints tensor holds the same K keypoints for every object."
            )
        if not kp_names and k:
            kp_names = [f"keypoint_{i}" for i in range(k.pop() // 3)]
        if outside and "masks" in names:
            report.notes.append(
                f"{outside} polygons reach outside their image; their masks are clipped "
                "to it (as pycocotools does)."
            )
        if short and "masks" in names:
            report.notes.append(f"{short} polygons of fewer than 3 points were dropped.")
        images = [
            CocoImage(
                i, str(img["file_name"]), int(img["height"]), int(img["width"]), tuple(objects[i])
            )
            for i, img in sorted(self.images.items())
        ]
        return images, kp_names, skeleton, "float32" if fractional else "int32"

    def _keypoint_schema(self) -> tuple[list[str], list[list[int]]]:
        schemas = {
            (tuple(c["keypoints"]), tuple(map(tuple, c.get("skeleton") or ())))
            for c in self.categories.values()
            if c.get("keypoints")
        }
        if len(schemas) > 1:
            raise IngestError(
                "Categories name different keypoints; a keypoints tensor holds one set "
                "(ingest each kind of object separately)."
            )
        if not schemas:
            return [], []
        names, skeleton = schemas.pop()
        if any(not 1 <= i <= len(names) for pair in skeleton for i in pair):
            raise IngestError(f"A keypoint skeleton names keypoints outside 1..{len(names)}.")
        return list(names), [[a - 1, b - 1] for a, b in skeleton]  # COCO's are 1-based

    def category(self, index: int) -> dict[str, Any]:
        return self.categories[sorted(self.categories)[index]]


def _merge(
    into: dict[Any, dict[str, Any]], key: Any, entry: dict[str, Any], where: str, what: str
) -> None:
    old = into.setdefault(key, entry if what == "annotation" else dict(entry))
    if old is entry:
        return
    for k, v in entry.items():
        if k in old and old[k] != v:
            raise IngestError(
                f"{where}: {what} {key!r} has {k}={_short(v)}, but an earlier annotation "
                f"file gives {_short(old[k])}."
            )
        old[k] = v


def _segmentation(segm: Any, img: dict[str, Any]) -> tuple[Any, str, int, int]:
    """(the segmentation to rasterise, what is wrong with it or "", polygons reaching
    outside the image, polygons dropped for having fewer than 3 points)."""
    if segm is None:
        return None, "", 0, 0
    h, w = int(img["height"]), int(img["width"])
    if isinstance(segm, dict):
        counts = segm.get("counts")
        if list(segm.get("size") or ()) != [h, w]:
            return None, "RLE sizes other than their image's", 0, 0
        if isinstance(counts, list):  # uncompressed: runs that must cover the image
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
                return None, "RLE counts that do not cover their image", 0, 0
        elif not isinstance(counts, str):
            return None, "RLE counts that are not a string or a list", 0, 0
        return segm, "", 0, 0
    if not isinstance(segm, list) or not all(isinstance(p, list) for p in segm):
        return None, "segmentations that are not polygons or RLE", 0, 0
    if not all(_numbers(p, None) and len(p) % 2 == 0 for p in segm):
        return None, "polygons that are not an even number of coordinates", 0, 0
    kept = [p for p in segm if len(p) >= 6]
    outside = sum(
        1
        for p in kept
        if min(p[0::2]) < 0 or max(p[0::2]) > w or min(p[1::2]) < 0 or max(p[1::2]) > h
    )
    return kept, "", outside, len(segm) - len(kept)


def _numbers(values: Any, n: int | None) -> bool:
    return (
        isinstance(values, (list, tuple))
        and (n is None or len(values) == n)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def some_ids(ids: list[Any]) -> str:
    shown = ", ".join(map(repr, ids[:_SHOWN]))
    return f"e.g. {shown}" + (", ..." if len(ids) > _SHOWN else "")


# -- the tensors ----------------------------------------------------------------------
