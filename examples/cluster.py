"""The same ``eval`` on Ray and on Dask, writing to S3, then read back by the cluster.

    python examples/cluster.py [--scheduler ray|dask] [--url s3://bucket/prefix --endpoint-url URL]

Without ``--url`` a local S3 server (moto, from the test extra) stands in for the bucket;
with it, the dataset goes to that bucket on AWS or any S3-compatible endpoint (keys from
the AWS_* variables or a profile). A local cluster of 2 CPUs is started here; on a real
cluster, connect first (``ray.init(address="auto")`` or ``distributed.Client(address)``)
and the same code runs there. The transform makes synthetic images with labels and an
embedding; the eval checkpoints every 100 items; then ``ds.to_dask()`` /
``ds.to_ray()`` map over the dataset on the cluster's workers.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator

import numpy as np

import tensorlake as tl


@tl.compute
def make_row(i: int, sample_out: tl.SampleOut, size: int) -> None:
    rng = np.random.default_rng(i)
    sample_out.append(
        {
            "images": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            "labels": i % 10,
            "embeddings": rng.standard_normal(16).astype(np.float32),
        }
    )


@contextlib.contextmanager
def local_s3() -> Iterator[dict]:
    """A loopback S3 server with a bucket "demo"; yields the creds to reach it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    creds = {
        "endpoint_url": f"http://{host}:{port}",
        "aws_access_key_id": "demo",
        "aws_secret_access_key": "demo",
        "aws_region": "us-east-1",
    }
    boto3.client(
        "s3", region_name="us-east-1", **{k: v for k, v in creds.items() if k != "aws_region"}
    ).create_bucket(Bucket="demo")
    try:
        yield creds
    finally:
        server.stop()


def start_cluster(scheduler: str):
    """A local cluster of 2 CPUs (what ``eval`` would start by itself, made explicit)."""
    if scheduler == "ray":
        import ray

        ray.init(num_cpus=2, object_store_memory=200 << 20, include_dashboard=False)
        return ray.shutdown
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    return lambda: (client.close(), cluster.close())


def run(scheduler: str, url: str, creds: dict | None) -> None:
    ds = tl.empty(url, creds=creds, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=[str(d) for d in range(10)])
        ds.create_tensor("embeddings", htype="embedding", dtype="float32")
    report = make_row(size=32).eval(
        list(range(400)),
        ds,
        num_workers=2,
        scheduler=scheduler,
        checkpoint_interval=100,
        progressbar=False,
    )
    print(
        f"{scheduler}: {report.items} items -> {len(ds)} rows, {len(report.checkpoints)} checkpoints"
    )
    if scheduler == "dask":
        mean = ds.to_dask(["embeddings"])["embeddings"].mean(axis=0).compute()
        print(f"mean embedding over {len(ds)} rows, computed by dask: {mean.shape}")
        labels = (
            ds.to_dask(["labels"], as_bag=True)
            .pluck("labels")
            .map(lambda a: int(a[0]))
            .frequencies()
        )
        print("label counts:", dict(sorted(labels.compute())))
    else:
        rows = ds.to_ray(["labels"]).take_all()
        print(f"ray read {len(rows)} rows; labels of the first 3 by index:",
              [int(r["labels"][0]) for r in sorted(rows, key=lambda r: int(r["index"]))[:3]])  # fmt: skip
    assert np.array_equal(ds.labels.numpy().ravel(), np.arange(400) % 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scheduler", choices=["ray", "dask"], default="dask")
    parser.add_argument("--url", help="s3://bucket/prefix (default: a local S3 server)")
    parser.add_argument("--endpoint-url")
    args = parser.parse_args()
    stop = start_cluster(args.scheduler)
    try:
        if args.url:
            creds = {"endpoint_url": args.endpoint_url} if args.endpoint_url else None
            run(args.scheduler, args.url, creds)
        else:
            with local_s3() as creds:
                run(args.scheduler, "s3://demo/cluster-demo", creds)
    finally:
        stop()


if __name__ == "__main__":
    main()
