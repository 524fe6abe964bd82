"""Core storage-engine benchmarks (issue: core engine), each figure the median of fresh processes.

    python -m benchmarks.core_bench [--images 300] [--repeats 3] [--quick]

Scenarios, on synthetic COCO-like 640x480 JPEGs (~85 KB):
  copy            shutil.copyfile of every JPEG, 5 passes (the ceiling for ingesting files)
  append          ds.images.append(tl.read(path)), 5 passes, local dataset (JPEG pass-through)
  decode_ceiling  decode_image into one reused buffer, no dataset (the decode ceiling)
  read_batch      ds.images[i:i+32].numpy() over the whole tensor (threaded decode)
  read_rows       ds.images[i].numpy() row by row, one thread
  random_rows     500 random single rows (bytes) from a freshly opened local dataset
  s3_append/s3_read  the same appends and batch reads against moto's S3 server on loopback
  open_1m         tl.load() + len() of a 1,000,000-row dataset in ~1,000 chunks
  memory_N        peak RSS while appending N images (flat in N is the goal)

Runs under the default allocator (no MALLOC_* variables); the environment is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import s3_creds, start_moto

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


def _files(data: Path) -> list[Path]:
    return sorted((data / "images").glob("*.jpg"))


def run_one(scenario: str, data: Path, work: Path, port: int) -> dict:
    """One measurement in this (fresh) process; returns {'value': ..., 'unit': ...}."""
    import tensorlake as tl
    from tensorlake.compression import decode_image

    files = _files(data)
    if scenario in ("copy", "append"):  # long enough that fixed costs (final fsyncs) don't dominate
        files = files * 5
    n = len(files)
    if scenario == "copy":
        out = work / "copy"
        out.mkdir()
        t = time.perf_counter()
        for i, f in enumerate(files):
            shutil.copyfile(f, out / f"{i}.jpg")
        return {"value": n / (time.perf_counter() - t), "unit": "images/s"}
    if scenario in ("append", "s3_append"):
        url, creds = (
            (str(work / "ds"), None)
            if scenario == "append"
            else (f"s3://bench/{work.name}", s3_creds(port))
        )
        t = time.perf_counter()
        ds = tl.empty(url, creds=creds, overwrite=True)
        with ds:
            ds.create_tensor("images", htype="image", sample_compression="jpeg")
            for f in files:
                ds.images.append(tl.read(f))
        return {"value": n / (time.perf_counter() - t), "unit": "images/s"}
    if scenario == "decode_ceiling":
        blobs = [f.read_bytes() for f in files]
        buf = np.empty((480, 640, 3), np.uint8)
        t = time.perf_counter()
        for b in blobs:
            decode_image(b, out=buf)
        return {"value": n / (time.perf_counter() - t), "unit": "images/s"}
    if scenario in ("read_batch", "read_rows", "random_rows", "s3_read"):
        url, creds = (
            (str(work / "ds"), None)
            if scenario != "s3_read"
            else (f"s3://bench/{work.name}", s3_creds(port))
        )
        ds = tl.empty(url, creds=creds, overwrite=True)
        with ds:
            ds.create_tensor("images", htype="image", sample_compression="jpeg")
            ds.images.extend([tl.read(f) for f in files])
        ds = tl.load(url, creds=creds, read_only=True)
        t = time.perf_counter()
        if scenario in ("read_batch", "s3_read"):
            for i in range(0, n, 32):
                ds.images[i : i + 32].numpy()
        elif scenario == "read_rows":
            for i in range(n):
                ds.images[i].numpy()
        else:
            rows = np.random.default_rng(0).integers(0, n, 500)
            for r in rows:
                ds.images[int(r)].tobytes()
            return {"value": 500 / (time.perf_counter() - t), "unit": "rows/s"}
        return {"value": n / (time.perf_counter() - t), "unit": "images/s"}
    if scenario == "open_1m":
        path = work / "big"
        if not (path / "tensorlake.json").exists():
            ds = tl.empty(path)
            with ds:
                ds.create_tensor("labels", htype="class_label", max_chunk_size=4000)
                ds.create_tensor("ids", dtype="int64", max_chunk_size=8000)
                ds.extend(
                    {
                        "labels": np.zeros((1_000_000, 1), np.uint32),
                        "ids": np.arange(1_000_000).reshape(-1, 1),
                    }
                )
        t = time.perf_counter()
        ds = tl.load(path)
        assert len(ds) == 1_000_000
        chunks = len(ds.ids._engine.table) + len(ds.labels._engine.table)
        return {"value": (time.perf_counter() - t) * 1000, "unit": "ms", "chunks": chunks}
    if scenario.startswith("memory_"):
        count = int(scenario.split("_")[1])
        blob = files[0].read_bytes()
        ds = tl.empty(work / "mem")
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with ds:
            ds.create_tensor("images", htype="image", sample_compression="jpeg")
            for _ in range(count):
                ds.images.append(tl.Sample(data=blob))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "value": (peak - base) / 1024,
            "unit": "MiB above start",
            "data_mib": count * len(blob) / 2**20,
        }
    raise ValueError(f"unknown scenario {scenario}")


def main() -> None:
    parser = argparse.ArgumentParser(description="tensorlake core benchmarks")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, one repeat")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, Path(args.data), Path(args.work), args.port)))
        return

    from synthetic_coco import generate

    if args.quick:
        args.images, args.repeats = 40, 1
    scenarios = [
        "copy", "append", "decode_ceiling", "read_batch", "read_rows", "random_rows",
        "s3_append", "s3_read", "open_1m", "memory_2000", "memory_8000",
    ]  # fmt: skip
    if args.quick:
        scenarios = [s for s in scenarios if s not in ("open_1m", "memory_8000")]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, args.images)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        moto = start_moto(port)
        try:
            import boto3

            boto3.client(
                "s3",
                **{
                    k: v
                    for k, v in {**s3_creds(port), "region_name": "us-east-1"}.items()
                    if k != "aws_region"
                },
            ).create_bucket(Bucket="bench")
            results = {}
            big = Path(tmp) / "persist"
            big.mkdir()
            for scenario in scenarios:
                values, extra = [], {}
                for r in range(args.repeats):
                    work = Path(tmp) / f"{scenario}-{r}" if scenario != "open_1m" else big
                    work.mkdir(exist_ok=True)
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.core_bench", "--one", scenario, "--data", str(data), "--work", str(work), "--port", str(port)],
                        capture_output=True, text=True, cwd=ROOT, check=True,
                    )  # fmt: skip
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    values.append(res.pop("value"))
                    extra = res
                results[scenario] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    **extra,
                }
                print(
                    f"{scenario:15s} {results[scenario]['median']:10.1f} {extra['unit']:16s} (min {min(values):.1f}, max {max(values):.1f})",
                    flush=True,
                )
        finally:
            moto.terminate()
    r = results
    print(f"\nappend / copy: {r['append']['median'] / r['copy']['median']:.2f}")
    print(
        f"read_batch / decode ceiling: {r['read_batch']['median'] / r['decode_ceiling']['median']:.2f}"
    )
    env = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")} or "default allocator"
    print(
        f"environment: {env}; {os.cpu_count()} cpus; images={args.images}; repeats={args.repeats}"
    )


if __name__ == "__main__":
    main()
