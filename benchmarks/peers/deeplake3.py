"""Deep Lake 3.9.52, run with its own venv's interpreter (numpy<2, torch).

The seed workflow written the way Deep Lake 3's docs write it: ``@deeplake.compute``,
``eval(..., num_workers=2, scheduler="processed", checkpoint_interval=N)``. After a
crash: ``deeplake.load(path, reset=True)``, then (when HEAD still holds the killed
window's rows) ``ds.reset()``, then the transform again on the items past ``len(ds)``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

os.environ.setdefault("BUGGER_OFF", "true")  # humbug crash reporting
warnings.filterwarnings("ignore", message="A newer version of deeplake")

import deeplake  # noqa: E402

from benchmarks.peers import _coco  # noqa: E402
from benchmarks.peers._protocol import NotAvailable, Skipped, Window, main  # noqa: E402


@deeplake.compute
def coco_to_dl(img_id, sample_out, coco_api, image_dir, index_of, link=False, log=None):
    path, categories, boxes, masks = _coco.item(coco_api, image_dir, img_id, index_of)
    sample_out.append(
        {
            "images": deeplake.link(path) if link else deeplake.read(path),
            "categories": categories,
            "boxes": boxes,
            "masks": masks,
        }
    )
    _coco.note(log, img_id)


def _create(ds, names: list[str], link: str | None) -> None:
    with ds:
        if link:
            ds.create_tensor(
                "images", htype="link[image]", sample_compression="jpg", verify=link == "verify"
            )
        else:
            ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("categories", htype="class_label", class_names=names)
        ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        ds.create_tensor("masks", htype="binary_mask", sample_compression="lz4")


def _run(a: dict, coco, img_ids: list[int], ds, log=None) -> None:
    _, index_of = _coco.classes(coco)
    coco_to_dl(
        coco_api=coco,
        image_dir=a["image_dir"],
        index_of=index_of,
        link=bool(a.get("link")),
        log=log,
    ).eval(
        img_ids,
        ds,
        num_workers=a["workers"],
        scheduler="processed",
        checkpoint_interval=a["interval"] if a["interval"] <= len(img_ids) else 0,
        progressbar=False,
        # labels arrive as class indices, not names: skip the pass that maps new names
        disable_label_sync=True,
    )


def _ingest(a: dict, coco, img_ids, log=None):
    names, _ = _coco.classes(coco)
    with Window() as w:
        ds = deeplake.empty(a["out"], creds=a.get("creds"), overwrite=True, verbose=False)
        _create(ds, names, a.get("link"))
        _run(a, coco, img_ids, ds, log)
        ds.flush()
        rows = len(ds)
    return w, rows


def ingest(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    w, rows = _ingest(a, coco, img_ids)
    out = {"value": len(img_ids) / w.seconds, "unit": "items/s", "rows": rows}
    if not a["out"].startswith("s3://"):
        out["bytes"] = _coco.tree_bytes(a["out"])
    return out


def _open(path: str):
    return deeplake.load(path, read_only=True, verbose=False)


def read(a: dict) -> dict:
    ds = _open(a["path"])
    n, batch = len(ds.images), a.get("batch", 32)
    with Window() as w:
        for i in range(0, n, batch):
            ds.images[i : i + batch].numpy()
    return {"value": n / w.seconds, "unit": "images/s"}


def random_rows(a: dict) -> dict:
    ds = _open(a["path"])
    rows = a["rows"]
    with Window() as w:
        for r in rows:
            ds.images[r].numpy()
            ds.boxes[r].numpy()
            ds.categories[r].numpy()
    return {"value": len(rows) / w.seconds, "unit": "rows/s"}


def boxes(a: dict) -> dict:
    ds = _open(a["path"])
    with Window() as w:
        out = ds.boxes.numpy(aslist=True)
    return {"value": len(out) / w.seconds, "unit": "samples/s", "objects": sum(map(len, out))}


def _as_list(batch):
    return batch


def loader(a: dict) -> dict:
    if importlib.util.find_spec("torch") is None:
        raise Skipped("torch is not installed in this environment")
    ds = _open(a["path"])
    if not hasattr(ds, "pytorch"):
        raise NotAvailable("no ds.pytorch()")
    with Window() as w:
        count = 0
        for batch in ds.pytorch(
            tensors=["images", "categories", "boxes"],
            batch_size=32,
            num_workers=a["workers"],
            collate_fn=_as_list,
            decode_method={"images": "numpy"},
            progressbar=False,
        ):
            count += len(batch)
    return {"value": count / w.seconds, "unit": "images/s"}


def crash_victim(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    _ingest(a, coco, _coco.image_ids(coco, a["n"]), a["log"])
    return {"status": "failed", "reason": "finished before it was killed"}


def crash_inspect(a: dict) -> dict:
    """The last checkpoint stored when the process was killed (read-only)."""
    try:
        ds = deeplake.load(a["out"], read_only=True, verbose=False)
    except Exception as err:  # a HEAD the kill left unreadable
        return {"last_checkpoint": None, "inspect_error": f"{type(err).__name__}: {err}"}
    node, done = ds.version_state["commit_node"], 0
    while node is not None:
        done = max(done, getattr(node, "total_samples_processed", 0) or 0)
        node = node.parent
    return {"last_checkpoint": done}


def crash_recover(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    with Window() as w:
        steps = ["deeplake.load(path, reset=True)"]
        ds = deeplake.load(a["out"], reset=True, verbose=False)
        if ds.read_only:  # the dead writer's lock stays valid for 300 s: it opened read-only
            ds = deeplake.load(a["out"], reset=True, verbose=False, lock_enabled=False)
            steps.append("read-only (the dead writer's lock): again with lock_enabled=False")
        if ds.has_head_changes:  # the killed window's rows are still there: drop them
            ds.reset(force=True)
            steps.append("ds.reset(force=True)")
        resumed_from = len(ds)
        if resumed_from < len(img_ids):
            _run(a, coco, img_ids[resumed_from:], ds, a["log"])
        ds.flush()
    ds = _open(a["out"])
    return _coco.recovery_result(coco, a, img_ids, ds, w.seconds, resumed_from, steps)


if __name__ == "__main__":
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
            "crash_inspect": crash_inspect,
            "crash_recover": crash_recover,
        }
    )
