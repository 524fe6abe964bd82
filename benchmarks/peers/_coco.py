"""The per-item work of the seed COCO workflow, the same for every system.

``item`` is what each system's transform does for one image id: the JPEG's path (the
bytes go in unchanged), class indices, LTWH boxes and one pycocotools mask per object.
``note`` records finished items for the crash scenario.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO


def load(ann_path: str) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
        return COCO(ann_path)


def classes(coco: COCO) -> tuple[list[str], dict[int, int]]:
    cats = coco.loadCats(coco.getCatIds())
    return [c["name"] for c in cats], {c["id"]: i for i, c in enumerate(cats)}


def image_ids(coco: COCO, n: int) -> list[int]:
    return sorted(coco.getImgIds())[:n]


def item(coco: COCO, image_dir: str, img_id: int, index_of: dict[int, int]):
    """-> (path, categories uint32 (N,), boxes float32 (N, 4), masks bool (H, W, N))."""
    info = coco.loadImgs(img_id)[0]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
    masks = np.zeros((info["height"], info["width"], len(anns)), dtype=bool)
    for i, ann in enumerate(anns):
        masks[:, :, i] = coco.annToMask(ann)
    categories = np.array([index_of[a["category_id"]] for a in anns], dtype=np.uint32)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
    return os.path.join(image_dir, info["file_name"]), categories, boxes, masks


def note(log_dir: str | None, img_id: int) -> None:
    """Crash scenario: append ``img_id`` to this process's log in ``log_dir`` (the harness
    counts the lines to kill at ~60% and to count the items done twice)."""
    if log_dir:
        with open(os.path.join(log_dir, f"{os.getpid()}.log"), "a") as f:
            f.write(f"{img_id}\n")


def tree_bytes(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def check_rows(coco: COCO, image_dir: str, img_ids: list[int], images, boxes) -> str:
    """'' if row i holds image ``img_ids[i]`` (same bytes) and its boxes, else what differs."""
    if len(images) != len(img_ids) or len(boxes) != len(img_ids):
        return f"{len(images)} images and {len(boxes)} boxes rows, expected {len(img_ids)}"
    for i, img_id in enumerate(img_ids):
        info = coco.loadImgs(img_id)[0]
        if images[i] != Path(image_dir, info["file_name"]).read_bytes():
            return f"row {i}: image bytes differ from {info['file_name']}"
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        want = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        if not np.array_equal(np.asarray(boxes[i]).reshape(-1, 4), want):
            return f"row {i}: boxes differ"
    return ""


def recovery_result(
    coco: COCO, a: dict, img_ids: list[int], ds, seconds: float, resumed_from: int, steps: list[str]
) -> dict:
    """The crash scenario's result: the recovered dataset (Deep Lake 3 and tensorlake share
    this API) checked against the source, and what it took to get there."""
    lengths = {name: len(t) for name, t in ds.tensors.items()}
    problem = check_rows(
        coco,
        a["image_dir"],
        img_ids,
        [ds.images[i].tobytes() for i in range(len(ds.images))],
        ds.boxes.numpy(aslist=True),
    )
    if len(set(lengths.values())) != 1:
        problem = problem or f"tensor lengths differ: {lengths}"
    return {
        "value": seconds,
        "unit": "s",
        "resumed_from": resumed_from,
        "open_calls": len(steps),
        "steps": " -> ".join(steps),
        "consistent": not problem,
        "problem": problem,
    }
