"""Linked-data benchmarks (issue: links), against moto's S3 server on loopback.

    python -m benchmarks.links_bench [--links 10000] [--reads 500] [--repeats 3]

  append_verify_off  append N ``tl.link`` rows (verify=False, no shape or info tensors):
                     no I/O per row
  append_verify_on   the same with verify=True (+ shape and sample-info tensors): each
                     object is fetched and its header checked
  read_sequential    ``ds.images[i].numpy()`` for 500 linked images, one at a time
  read_concurrent    ``ds.images[0:500].numpy(aslist=True)``: fetched on a thread pool

Targets: verify off >= 20x verify on; concurrent reads >= 4x sequential. Figures are
medians of ``--repeats`` runs in this process (min-max shown).

moto on loopback answers in ~1 ms but serves only ~100 GETs/s (measured here with bare
boto3: 94/s sequential, 117/s with 4 threads), so it cannot show what concurrency buys
against S3, whose cost is latency (tens of ms to first byte), not throughput. The reads
therefore run twice: straight to moto, and through a loopback proxy that adds
``--latency-ms`` (default 30) to every request, an S3-like round trip.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    args = parser.parse_args()

    from synthetic_coco import generate

    import tensorlake as tl
    from benchmarks.harness import boto3_client, moto_server, s3_creds, slow_proxy

    with moto_server("raw") as port:
        creds = s3_creds(port)
        client = boto3_client(port)
        with tempfile.TemporaryDirectory() as tmp:
            n_files = min(args.reads, 200)
            generate(Path(tmp) / "coco", n_files)
            files = sorted((Path(tmp) / "coco" / "images").glob("*.jpg"))
            for f in files:
                client.put_object(Bucket="raw", Key=f"img/{f.name}", Body=f.read_bytes())
            urls = [f"s3://raw/img/{files[i % n_files].name}" for i in range(args.links)]
            print(
                f"{args.links:,} links over {n_files} S3 objects (~85 KB JPEGs), moto on :{port}\n"
            )

            def dataset(name: str, **kw):
                ds = tl.empty(str(Path(tmp) / name), overwrite=True)
                ds.create_tensor("images", htype="link[image]", sample_compression="jpg", **kw)
                ds.add_creds_key("raw")
                ds.populate_creds("raw", creds)
                return ds

            def append(n: int, **kw) -> float:
                ds = dataset("append", **kw)
                t = time.perf_counter()
                with ds:
                    ds.images.extend([tl.link(u, creds_key="raw") for u in urls[:n]])
                return n / (time.perf_counter() - t)

            off = [
                append(
                    args.links,
                    verify=False,
                    create_shape_tensor=False,
                    create_sample_info_tensor=False,
                )
                for _ in range(args.repeats)
            ]
            n_on = min(args.links, 1000)
            on = [append(n_on) for _ in range(args.repeats)]
            print(_row("append verify off", off, "links/s"))
            print(_row(f"append verify on ({n_on})", on, "links/s"))
            print(
                f"  ratio off/on: {statistics.median(off) / statistics.median(on):.1f}x (target >= 20x)\n"
            )

            ds = dataset("read")
            with ds:
                ds.images.extend([tl.link(u, creds_key="raw") for u in urls[: args.reads]])
            for latency in (0, args.latency_ms):
                with slow_proxy(port, latency / 1000) as endpoint:
                    ds.populate_creds("raw", {**creds, "endpoint_url": endpoint})
                    seq, conc = [], []
                    for _ in range(args.repeats):
                        t = time.perf_counter()
                        for i in range(args.reads):
                            ds.images[i].numpy()
                        seq.append(args.reads / (time.perf_counter() - t))
                        t = time.perf_counter()
                        ds.images[0 : args.reads].numpy(aslist=True)
                        conc.append(args.reads / (time.perf_counter() - t))
                print(f"reads, {latency:g} ms added per request:")
                print(_row("  read sequential", seq, "images/s"))
                print(_row("  read concurrent", conc, "images/s"))
                ratio = statistics.median(conc) / statistics.median(seq)
                print(f"  ratio: {ratio:.1f}x (target >= 4x)")


def _row(name: str, values: list[float], unit: str) -> str:
    return (
        f"{name:<28} {statistics.median(values):>10,.0f} {unit}  "
        f"(min {min(values):,.0f}, max {max(values):,.0f})"
    )


if __name__ == "__main__":
    main()
