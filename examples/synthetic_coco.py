"""Deterministic synthetic COCO-style data: photo-like JPEGs and an instances JSON.

Used by the demo, the tests and the benchmarks, so all three see the same kind of data:
640x480 RGB JPEGs of 40-120 KB with 1-8 polygon objects each over 80 categories, and an
``instances.json`` that pycocotools reads like the real COCO annotations.

    python examples/synthetic_coco.py OUT_DIR --images 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = [
    {"id": i + 1, "name": f"category_{i:02d}", "supercategory": f"super_{i // 10}"}
    for i in range(80)
]


def _photo(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth structure plus texture: compresses like a photograph, not like noise or flat colour."""
    coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    base = np.asarray(
        Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.int16
    )
    texture = rng.normal(0, 5, (height, width, 1)).astype(np.int16)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def _polygon(rng: np.random.Generator, width: int, height: int) -> list[float]:
    cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
    radius = rng.uniform(0.05, 0.25) * min(width, height)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 12))))
    r = radius * rng.uniform(0.6, 1.0, len(angles))
    xs = np.clip(cx + r * np.cos(angles), 0, width - 1)
    ys = np.clip(cy + r * np.sin(angles), 0, height - 1)
    return np.round(np.stack([xs, ys], 1).reshape(-1), 2).tolist()


def generate(
    out_dir: str | Path, n_images: int, width: int = 640, height: int = 480, seed: int = 0
) -> Path:
    """Write ``n_images`` JPEGs under ``out_dir/images`` and ``out_dir/instances.json``; return the JSON path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, n_images + 1):
        pixels = _photo(rng, width, height)
        canvas = Image.fromarray(pixels)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, 9))):
            poly = _polygon(rng, width, height)
            category = int(rng.integers(1, 81))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.polygon(poly, fill=colour)
            xs, ys = poly[0::2], poly[1::2]
            x0, y0 = min(xs), min(ys)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": [poly],
                    "bbox": [x0, y0, max(xs) - x0, max(ys) - y0],
                    "area": float((max(xs) - x0) * (max(ys) - y0)),
                    "iscrowd": 0,
                }
            )
        name = f"{image_id:012d}.jpg"
        canvas.save(out / "images" / name, format="JPEG", quality=90)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
    ann_path = out / "instances.json"
    ann_path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES})
    )
    return ann_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(generate(args.out_dir, args.images, seed=args.seed))
