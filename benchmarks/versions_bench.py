"""Version-control benchmarks (issue: versions), on a local dataset of 1,000,000 rows.

    python -m benchmarks.versions_bench [--rows 1000000] [--chunks 1000] [--repeats 5]

Measured on one local dataset (``v``: int64, chunk size chosen so the rows span about
``--chunks`` chunks; ``label``: a text tensor of the same length):
  commit          ``ds.commit()`` after appending one row to each tensor
  checkout        ``ds.checkout(other_branch)`` and back
  load            ``tl.load(path)`` + ``len(ds)`` in this process
  commit_bytes    bytes a commit adds to storage after appending k rows, for k = 1, 1000,
                  100000, on the full dataset and on one a tenth of its size: the bytes
                  grow with k, not with the dataset
  reset           ``ds.reset()`` after 1000 uncommitted rows (drops them, runs gc)
  gc              ``ds.gc()`` with nothing to collect (a full mark and sweep)

Every time is the median of ``--repeats`` runs (min-max shown), in one process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _build(path: Path, rows: int, chunks: int):
    import tensorlake as tl

    ds = tl.empty(str(path), overwrite=True)
    with ds:
        ds.create_tensor("v", dtype="int64", max_chunk_size=max(64, rows * 8 // chunks))
        ds.create_tensor("label", htype="text", max_chunk_size=max(64, rows * 6 // chunks))
        step = 100_000
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            ds.extend(
                {
                    "v": np.arange(start, stop),
                    "label": [f"r{i % 1000:03d}" for i in range(start, stop)],
                }
            )
    ds.commit("initial")
    return ds


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _fmt(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{statistics.median(ms):8.1f} ms  (min {min(ms):.1f}, max {max(ms):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import tensorlake as tl

    print(f"tensorlake {tl.__version__}; rows={args.rows:,}, ~{args.chunks} chunks per tensor")
    print(f"environment: MALLOC_* = {[k for k in os.environ if k.startswith('MALLOC_')] or 'none'}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ds"
        ds = _build(path, args.rows, args.chunks)
        n_chunks = len(ds._core.engines["v"].table)
        print(f"built: {n_chunks} chunks in 'v', {_tree_bytes(path) / 1e6:.1f} MB on disk\n")

        times = []
        for _ in range(args.repeats):
            ds.v.append(1)
            ds.label.append("x")
            times += _timed(lambda: ds.commit("one row"), 1)
        print(f"commit (1 new row)      {_fmt(times)}")

        ds.checkout("other", create=True)
        ds.checkout("main")

        def checkout_pair() -> None:
            ds.checkout("other")
            ds.checkout("main")

        times = _timed(checkout_pair, args.repeats)
        print(f"checkout                {_fmt([t / 2 for t in times])}")
        print(
            f"load + len              {_fmt(_timed(lambda: len(tl.load(str(path))), args.repeats))}"
        )

        def reset_after_rows() -> None:
            with ds:
                ds.extend({"v": np.arange(1000), "label": ["y"] * 1000})
            ds.reset()

        print(f"reset (1000 new rows)   {_fmt(_timed(reset_after_rows, args.repeats))}")
        print(f"gc (nothing to collect) {_fmt(_timed(ds.gc, args.repeats))}")

        print("\nbytes added by one commit (rows appended -> bytes; full dataset | a tenth of it)")
        small_path = Path(tmp) / "small"
        small = _build(small_path, args.rows // 10, max(1, args.chunks // 10))
        for k in (1, 1000, 100_000):
            row = []
            for d, p in ((ds, path), (small, small_path)):
                before = _tree_bytes(p)
                with d:
                    d.extend({"v": np.arange(k), "label": ["z"] * k})
                d.commit(f"{k} rows")
                row.append(_tree_bytes(p) - before)
            data = k * (8 + 1)
            print(f"  k={k:>7,}: {row[0]:>10,} B | {row[1]:>10,} B   (row data {data:,} B)")


if __name__ == "__main__":
    main()
