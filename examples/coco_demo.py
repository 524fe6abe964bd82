"""Demo: the seed COCO workflow, ingested in parallel with checkpoints, then read back.

    python examples/coco_demo.py [--images 200] [--workers 2] [--out ./demo-dataset]

Generates synthetic COCO data (JPEGs + instances.json), then runs a ``@tl.compute``
transform over the image ids with worker processes and a checkpoint every 20% of the
input: JPEGs stored unchanged (pass-through), class labels, boxes and bit-packed masks
from pycocotools. Then it reopens the dataset read-only, checks every image against its
source file, shows the checkpoints in the log and prints a summary.

After a crash, ``tl.load(path, reset=True)`` gives the last checkpoint, and
``coco_to_tl(...).eval(img_ids, ds, ..., resume=True)`` finishes the job.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_coco import generate

import tensorlake as tl


@tl.compute
def coco_to_tl(img_id, sample_out, coco_api, image_dir, index_of):
    """One COCO image and its annotations -> one row."""
    info = coco_api.loadImgs(img_id)[0]
    anns = coco_api.loadAnns(coco_api.getAnnIds(imgIds=img_id))
    masks = np.zeros((info["height"], info["width"], len(anns)), dtype=bool)
    for i, ann in enumerate(anns):
        masks[:, :, i] = coco_api.annToMask(ann)
    sample_out.append(
        {
            "images": tl.read(Path(image_dir) / info["file_name"]),
            "categories": np.array([index_of[a["category_id"]] for a in anns], dtype=np.uint32),
            "boxes": np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4),
            "masks": masks,
        }
    )


def ingest(coco: COCO, image_dir: Path, ds: tl.Dataset, workers: int) -> int:
    cats = coco.loadCats(coco.getCatIds())
    names = [c["name"] for c in cats]
    index_of = {c["id"]: i for i, c in enumerate(cats)}
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("categories", htype="class_label", class_names=names)
        ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        ds.create_tensor("masks", htype="binary_mask", sample_compression="lz4")
    img_ids = sorted(coco.getImgIds())
    coco_to_tl(coco_api=coco, image_dir=str(image_dir), index_of=index_of).eval(
        img_ids, ds, num_workers=workers, checkpoint_interval=max(1, len(img_ids) // 5)
    )
    return len(ds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="dataset path (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "coco"
        ann_path = generate(source, args.images)
        coco = COCO(str(ann_path))
        path = args.out or str(Path(tmp) / "dataset")

        start = time.perf_counter()
        ds = tl.empty(path, overwrite=True)
        rows = ingest(coco, source / "images", ds, args.workers)
        print(
            f"ingested {rows} images with {args.workers} workers in "
            f"{time.perf_counter() - start:.2f}s; checkpoints:"
        )
        for c in ds.commits:
            if "samples_processed" in c:
                print(f"  {c['commit'][:12]}  {c['message']}")
        ds.close()

        ds = tl.load(path, read_only=True)
        start = time.perf_counter()
        for img_id, row in zip(sorted(coco.getImgIds()), ds):
            expected = (source / "images" / coco.loadImgs(img_id)[0]["file_name"]).read_bytes()
            assert row.images.tobytes() == expected, "image bytes changed"
        images = ds.images[:16].numpy()
        print(
            f"read back and verified {len(ds)} rows in {time.perf_counter() - start:.2f}s; "
            f"first 16 images decoded to {images.shape} {images.dtype}"
        )
        print(
            f"row 0: {len(ds.boxes[0].numpy())} objects, labels {ds.categories[0].data()['text']}"
        )
        ds.summary()


if __name__ == "__main__":
    main()
