"""The same ``eval`` on Ray and Dask against ``processed`` (issue 21).

    .venv/bin/python -m benchmarks.cluster_bench [--images 2000] [--repeats 3]
        [--scaling-items 480] [--latency-ms 30] [--only seed|scaling] [--quick]

Two figures, each run in a fresh process per scheduler and repeat, the schedulers
alternating run by run:

- **seed**: the seed COCO workflow (``benchmarks/peers/tensorlake_peer.py``'s transform:
  JPEG pass-through, class labels, boxes, pycocotools masks) on the benchmark's 2,000
  images, 2 workers, a checkpoint every 20%, into a local folder. The cluster (a local
  Ray of 2 CPUs, a Dask ``LocalCluster`` of 2 single-threaded workers) is started, and
  its workers warmed by an eval of 8 items, before the timed eval: a user's cluster is
  already up. What the timed eval costs beyond ``processed`` is the engine's: shipping
  the job (the transform and its COCO index) to each worker, a task per block, results
  through the engine. Target: Ray and Dask >= 0.7x ``processed``'s items/s.
- **scaling**: a latency-bound transform: each item appends a ``link[image]`` row (a
  32x32 JPEG, so that the CPU an item costs stays small beside the latency it waits) with
  ``verify=True``, so the worker fetches the image from the loopback S3 server through
  a proxy that adds ``--latency-ms`` to every request; 1, 2, 4 and 8 workers, after a
  warm-up eval on 8 (clusters of 8 CPUs / 8 workers, ``num_workers`` bounding how many
  blocks run at once; Ray starts its worker processes on demand). Target:
  throughput with w workers >= 0.8 * w * throughput with 1, on every scheduler.

Figures are medians of ``--repeats`` runs (run by run beside them); the ratios are of
the medians. The 2 cores are shared by the server, the proxy, the driver and the
workers: don't run anything else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import tensorlake as tl
from benchmarks.harness import ROOT, boto3_client, moto_server, s3_creds, slow_proxy

SCHEDULERS = ("processed", "ray", "dask")
SCALING_WORKERS = (1, 2, 4, 8)


def _start_cluster(scheduler: str, cpus: int) -> Any:
    """The cluster a user would have running (None for ``processed``)."""
    if scheduler == "ray":
        import ray

        ray.init(num_cpus=cpus, object_store_memory=200 << 20, include_dashboard=False)
        return None
    if scheduler == "dask":
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=cpus, threads_per_worker=1, dashboard_address=None, silence_logs=40
        )
        return distributed.Client(cluster)
    return None


def _child_seed(a: dict) -> dict:
    from benchmarks.peers import _coco
    from benchmarks.peers.tensorlake_peer import _create, coco_to_tl

    client = _start_cluster(a["scheduler"], a["workers"])
    coco = _coco.load(a["ann"])
    ids = _coco.image_ids(coco, a["n"])
    names, index_of = _coco.classes(coco)

    def ingest(items: list[int], out: str) -> float:
        ds = tl.empty(out, overwrite=True)
        _create(ds, names, None)
        transform = coco_to_tl(coco_api=coco, image_dir=a["image_dir"], index_of=index_of)
        t = time.perf_counter()
        transform.eval(
            items,
            ds,
            num_workers=a["workers"],
            scheduler=a["scheduler"],
            checkpoint_interval=max(1, len(items) // 5),
            progressbar=False,
            client=client,
        )
        seconds = time.perf_counter() - t
        assert len(ds) == len(items)
        ds.close()
        return seconds

    ingest(ids[:8], a["out"] + "-warm")
    seconds = ingest(ids, a["out"])
    return {"items_per_s": len(ids) / seconds}


def _child_scaling(a: dict) -> dict:
    client = _start_cluster(a["scheduler"], max(SCALING_WORKERS))

    def rate(workers: int) -> float:
        ds = tl.empty(f"{a['out']}-{workers}", overwrite=True)
        ds.create_tensor("images", htype="link[image]", sample_compression="jpg", verify=True)
        ds.add_creds_key("raw")
        ds.populate_creds("raw", a["creds"])
        t = time.perf_counter()
        link_rows().eval(
            a["urls"],
            ds,
            num_workers=workers,
            scheduler=a["scheduler"],
            progressbar=False,
            client=client,
        )
        seconds = time.perf_counter() - t
        assert len(ds) == len(a["urls"])
        ds.close()
        return len(a["urls"]) / seconds

    # warm: every worker has imported tensorlake and opened the storage, as on a cluster
    # in use (an engine that starts its workers on demand starts them here)
    rate(max(SCALING_WORKERS))
    return {"rates": {w: rate(w) for w in SCALING_WORKERS}}


@tl.compute
def link_rows(url: str, sample_out: Any) -> None:
    """One linked image, fetched and checked by the worker (``verify=True``)."""
    sample_out.images.append(tl.link(url, creds_key="raw"))


def _run_child(kind: str, a: dict) -> dict:
    """One measurement in a fresh process; its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cluster_bench", "--child", kind, json.dumps(a)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{kind} {a.get('scheduler')} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _small_jpeg(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f}  ({', '.join(f'{v:.1f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scaling-items", type=int, default=480)
    parser.add_argument("--only", choices=["seed", "scaling"], help="one of the two figures")
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS), help="a subset")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (a smoke test)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, a = args.child[0], json.loads(args.child[1])
        result = (_child_seed if kind == "seed" else _child_scaling)(a)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.quick:
        args.images, args.repeats, args.scaling_items = 40, 1, 24

    from benchmarks.__main__ import data_dir
    from benchmarks.venvs import default_cache

    data = data_dir(default_cache(), args.images, print)
    ann, image_dir = str(data / "instances.json"), str(data / "images")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "scaling":
            _seed(args, ann, image_dir, tmp)
        if args.only != "seed":
            _scaling(args, tmp)


def _seed(args: argparse.Namespace, ann: str, image_dir: str, tmp: str) -> None:
    seed: dict[str, list[float]] = {s: [] for s in SCHEDULERS}
    for r in range(args.repeats):
        for s in SCHEDULERS:
            a = dict(scheduler=s, workers=2, n=args.images, ann=ann, image_dir=image_dir)
            a["out"] = f"{tmp}/seed-{s}-{r}"
            seed[s].append(_run_child("seed", a)["items_per_s"])
    print(f"seed workflow, {args.images} images, 2 workers (items/s, median (runs)):")
    base = statistics.median(seed["processed"])
    for s in SCHEDULERS:
        ratio = statistics.median(seed[s]) / base
        verdict = "" if s == "processed" else f"  {ratio:.2f}x processed (target >= 0.7x)"
        print(f"  {s:<10}{_fmt(seed[s])}{verdict}")


def _scaling(args: argparse.Namespace, tmp: str) -> None:
    chosen = args.schedulers.split(",")
    with moto_server("raw") as port:
        client = boto3_client(port)
        # small images: the time an item takes is the proxy's latency, not the CPU's
        for i in range(60):
            client.put_object(Bucket="raw", Key=f"img/{i}.jpg", Body=_small_jpeg(i))
        urls = [f"s3://raw/img/{i % 60}.jpg" for i in range(args.scaling_items)]
        with slow_proxy(port, args.latency_ms / 1000) as endpoint:
            creds = {**s3_creds(port), "endpoint_url": endpoint}
            rates: dict[str, dict[int, list[float]]] = {
                s: {w: [] for w in SCALING_WORKERS} for s in chosen
            }
            for r in range(args.repeats):
                for s in chosen:
                    a = dict(scheduler=s, urls=urls, creds=creds, out=f"{tmp}/scale-{s}-{r}")
                    for w, rate in _run_child("scaling", a)["rates"].items():
                        rates[s][int(w)].append(rate)
    print(
        f"\nscaling, {args.scaling_items} linked 32x32 JPEGs verified through a proxy adding "
        f"{args.latency_ms:g} ms per request (items/s; efficiency = rate / (w * rate at 1)):"
    )
    for s in chosen:
        one = statistics.median(rates[s][1])
        for w in SCALING_WORKERS:
            eff = statistics.median(rates[s][w]) / (w * one)
            mark = "" if w == 1 else f"  efficiency {eff:.2f} (target >= 0.8)"
            print(f"  {s:<10} {w} workers {_fmt(rates[s][w])}{mark}")


if __name__ == "__main__":
    main()
