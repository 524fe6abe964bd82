"""What checkpoints cost an ingest (issue: compute), on local disk and on S3-like storage.

    python -m benchmarks.checkpoint_bench [--images 2000] [--s3-images 400] [--repeats 5]

The seed COCO transform (``benchmarks/peers/_coco.py``) with 2 workers into a local
dataset and into S3 (moto on loopback, through a proxy that adds ``--latency-ms``, 30 by
default, to every request: an S3-like round trip; moto itself answers in ~1 ms). Each
target runs with a checkpoint every 20% of the input and with none, alternately, each
run in a fresh process; the cost is the median of the run-by-run slowdowns (the
machine's speed drifts, the pairs less so). Target: < 3% locally (issue: compute).

Checkpoints are stored behind the workers, so their round trips cost no time; on S3 what
remains is CPU: the commits' requests (signing, and here moto and the proxy, which share
the machine's 2 cores with the workers) and the last commit, which ``eval`` waits for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--s3-images", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--cache", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)  # data url creds interval
    args = parser.parse_args()
    if args.one:
        data, url, creds, interval = args.one
        print(json.dumps(_ingest(data, url, json.loads(creds), int(interval), args.images)))
        return

    from benchmarks import venvs
    from benchmarks.__main__ import data_dir
    from benchmarks.harness import moto_server, s3_creds, slow_proxy

    data = data_dir(args.cache or venvs.default_cache(), max(args.images, args.s3_images), print)
    print(
        "2 workers, a checkpoint every 20% of the input or none; "
        f"{args.repeats} runs each, alternating, fresh processes\n"
    )
    with moto_server() as port, slow_proxy(port, args.latency_ms / 1000) as endpoint:
        targets = {
            "local": (str(ROOT / "benchmarks" / ".cache" / "checkpoint-ds"), None, args.images),
            f"S3 +{args.latency_ms:g} ms per request": (
                "s3://bench/checkpoints",
                {**s3_creds(port), "endpoint_url": endpoint},
                args.s3_images,
            ),
        }
        for name, (url, creds, n) in targets.items():
            interval = max(2, n // 5 // 2 * 2)
            runs: dict[int, list[float]] = {interval: [], 0: []}
            for _ in range(args.repeats):
                for every, speeds in runs.items():
                    speeds.append(_run_fresh(n, data, url, creds, every))
            _report(f"{name}, {n} images", runs[interval], runs[0])


def _run_fresh(images: int, data: Path, url: str, creds: dict | None, interval: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.checkpoint_bench", "--images", str(images),
         "--one", str(data), url, json.dumps(creds), str(interval)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["items_per_s"]


def _ingest(data: str, url: str, creds: dict | None, interval: int, n: int) -> dict:
    import tensorlake as tl
    from benchmarks.peers import _coco
    from benchmarks.peers.tensorlake_peer import _create, coco_to_tl

    coco = _coco.load(f"{data}/instances.json")
    names, index_of = _coco.classes(coco)
    ds = tl.empty(url, creds=creds, overwrite=True)
    _create(ds, names, None)
    ds.commit("schema")  # both variants start from a commit: only checkpoints differ
    transform = coco_to_tl(coco_api=coco, image_dir=f"{data}/images", index_of=index_of)
    start = time.perf_counter()
    report = transform.eval(
        _coco.image_ids(coco, n),
        ds,
        num_workers=2,
        checkpoint_interval=interval,
        progressbar=False,
    )
    seconds = time.perf_counter() - start
    assert len(ds) == n and bool(report.checkpoints) == bool(interval)
    ds.close()
    return {"items_per_s": n / seconds, "checkpoints": len(report.checkpoints)}


def _report(name: str, with_ckpt: list[float], without: list[float]) -> None:
    paired = [b / a - 1 for a, b in zip(with_ckpt, without)]  # time with / time without
    print(f"{name}:")
    for label, values in (("checkpoints every 20%", with_ckpt), ("no checkpoints", without)):
        print(
            f"  {label:<22} {statistics.median(values):8.0f} items/s "
            f"(min {min(values):.0f}, max {max(values):.0f})"
        )
    print(
        f"  checkpoint cost: {100 * statistics.median(paired):+.1f}% run by run "
        f"(range {100 * min(paired):+.1f}% to {100 * max(paired):+.1f}%)\n"
    )


if __name__ == "__main__":
    main()
