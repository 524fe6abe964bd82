"""Notebook views (issue: exploring in a notebook).

    python -m benchmarks.notebook_bench [--repeats 5] [--latency-ms 30]

  html_1m_100     ``ds._repr_html_()`` of a 1,000,000-row dataset of 100 tensors (the
                  table only, ``TENSORLAKE_HTML_PREVIEW=0``): milliseconds, and the chunk
                  reads it made (target: < 100 ms, none)
  html_preview    the same with the default preview of 4 rows
  grid_local      ``ds[0:16].visualize()`` of 640x480 JPEGs with boxes and masks, local
  grid_s3         the same from moto's S3 server through a proxy adding 30 ms per request

Targets: html_1m_100 < 100 ms with no chunk read; grid_local < 0.5 s; grid_s3 < 1.5 s.
Each figure is the median of ``--repeats`` runs, each on a freshly opened dataset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
DATA = Path.home() / ".cache" / "tensorlake-bench" / "data"


def _big(path: Path) -> None:
    """100 tensors of 1,000,000 rows (made once, ~17 minutes: appends go row by row)."""
    import tensorlake as tl

    if (path / "DONE").exists():
        return
    ds = tl.empty(path, overwrite=True)
    for k in range(100):
        labels = k % 10 == 0
        name = f"t{k:03d}"
        if labels:
            ds.create_tensor(
                name, htype="class_label", class_names=[f"class {i}" for i in range(20)]
            )
        else:
            ds.create_tensor(name, dtype="float32")
        with ds:  # one tensor at a time in memory
            ds[name].extend(np.zeros((1_000_000, 1), np.uint32 if labels else np.float32))
    ds.commit("1M rows, 100 tensors")
    (path / "DONE").write_text("")


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _report(name: str, seconds: list[float], target: float, extra: str = "") -> None:
    median = statistics.median(seconds)
    met = "met" if median < target else "NOT met"
    runs = ", ".join(f"{s * 1000:.0f}" for s in seconds)
    print(
        f"{name:14s} {median * 1000:8.1f} ms (runs {runs}; target < {target * 1000:.0f} ms: {met}){extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--only", choices=["html", "grid"], help="one half of the benchmark")
    args = parser.parse_args()
    print(f"{args.repeats} runs each, medians; 2 cpus; default allocator")
    if args.only != "grid":
        _html(args.repeats)
    if args.only != "html":
        _grids(args.repeats, args.latency_ms)


def _html(repeats: int) -> None:
    import tensorlake as tl
    from tensorlake.api.dataset import core_of

    big = DATA / "html-1m-100"
    _big(big)
    os.environ["TENSORLAKE_HTML_PREVIEW"] = "0"
    chunk_reads: list[str] = []

    def table() -> None:
        ds = tl.load(big, read_only=True)
        storage = core_of(ds).storage
        for method in ("get", "get_range", "get_many"):
            real = getattr(storage, method)

            def spy(key, *a, _real=real, **kw):
                keys = [key] if isinstance(key, str) else list(key)
                chunk_reads.extend(k for k in keys if "/chunks/" in k)
                return _real(key, *a, **kw)

            setattr(storage, method, spy)
        ds._repr_html_()

    _report("html_1m_100", _timed(table, repeats), 0.1, f"; chunk reads: {len(chunk_reads)}")
    os.environ["TENSORLAKE_HTML_PREVIEW"] = "4"
    preview = _timed(lambda: tl.load(big, read_only=True)._repr_html_(), repeats)
    _report("html_preview", preview, 0.1)


def _grids(repeats: int, latency_ms: float) -> None:
    from synthetic_coco import generate

    import tensorlake as tl
    from benchmarks.harness import moto_server, s3_creds, slow_proxy

    with tempfile.TemporaryDirectory() as tmp, moto_server("bench") as port:
        images = Path(tmp) / "coco" / "images"
        ann = generate(Path(tmp) / "coco", 16, seed=0)
        local = tl.ingest_coco(images, ann, Path(tmp) / "ds", progressbar=False, summary=False)
        grid_local = _timed(lambda: tl.load(local.path, read_only=True)[0:16].visualize(), repeats)
        _report("grid_local", grid_local, 0.5)
        direct = s3_creds(port)
        remote = "s3://bench/grid"
        tl.ingest_coco(images, ann, remote, dest_creds=direct, progressbar=False, summary=False)
        with slow_proxy(port, latency_ms / 1000) as endpoint:
            creds = {**direct, "endpoint_url": endpoint}
            grid_s3 = _timed(
                lambda: tl.load(remote, read_only=True, creds=creds)[0:16].visualize(), repeats
            )
        _report("grid_s3", grid_s3, 1.5, f" (through a {latency_ms:g} ms proxy)")


if __name__ == "__main__":
    main()
