"""Demo: a small COCO-style dataset ingested into tensorlake and read back.

    python examples/coco_demo.py [--images 64] [--out ./demo-dataset]

Generates synthetic COCO data (JPEGs + instances.json), stores the JPEGs unchanged
(pass-through, no re-encoding), class labels, boxes and bit-packed masks, then reopens
the dataset read-only, checks every image against its source file and prints a summary.
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


def ingest(coco: COCO, image_dir: Path, ds: tl.Dataset) -> int:
    names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
    index_of = {c["id"]: names.index(c["name"]) for c in coco.loadCats(coco.getCatIds())}
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("categories", htype="class_label", class_names=names)
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("masks", htype="binary_mask", sample_compression="lz4")
        for img_id in sorted(coco.getImgIds()):
            info = coco.loadImgs(img_id)[0]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            masks = np.zeros((info["height"], info["width"], len(anns)), dtype=bool)
            for i, ann in enumerate(anns):
                masks[:, :, i] = coco.annToMask(ann)
            ds.append(
                {
                    "images": tl.read(image_dir / info["file_name"]),
                    "categories": np.array(
                        [index_of[a["category_id"]] for a in anns], dtype=np.uint32
                    ),
                    "boxes": np.array([a["bbox"] for a in anns], dtype=np.float32),
                    "masks": masks,
                }
            )
    return len(ds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--out", default=None, help="dataset path (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "coco"
        ann_path = generate(source, args.images)
        coco = COCO(str(ann_path))
        path = args.out or str(Path(tmp) / "dataset")

        start = time.perf_counter()
        ds = tl.empty(path, overwrite=True)
        rows = ingest(coco, source / "images", ds)
        print(f"ingested {rows} images in {time.perf_counter() - start:.2f}s")

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
