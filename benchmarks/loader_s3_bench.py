"""The loader from S3 against the same loader from a local disk (issue: training).

    python -m benchmarks.loader_s3_bench [--images 400] [--repeats 3] [--latency-ms 30]

One dataset of the benchmark's 640x480 COCO-style JPEGs (images, categories, boxes) is
written twice: to a local folder and to moto's S3 server on loopback. Each run is a
fresh process that times one ``ds.pytorch(num_workers=2, batch_size=32)`` pass decoding
images, labels and boxes; the S3 runs go through a loopback proxy adding
``--latency-ms`` to every request (an S3-like round trip), so what is measured is how
well prefetching hides latency. Runs alternate local / S3; medians and the run-by-run
ratios are printed. Target: S3 >= 0.8x local. Also printed: the same S3 pass with the
JPEG bytes fetched and not decoded, the most this server can give on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path.home() / ".cache" / "tensorlake-bench" / "data" / "coco-2000-seed0" / "images"


def _write(url: str, creds: dict | None, n: int) -> None:
    import numpy as np

    import tensorlake as tl

    files = sorted(DATA.glob("*.jpg"))[:n]
    if len(files) < n:
        raise SystemExit("run `python -m benchmarks --scenarios read` once to make the images")
    ds = tl.empty(url, creds=creds, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("categories", htype="class_label")
        ds.create_tensor("boxes", htype="bbox")
        for i, path in enumerate(files):
            k = i % 5
            ds.append(
                {
                    "images": tl.read(path),
                    "categories": np.arange(k, dtype=np.uint32),
                    "boxes": np.full((k, 4), i, dtype=np.float32),
                }
            )
    ds.commit("images")


def _one(url: str, creds: dict | None, fetch_only: bool) -> None:
    import time

    import torch  # noqa: F401  (imported by any training script: not timed)

    import tensorlake as tl

    ds = tl.load(url, read_only=True, creds=creds)
    started = time.perf_counter()
    count = 0
    for batch in ds.pytorch(
        tensors=["images", "categories", "boxes"],
        batch_size=32,
        num_workers=2,
        collate_fn=list,
        decode_method={"images": "tobytes"} if fetch_only else None,
    ):
        count += len(batch)
    print(json.dumps({"rate": count / (time.perf_counter() - started)}))


def _measure(url: str, creds: dict | None, fetch_only: bool = False) -> float:
    cmd = [sys.executable, "-m", "benchmarks.loader_s3_bench", "--one", url]
    if fetch_only:
        cmd += ["--fetch-only"]
    if creds:
        cmd += ["--creds", json.dumps(creds)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--creds", help=argparse.SUPPRESS)
    parser.add_argument("--fetch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one, json.loads(args.creds) if args.creds else None, args.fetch_only)
        return
    from benchmarks.harness import moto_server, s3_creds, slow_proxy

    with tempfile.TemporaryDirectory() as tmp, moto_server("bench") as port:
        local = str(Path(tmp) / "ds")
        remote = "s3://bench/loader"
        direct = s3_creds(port)
        _write(local, None, args.images)
        _write(remote, direct, args.images)
        with slow_proxy(port, args.latency_ms / 1000) as endpoint:
            creds = {**direct, "endpoint_url": endpoint}
            local_rates, s3_rates, fetch_rates = [], [], []
            for _ in range(args.repeats):
                local_rates.append(_measure(local, None))
                s3_rates.append(_measure(remote, creds))
                fetch_rates.append(_measure(remote, creds, fetch_only=True))
    ratio = statistics.median(s3_rates) / statistics.median(local_rates)
    by_run = sorted(s / loc for s, loc in zip(s3_rates, local_rates))
    print(
        f"{args.images} images, {args.repeats} fresh-process runs each, alternating; 2 cpus; "
        f"default allocator; S3 through a {args.latency_ms:g} ms proxy\n"
        f"local {statistics.median(local_rates):6.0f} images/s  "
        f"(runs {', '.join(f'{r:.0f}' for r in local_rates)})\n"
        f"s3    {statistics.median(s3_rates):6.0f} images/s  "
        f"(runs {', '.join(f'{r:.0f}' for r in s3_rates)})\n"
        f"ratio {ratio:.2f}x (target >= 0.8x: {'met' if ratio >= 0.8 else 'NOT met'}; "
        f"run by run {', '.join(f'{r:.2f}' for r in by_run)})\n"
        f"the server's ceiling: the same S3 pass fetching the JPEG bytes, no decode: "
        f"{statistics.median(fetch_rates):.0f} images/s "
        f"(runs {', '.join(f'{r:.0f}' for r in fetch_rates)}); moto and the proxy are "
        "Python servers on the same 2 cores"
    )


if __name__ == "__main__":
    main()
