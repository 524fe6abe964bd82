"""COCO ingest: ``tl.ingest_coco`` against the seed's hand-written transform (issue 15).

    .venv/bin/python -m benchmarks.coco_ingest_bench [--repeats 5] [--images 2000]

Both ingest the benchmark's COCO set (``coco-2000-seed0`` under
``~/.cache/tensorlake-bench/data``: ``images/`` and ``instances.json``, 640x480 JPEGs
with 1-8 polygons each; made here when missing) into a fresh local dataset with 2
workers and no checkpoints:

- seed: ``benchmarks/peers/tensorlake_peer.py``'s ``coco_to_tl``, the seed workflow on
  tensorlake (pycocotools ``annToMask`` per object into a dense (H, W, N) mask, stored
  bit-packed + lz4);
- ``ingest_coco``: one call (masks stored as COCO RLE, ``compression/coco_rle.py``).

Each run is a fresh process, timed from before the annotations are read (``COCO()``
for the seed, inside the call for ``ingest_coco``) until the dataset is committed;
imports excluded. The two alternate run by run. Printed: the medians in items/s, the
ratio of the medians (target >= 1.5x) with the run-by-run ratios, and the stored bytes
of each dataset (the images are the same bytes in both). The machine's 2 cores are
shared by the workers and the writer: run it alone, other load moves the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("seed", "ingest_coco")


def _seed(data: Path, annotations: Path, dest: Path, n: int) -> int:
    import tensorlake as tl
    from benchmarks.peers import _coco
    from benchmarks.peers.tensorlake_peer import _create, coco_to_tl

    coco = _coco.load(str(annotations))
    names, index_of = _coco.classes(coco)
    ds = tl.empty(dest)
    _create(ds, names, None)
    transform = coco_to_tl(coco_api=coco, image_dir=str(data / "images"), index_of=index_of)
    transform.eval(_coco.image_ids(coco, n), ds, num_workers=2, progressbar=False)
    ds.commit("ingested")
    rows = len(ds)
    ds.close()
    return rows


def _ingest_coco(data: Path, annotations: Path, dest: Path, n: int) -> int:
    from tensorlake.ingestion.coco import ingest_coco

    ds = ingest_coco(
        data / "images", annotations, dest, num_workers=2, progressbar=False, summary=False
    )
    rows = len(ds)
    ds.close()
    return rows


def _one(system: str, data: Path, n: int) -> dict:
    """One run, in this (fresh) process."""
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as scratch:
        annotations = data / "instances.json"
        if system == "ingest_coco":  # the first n images, as the seed takes them (untimed)
            coco = json.loads(annotations.read_text())
            keep = set(sorted(i["id"] for i in coco["images"])[:n])
            if len(keep) < len(coco["images"]):
                coco["images"] = [i for i in coco["images"] if i["id"] in keep]
                coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
                annotations = Path(scratch) / "instances.json"
                annotations.write_text(json.dumps(coco))
        dest = Path(scratch) / "ds"
        run = _seed if system == "seed" else _ingest_coco
        started = time.perf_counter()
        rows = run(data, annotations, dest, n)
        seconds = time.perf_counter() - started
        stored = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return {"seconds": seconds, "rows": rows, "bytes": stored}


def _measure(system: str, data: Path, n: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.coco_ingest_bench", "--one", system]
    cmd += ["--data", str(data), "--images", str(n)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{system} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rows"] != n:
        raise SystemExit(f"{system} ingested {result['rows']} rows, expected {n}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.data, args.images)))
        return

    from benchmarks import venvs
    from benchmarks.__main__ import data_dir

    data = data_dir(venvs.default_cache(), max(args.images, 2000), print)
    print(
        f"{args.images} COCO images, 2 workers, no checkpoints; {args.repeats} fresh-process "
        "runs each, alternating\n",
        flush=True,
    )
    runs: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
    for _ in range(args.repeats):
        for system in SYSTEMS:
            runs[system].append(_measure(system, data, args.images))
    rates = {s: [args.images / r["seconds"] for r in runs[s]] for s in SYSTEMS}
    for system in SYSTEMS:
        r = rates[system]
        print(
            f"  {system:<12} {statistics.median(r):7.0f} items/s (min {min(r):.0f}, max "
            f"{max(r):.0f})   stored {runs[system][-1]['bytes'] / 1e6:7.1f} MB"
        )
    ratio = statistics.median(rates["ingest_coco"]) / statistics.median(rates["seed"])
    by_run = sorted(a / b for a, b in zip(rates["ingest_coco"], rates["seed"]))
    met = "met" if ratio >= 1.5 else "NOT met"
    print(
        f"\n  ingest_coco / seed: {ratio:.2f}x (target >= 1.5x: {met}; run by run "
        f"{', '.join(f'{r:.2f}' for r in by_run)})"
    )


if __name__ == "__main__":
    main()
