"""tensorlake (this checkout), run with the project's own interpreter.

Ingest is the seed COCO workflow of ``examples/coco_demo.py``: a ``@tl.compute``
transform, two worker processes, a checkpoint every 20% of the input.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import tensorlake as tl
from benchmarks.peers import _coco
from benchmarks.peers._protocol import NotAvailable, Skipped, Window, main


@tl.compute
def coco_to_tl(img_id, sample_out, coco_api, image_dir, index_of, link=False, log=None):
    path, categories, boxes, masks = _coco.item(coco_api, image_dir, img_id, index_of)
    sample_out.append(
        {
            "images": tl.link(path) if link else tl.read(path),
            "categories": categories,
            "boxes": boxes,
            "masks": masks,
        }
    )
    _coco.note(log, img_id)


def _create(ds: tl.Dataset, names: list[str], link: str | None) -> None:
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


def _probe_links(image: str, verify: bool) -> None:
    """Linked tensors may not exist yet: say n/a instead of failing mid-run."""
    try:
        ds = tl.empty("mem://link-probe", overwrite=True)
        ds.create_tensor("images", htype="link[image]", sample_compression="jpg", verify=verify)
        ds.images.append(tl.link(image))
        ds.images[0].numpy()
    except (AttributeError, NotImplementedError, ValueError, TypeError, tl.TensorlakeError) as err:
        raise NotAvailable(f"not implemented ({type(err).__name__}: {err})") from err


def _ingest(a: dict, coco, img_ids: list[int], log: str | None = None) -> tuple:
    names, index_of = _coco.classes(coco)
    with Window() as w:
        ds = tl.empty(a["out"], creds=a.get("creds"), overwrite=True)
        _create(ds, names, a.get("link"))
        coco_to_tl(
            coco_api=coco,
            image_dir=a["image_dir"],
            index_of=index_of,
            link=bool(a.get("link")),
            log=log,
        ).eval(
            img_ids,
            ds,
            num_workers=a["workers"],
            checkpoint_interval=a["interval"],
            progressbar=False,
        )
        rows = len(ds)
        ds.close()
    return w, rows


def ingest(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    if a.get("link"):
        first = coco.loadImgs(img_ids[0])[0]["file_name"]
        _probe_links(str(Path(a["image_dir"], first)), a["link"] == "verify")
    w, rows = _ingest(a, coco, img_ids)
    out = {"value": len(img_ids) / w.seconds, "unit": "items/s", "rows": rows}
    if not a["out"].startswith("s3://"):
        out["bytes"] = _coco.tree_bytes(a["out"])
    return out


def read(a: dict) -> dict:
    ds = tl.load(a["path"], read_only=True)
    n, batch = len(ds.images), a.get("batch", 32)
    with Window() as w:
        for i in range(0, n, batch):
            ds.images[i : i + batch].numpy()
    return {"value": n / w.seconds, "unit": "images/s"}


def random_rows(a: dict) -> dict:
    ds = tl.load(a["path"], read_only=True)
    rows = a["rows"]
    with Window() as w:
        for r in rows:
            ds.images[r].numpy()
            ds.boxes[r].numpy()
            ds.categories[r].numpy()
    return {"value": len(rows) / w.seconds, "unit": "rows/s"}


def boxes(a: dict) -> dict:
    ds = tl.load(a["path"], read_only=True)
    with Window() as w:
        out = ds.boxes.numpy(aslist=True)
    return {"value": len(out) / w.seconds, "unit": "samples/s", "objects": sum(map(len, out))}


def loader(a: dict) -> dict:
    if importlib.util.find_spec("torch") is None:
        raise Skipped("torch is not installed in this environment")
    import torch  # noqa: F401  (a training script has imported it already: not timed)

    ds = tl.load(a["path"], read_only=True)
    with Window() as w:
        count = 0
        for batch in ds.pytorch(
            tensors=["images", "categories", "boxes"],
            batch_size=32,
            num_workers=a["workers"],
            collate_fn=list,
        ):
            count += len(batch)
    return {"value": count / w.seconds, "unit": "images/s"}


def crash_victim(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    _ingest(a, coco, _coco.image_ids(coco, a["n"]), a["log"])
    return {"status": "failed", "reason": "finished before it was killed"}


def crash_inspect(a: dict) -> dict:
    """The last checkpoint the dataset holds after the kill (read-only; nothing changes)."""
    ds = tl.load(a["out"], read_only=True)
    done = [c["samples_processed"] for c in ds.commits if "samples_processed" in c]
    return {"last_checkpoint": max(done, default=0)}


def crash_recover(a: dict) -> dict:
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    _, index_of = _coco.classes(coco)
    with Window() as w:
        ds = tl.load(a["out"], reset=True)  # the one call that gives a consistent dataset
        resumed_from = next(
            (c["samples_processed"] for c in ds.commits if "samples_processed" in c), 0
        )
        coco_to_tl(coco_api=coco, image_dir=a["image_dir"], index_of=index_of, log=a["log"]).eval(
            img_ids,
            ds,
            num_workers=a["workers"],
            checkpoint_interval=a["interval"],
            progressbar=False,
            resume=True,
        )
        ds.close()
    ds = tl.load(a["out"], read_only=True)
    steps = ["tl.load(path, reset=True)"]
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
