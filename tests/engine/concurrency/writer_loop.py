"""A writer that ``test_readers_during_writes.py`` runs as a subprocess.

Usage::

    python tests/engine/concurrency/writer_loop.py <url> <creds-json-or-null> <seconds> <commit_every>

It creates the dataset, commits the schema (``READY <commit id>`` on stdout), then for
``<seconds>`` appends a few rows and flushes, committing every ``<commit_every>`` flushes
(0: never). Every flush rewrites the open chunk of each tensor under a new id and the
tables' segments: what a reader of the branch holds is superseded at once. Row ``i`` of
every tensor is a pure function of ``i`` (``value``), so a reader checks what it reads
without anything from this process. Ends with ``DONE <rows> <flushes>``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

import tensorlake as tl


def value(i: int) -> np.ndarray:
    """Row ``i`` of tensor ``x``: ragged, so rows of one chunk differ in shape."""
    return np.arange(i % 7 + 1, dtype=np.int64) + i


def text(i: int) -> str:
    return f"row-{i:06d}"


def check_rows(ds: Any) -> int:
    """Read every row of ``ds`` (a dataset or view of it); raise AssertionError on a row
    that is not what the writer wrote; return the number of rows."""
    n = len(ds)
    xs = ds.x[:n].numpy(aslist=True)
    ts = ds.t[:n].numpy(aslist=True)
    for i in range(n):
        assert np.array_equal(np.asarray(xs[i]), value(i)), f"x[{i}] = {xs[i]!r}"
        got = ts[i].item() if hasattr(ts[i], "item") else ts[i]
        assert got == text(i), f"t[{i}] = {got!r}"
    return n


def main(argv: list[str]) -> None:
    url, creds = argv[1], json.loads(argv[2])
    seconds, commit_every = float(argv[3]), int(argv[4])
    ds = tl.empty(url, creds=creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=2048)
        ds.create_tensor("t", htype="text", max_chunk_size=1024)
    print(f"READY {ds.commit('schema')}", flush=True)
    rows = flushes = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with ds:
            for _ in range(3):
                ds.append({"x": value(rows), "t": text(rows)})
                rows += 1
        flushes += 1
        if commit_every and flushes % commit_every == 0:
            ds.commit(f"after {rows} rows")
    ds.close()
    print(f"DONE {rows} {flushes}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
