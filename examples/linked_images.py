"""Linked images: a dataset that points at JPEGs instead of copying them.

    python examples/linked_images.py

Writes a few JPEGs to a folder, links them (verified at ingest, shapes and object
versions recorded), reads them back, then overwrites one source file and shows that
the dataset notices.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_coco import generate

import tensorlake as tl


def main(workdir: str) -> None:
    source = Path(workdir) / "coco"
    generate(source, 8)
    files = sorted((source / "images").glob("*.jpg"))

    ds = tl.empty(str(Path(workdir) / "linked"), overwrite=True)
    ds.create_tensor("images", htype="link[image]", sample_compression="jpg")
    ds.images.extend([tl.link(f) for f in files])
    ds.commit("8 linked images")
    stored = sum(f.stat().st_size for f in (Path(workdir) / "linked").rglob("*") if f.is_file())
    linked = sum(f.stat().st_size for f in files)
    print(f"{len(ds)} images linked: {linked / 1e6:.1f} MB of JPEGs, {stored / 1e3:.1f} kB stored")
    print(f"shapes without fetching: {ds.images[0].shape}; read: {ds.images[:4].numpy().shape}")

    files[2].write_bytes(files[3].read_bytes())  # the bucket changes under the dataset
    print("verify_links():", ds.images.verify_links())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.images[2].numpy()
    print("reading row 2 warns:", caught[0].message if caught else "no warning")
    ds.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
