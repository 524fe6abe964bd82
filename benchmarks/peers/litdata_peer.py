"""LitData (latest), run with its own venv's interpreter (it brings torch).

Ingest is ``litdata.optimize(fn, img_ids, output_dir, num_workers=2, chunk_bytes="64MB")``
where ``fn`` does the same per-item work and returns the row: the JPEG as a PIL file
(stored unchanged), labels, boxes, and the masks bit-packed with ``np.packbits`` (LitData
has no mask type; raw bool arrays would be 8x larger). It has no periodic commit; for the
crash scenario it runs with ``use_checkpoint=True`` and resumes by calling ``optimize``
again with the same arguments, as its docs describe. No linked tensors, no column reads.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np
from PIL import Image

from benchmarks.peers import _coco
from benchmarks.peers._protocol import NotAvailable, Skipped, Window, main


def _allow_plain_http() -> None:
    """LitData uploads through obstore, which refuses http:// endpoints unless told to
    (``allow_http``) and LitData has no option for it: the loopback S3 server is plain
    http. Done at import, so that LitData's spawned workers and uploaders do it too."""
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options["allow_http"] = "true"


_allow_plain_http()


def coco_item(img_id, coco_api, image_dir, index_of, log=None):
    path, categories, boxes, masks = _coco.item(coco_api, image_dir, img_id, index_of)
    row = {
        "image": Image.open(path),
        "categories": categories,
        "boxes": boxes,
        "masks": np.packbits(masks, axis=None),
        "mask_shape": np.array(masks.shape, dtype=np.int32),
    }
    _coco.note(log, img_id)
    return row


def _storage_options(creds: dict | None) -> dict:
    if not creds:
        return {}
    return {
        "endpoint_url": creds["endpoint_url"],
        "aws_access_key_id": creds["aws_access_key_id"],
        "aws_secret_access_key": creds["aws_secret_access_key"],
        "region_name": creds["aws_region"],
    }


def _optimize(a: dict, coco, img_ids, log=None, checkpoint=False) -> None:
    from litdata import optimize

    _, index_of = _coco.classes(coco)
    optimize(
        fn=functools.partial(
            coco_item,
            coco_api=coco,
            image_dir=a["image_dir"],
            index_of=index_of,
            log=log,
        ),
        inputs=img_ids,
        output_dir=a["out"],
        num_workers=a["workers"],
        chunk_bytes="64MB",
        use_checkpoint=checkpoint,
        mode=None if checkpoint else "overwrite",
        storage_options=_storage_options(a.get("creds")),
        verbose=False,
    )


def ingest(a: dict) -> dict:
    if a.get("link"):
        raise NotAvailable("no linked tensors")
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    with Window() as w:
        _optimize(a, coco, img_ids)
    out = {"value": len(img_ids) / w.seconds, "unit": "items/s"}
    if not a["out"].startswith("s3://"):
        out["bytes"] = _coco.tree_bytes(a["out"])
    return out


def _dataset(path: str):
    import torchvision.io  # noqa: F401 (imported lazily at the first decode: ~3 s here; imports stay out of every window)
    from litdata import StreamingDataset

    return StreamingDataset(path)


def read(a: dict) -> dict:
    ds = _dataset(a["path"])
    with Window() as w:
        count = 0
        for row in ds:  # every field is deserialized; the JPEG decoded to a tensor
            row["image"]
            count += 1
    return {"value": count / w.seconds, "unit": "images/s"}


def random_rows(a: dict) -> dict:
    ds = _dataset(a["path"])
    rows = a["rows"]
    with Window() as w:
        for r in rows:
            ds[r]
    return {"value": len(rows) / w.seconds, "unit": "rows/s"}


def boxes(a: dict) -> dict:
    raise NotAvailable("no column reads (a row at a time, every field)")


def _as_list(batch):
    return batch


def loader(a: dict) -> dict:
    if importlib.util.find_spec("torch") is None:
        raise Skipped("torch is not installed in this environment")
    from litdata import StreamingDataLoader

    ds = _dataset(a["path"])
    with Window() as w:
        count = 0
        for batch in StreamingDataLoader(
            ds, batch_size=32, num_workers=a["workers"], collate_fn=_as_list
        ):
            count += len(batch)
    return {"value": count / w.seconds, "unit": "images/s"}


def crash_victim(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    _optimize(a, coco, _coco.image_ids(coco, a["n"]), a["log"], checkpoint=True)
    return {"status": "failed", "reason": "finished before it was killed"}


def crash_recover(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    _, index_of = _coco.classes(coco)
    with Window() as w:
        _optimize(a, coco, img_ids, a["log"], checkpoint=True)
    ds = _dataset(a["out"])
    problem = ""
    if len(ds) != len(img_ids):
        problem = f"{len(ds)} rows, expected {len(img_ids)}"
    else:  # rows may come in another order: compare the boxes of every item as a multiset
        got = sorted(np.asarray(ds[i]["boxes"]).tobytes() for i in range(len(ds)))
        want = sorted(_coco.item(coco, a["image_dir"], j, index_of)[2].tobytes() for j in img_ids)
        if got != want:
            problem = "rows differ from the input (items lost or duplicated)"
    return {
        "value": w.seconds,
        "unit": "s",
        "resumed_from": None,
        "open_calls": 1,
        "steps": "optimize(..., use_checkpoint=True) again",
        "consistent": not problem,
        "problem": problem,
    }


if __name__ == "__main__":
    # LitData stages chunks in a cache folder (default ~/.lightning): keep it in the work dir
    scratch = os.environ.get("TENSORLAKE_BENCH_SCRATCH")
    if scratch:
        os.environ.setdefault("DATA_OPTIMIZER_CACHE_FOLDER", os.path.join(scratch, "chunks"))
        os.environ.setdefault("DATA_OPTIMIZER_DATA_CACHE_FOLDER", os.path.join(scratch, "data"))
    main(
        {
            "ingest": ingest,
            "ingest_s3": ingest,
            "linked": ingest,
            "read": read,
            "random_rows": random_rows,
            "boxes": boxes,
            "loader": loader,
            "crash_victim": crash_victim,
            "crash_recover": crash_recover,
        }
    )
