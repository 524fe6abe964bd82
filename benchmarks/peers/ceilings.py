"""Ceilings: the same work with no library, what a dataset format can at best approach.

Variants (``variant`` in the args):
  ingest/pool         the per-item function (``_coco.item`` plus reading the JPEG) in a
                      bare ``multiprocessing.Pool(2)`` (fork), outputs discarded
  ingest/copy         read and copy every JPEG file (``shutil.copyfile``)
  ingest_s3/pool+put  the per-item function plus a ``put_object`` of the JPEG, Pool(2)
  read/decode1        PIL decode of every JPEG file, one process
  read/decode2        the same in ``multiprocessing.Pool(2)``, arrays discarded
  read/files          read every JPEG file's bytes, one process
  random_rows/decode1 read and decode the JPEG files of the same random rows
"""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.peers import _coco
from benchmarks.peers._protocol import NotAvailable, Window, main

_state: dict = {}


def _init(s3: dict | None) -> None:
    if s3:
        import boto3

        _state["s3"] = boto3.client(
            "s3",
            aws_access_key_id=s3["aws_access_key_id"],
            aws_secret_access_key=s3["aws_secret_access_key"],
            endpoint_url=s3["endpoint_url"],
            region_name=s3["aws_region"],
        )
        _state["bucket"], _state["prefix"] = s3["bucket"], s3["prefix"]


def _work(img_id: int) -> None:
    path, _, _, _ = _coco.item(_state["coco"], _state["image_dir"], img_id, _state["index_of"])
    data = Path(path).read_bytes()
    if "s3" in _state:
        key = f"{_state['prefix']}/{img_id}.jpg"
        _state["s3"].put_object(Bucket=_state["bucket"], Key=key, Body=data)


def _decode(path: str) -> None:
    np.asarray(Image.open(path))


def _files(a: dict) -> list[str]:
    coco = _coco.load(a["ann"])
    ids = _coco.image_ids(coco, a["n"])
    return [str(Path(a["image_dir"], coco.loadImgs(i)[0]["file_name"])) for i in ids]


def _pool(a: dict, s3: dict | None) -> dict:
    coco = _coco.load(a["ann"])
    img_ids = _coco.image_ids(coco, a["n"])
    # forked workers inherit the COCO index: no pickling, the cheapest start there is
    _state.update(coco=coco, image_dir=a["image_dir"], index_of=_coco.classes(coco)[1])
    chunk = max(1, len(img_ids) // (8 * a["workers"]))
    with Window() as w, multiprocessing.Pool(a["workers"], _init, (s3,)) as pool:
        for _ in pool.imap_unordered(_work, img_ids, chunksize=chunk):
            pass
    return {"value": len(img_ids) / w.seconds, "unit": "items/s"}


def ingest(a: dict) -> dict:
    if a["variant"] == "pool":
        return _pool(a, None)
    if a["variant"] == "copy":
        files = _files(a)
        out = Path(a["out"])
        out.mkdir(parents=True)
        with Window() as w:
            for i, f in enumerate(files):
                shutil.copyfile(f, out / f"{i}.jpg")
        return {"value": len(files) / w.seconds, "unit": "items/s"}
    raise NotAvailable(a["variant"])


def ingest_s3(a: dict) -> dict:
    bucket, _, prefix = a["out"][len("s3://") :].partition("/")
    return _pool(a, {**a["creds"], "bucket": bucket, "prefix": prefix})


def read(a: dict) -> dict:
    files = _files(a)
    with Window() as w:
        if a["variant"] == "decode1":
            for f in files:
                _decode(f)
        elif a["variant"] == "decode2":
            with multiprocessing.Pool(a["workers"]) as pool:
                for _ in pool.imap_unordered(_decode, files, chunksize=16):
                    pass
        elif a["variant"] == "files":
            for f in files:
                Path(f).read_bytes()
        else:
            raise NotAvailable(a["variant"])
    return {"value": len(files) / w.seconds, "unit": "images/s"}


def random_rows(a: dict) -> dict:
    files = _files(a)
    with Window() as w:
        for r in a["rows"]:
            _decode(files[r])
    return {"value": len(a["rows"]) / w.seconds, "unit": "rows/s"}


if __name__ == "__main__":
    main(
        {
            "ingest": ingest,
            "ingest_s3": ingest_s3,
            "read": read,
            "random_rows": random_rows,
            "loader": read,  # a loader pass decodes every file once: read/decode2
        }
    )
