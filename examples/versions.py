"""Version control in five minutes: commit, branch, diff, time travel, reset.

    python examples/versions.py [path]

Builds a small labelled dataset, fixes labels on a branch, compares the branches,
reads a past commit without checking it out, and throws away uncommitted work.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import tensorlake as tl


def main(path: str) -> None:
    ds = tl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("embeddings", htype="embedding")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
        rng = np.random.default_rng(0)
        ds.extend(
            {
                "embeddings": rng.normal(size=(100, 8)).astype(np.float32),
                "labels": ["cat", "dog"] * 50,
            }
        )
    first = ds.commit("100 labelled embeddings")

    ds.checkout("relabel", create=True)
    ds.labels[3] = "cat"  # row 3 was mislabelled
    ds.labels[7] = "cat"
    ds.commit("relabel rows 3 and 7")

    ds.checkout("main")
    with ds:
        ds.extend({"embeddings": np.zeros((10, 8), np.float32), "labels": ["dog"] * 10})
    ds.commit("10 more rows")

    print("What each branch did since they split:")
    ds.diff("main", "relabel")
    print()
    ds.log()

    past = tl.load(f"{path}@{first[:10]}", read_only=True)
    print(f"\nAt {first[:10]} the dataset had {len(past)} rows; main has {len(ds)}.")

    ds.labels.append("cat")  # uncommitted, then dropped
    ds.reset()
    print(f"After reset: {len(ds)} rows, uncommitted changes: {ds.has_head_changes}")
    ds.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "versions-demo"))
