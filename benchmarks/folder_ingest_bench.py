"""Folder ingest (``tl.ingest_classification``, 2 workers) against its ceiling.

The ceiling is the same files read (local) or listed and fetched with boto3 (S3) in a
bare ``multiprocessing.Pool(2)``, bytes discarded: what any ingest of those files must
at least do. Two folders, cached under ``~/.cache/tensorlake-bench/data``:

- ``mnist-10000``: 10,000 28x28 PNGs in ``train/<digit>/`` (MNIST-sized, generated);
- ``jpeg-2000``: the benchmark's 2,000 640x480 COCO-style JPEGs in 10 class folders
  (hard links to ``coco-2000-seed0/images``).

Each run is a fresh process; tensorlake and the ceiling alternate run by run; the
medians and the ratio of medians are printed, with the run-by-run ratios.

    .venv/bin/python -m benchmarks.folder_ingest_bench --repeats 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import boto3_client, delete_prefix, moto_server, s3_creds

DATA = Path.home() / ".cache" / "tensorlake-bench" / "data"
ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bench"


def _mnist(n: int = 10_000) -> Path:
    root = DATA / f"mnist-{n}"
    if (root / "DONE").exists():
        return root
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / "train" / str(i % 10)
        folder.mkdir(parents=True, exist_ok=True)
        digit = (rng.random((28, 28)) * 255 * (rng.random((28, 28)) > 0.8)).astype(np.uint8)
        Image.fromarray(digit).save(folder / f"{i:05d}.png")
    (root / "DONE").write_text("")
    return root


def _jpegs() -> Path:
    root = DATA / "jpeg-2000"
    if (root / "DONE").exists():
        return root
    source = sorted((DATA / "coco-2000-seed0" / "images").glob("*.jpg"))
    if len(source) < 2000:
        raise SystemExit("run `python -m benchmarks --scenarios ingest` once to make the COCO data")
    for i, path in enumerate(source[:2000]):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if not target.exists():
            os.link(path, target)
    (root / "DONE").write_text("")
    return root


# -- one measured run (a fresh process) ----------------------------------------------------

_client = None


def _init_s3(creds: dict) -> None:
    global _client
    import boto3

    _client = boto3.client(
        "s3",
        aws_access_key_id=creds["aws_access_key_id"],
        aws_secret_access_key=creds["aws_secret_access_key"],
        endpoint_url=creds["endpoint_url"],
        region_name=creds["aws_region"],
    )


def _read_local(path: str) -> int:
    with open(path, "rb") as f:
        return len(f.read())


def _read_s3(key: str) -> int:
    assert _client is not None
    return len(_client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _ceiling(src: str, creds: dict | None) -> float:
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    if creds is None:
        files = [str(p) for p in Path(src).rglob("*") if p.is_file() and p.name != "DONE"]
        with context.Pool(2) as pool:
            sum(pool.map(_read_local, files, chunksize=64))
    else:
        _init_s3(creds)
        assert _client is not None
        prefix = src.removeprefix(f"s3://{BUCKET}/")
        pages = _client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        with context.Pool(2, initializer=_init_s3, initargs=(creds,)) as pool:
            sum(pool.map(_read_s3, keys, chunksize=16))
    return time.perf_counter() - started


def _tensorlake(src: str, creds: dict | None) -> float:
    import tensorlake as tl

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        tl.ingest_classification(
            src,
            Path(scratch) / "ds",
            src_creds=creds,
            num_workers=2,
            progressbar=False,
            summary=False,
        )
        return time.perf_counter() - started


def _one(args: argparse.Namespace) -> None:
    creds = json.loads(args.creds) if args.creds else None
    run = _tensorlake if args.one == "tensorlake" else _ceiling
    print(json.dumps({"seconds": run(args.src, creds)}))


# -- the driver ----------------------------------------------------------------------------


def _measure(system: str, src: str, creds: dict | None) -> float:
    cmd = [sys.executable, "-m", "benchmarks.folder_ingest_bench", "--one", system, "--src", src]
    if creds:
        cmd += ["--creds", json.dumps(creds)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def _upload(port: int, folder: Path, prefix: str) -> None:
    client = boto3_client(port)
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "DONE":
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())


def _report(name: str, files: int, tl_s: list[float], ceil_s: list[float]) -> None:
    tl_rate = [files / s for s in tl_s]
    ceil_rate = [files / s for s in ceil_s]
    ratio = statistics.median(tl_rate) / statistics.median(ceil_rate)
    by_run = sorted(a / b for a, b in zip(tl_rate, ceil_rate))
    met = "met" if ratio >= 0.8 else "NOT met"
    print(
        f"{name:18s} tensorlake {statistics.median(tl_rate):8.0f} files/s  ceiling "
        f"{statistics.median(ceil_rate):8.0f} files/s  ratio {ratio:.2f}x (target >= 0.8x: "
        f"{met}; run by run {', '.join(f'{r:.2f}' for r in by_run)})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated: mnist-local,jpeg-local,mnist-s3,jpeg-s3")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--creds", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args)
        return
    folders = {"mnist": _mnist(), "jpeg": _jpegs()}
    wanted = (args.only or "mnist-local,jpeg-local,mnist-s3,jpeg-s3").split(",")
    print(f"{args.repeats} fresh-process runs each, alternating; default allocator; 2 cpus")
    for name in [w for w in wanted if w.endswith("-local")]:
        folder = folders[name.split("-")[0]]
        files = sum(1 for p in folder.rglob("*") if p.is_file() and p.name != "DONE")
        tl_s, ceil_s = [], []
        for _ in range(args.repeats):
            tl_s.append(_measure("tensorlake", str(folder), None))
            ceil_s.append(_measure("ceiling", str(folder), None))
        _report(name, files, tl_s, ceil_s)
    remote = [w for w in wanted if w.endswith("-s3")]
    if remote:
        with moto_server(BUCKET) as port:
            creds = s3_creds(port)
            for name in remote:
                folder = folders[name.split("-")[0]]
                prefix = name.split("-")[0]
                _upload(port, folder, prefix)
                files = sum(1 for p in folder.rglob("*") if p.is_file() and p.name != "DONE")
                tl_s, ceil_s = [], []
                for _ in range(args.repeats):
                    tl_s.append(_measure("tensorlake", f"s3://{BUCKET}/{prefix}/", creds))
                    ceil_s.append(_measure("ceiling", f"s3://{BUCKET}/{prefix}/", creds))
                _report(name, files, tl_s, ceil_s)
                delete_prefix(port, BUCKET, prefix)


if __name__ == "__main__":
    main()
