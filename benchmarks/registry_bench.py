"""Sharing (issue: push / pull / register): ``tensorlake push`` and ``pull`` against
``aws s3 sync`` of the same directory, the incremental push, and ``tensorlake ls``.

    .venv/bin/python -m benchmarks.registry_bench [--repeats 3] [--only sync|small]

- ``push`` / ``pull``: the benchmark's 2,000-image COCO dataset (``coco-2000-seed0``
  ingested with ``tl.ingest_coco`` once, into ``<cache>/data/registry-coco-2000``) pushed
  to a fresh remote prefix on the loopback moto server and pulled into a fresh home;
  beside it, ``aws s3 sync`` of the same dataset directory up and down (the AWS CLI v1
  venv ``benchmarks/upload_bench.py`` makes). Each run is a fresh process timed from
  outside (start-up included), the two tools alternating. Target: tensorlake's
  throughput >= 0.8x the AWS CLI's both ways (ratio of the medians).
- ``incremental``: one row appended and committed, then ``tensorlake push``: seconds (in
  process) and bytes uploaded (targets < 1 s, < 100 KB).
- ``ls_1000``: ``tensorlake ls`` (a fresh process) in a home of 1,000 small datasets,
  after a first listing cached their summaries (target < 1 s); and ``registry.ls()``
  in process.

Don't run it while anything else uses the CPU: moto, the client and its threads share
the 2 cores. Default allocator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import ROOT, delete_prefix, moto_server
from benchmarks.upload_bench import _awscli, _coco_images, _env, _run_aws
from benchmarks.venvs import default_cache

BUCKET = "bench"
PUSH = """
import json, sys, time
import tensorlake as tl
t = time.perf_counter()
r = tl.registry.{verb}("coco", progressbar=False)
print(json.dumps({{"seconds": time.perf_counter() - t, "text": str(r)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["sync", "small"], help="one part of the benchmark")
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args()
    print(f"{args.repeats} runs each, medians; 2 cpus; default allocator")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "small":
            _sync(args.cache, Path(tmp), args.repeats)
        if args.only != "sync":
            _incremental(Path(tmp), args.repeats)
            _ls(Path(tmp), args.repeats)


def _dataset(cache: Path) -> Path:
    import tensorlake as tl

    dest = cache / "data" / "registry-coco-2000"
    if (dest / "DONE").exists():
        return dest
    images = _coco_images(cache)
    print(f"ingesting {images} into {dest} (once)", flush=True)
    tl.ingest_coco(
        images, [images.parent / "instances.json"], dest, overwrite=True, progressbar=False,
        summary=False, num_workers=2,
    )  # fmt: skip
    (dest / "DONE").write_text("")
    return dest


def _sync(cache: Path, tmp: Path, repeats: int) -> None:
    source = _dataset(cache)
    files = [p for p in source.rglob("*") if p.is_file() and p.name != "DONE"]
    mb = sum(p.stat().st_size for p in files) / 1e6
    aws, versions = _awscli(cache, False)
    print(f"dataset: {source} ({len(files)} files, {mb:.1f} MB); AWS CLI {versions}")
    rows: dict[str, list[float]] = {k: [] for k in ("push", "aws_up", "pull", "aws_down")}
    with moto_server(BUCKET) as port:
        endpoint = f"http://127.0.0.1:{port}"
        env = _env(tmp, None)
        for k in range(repeats):
            home = tmp / f"home-{k}"
            (home / "datasets").mkdir(parents=True)
            os.symlink(source, home / "datasets" / "coco")
            tl_env = {
                **env,
                "TENSORLAKE_HOME": str(home),
                "TENSORLAKE_REMOTE": f"s3://{BUCKET}/tl-{k}",
                "TENSORLAKE_ENDPOINT_URL": endpoint,
            }
            order = ["tl", "aws"] if k % 2 == 0 else ["aws", "tl"]
            for system in order:
                if system == "tl":
                    rows["push"].append(_timed_tl("push", tl_env))
                    pulled = {**tl_env, "TENSORLAKE_HOME": str(tmp / f"pulled-{k}")}
                    rows["pull"].append(_timed_tl("pull", pulled))
                elif aws is not None:
                    url = f"s3://{BUCKET}/aws-{k}"
                    rows["aws_up"].append(_run_aws(aws, source, url, endpoint, env))
                    down = tmp / f"aws-down-{k}"
                    rows["aws_down"].append(_aws_down(aws, url, down, endpoint, env))
            (home / "datasets" / "coco").unlink()
            for prefix in (f"tl-{k}", f"aws-{k}"):
                delete_prefix(port, BUCKET, prefix)
            print(
                f"run {k + 1}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in rows.items() if v),
                flush=True,
            )
    for ours, theirs in (("push", "aws_up"), ("pull", "aws_down")):
        line = f"{ours:5s} {mb / statistics.median(rows[ours]):6.1f} MB/s {_spread(rows[ours])}"
        if rows[theirs]:
            ratio = statistics.median(rows[theirs]) / statistics.median(rows[ours])
            verdict = "met" if ratio >= 0.8 else "NOT met"
            line += (
                f"; aws s3 sync {mb / statistics.median(rows[theirs]):6.1f} MB/s "
                f"{_spread(rows[theirs])}; ratio {ratio:.2f}x (target >= 0.8x: {verdict})"
            )
        print(line)


def _timed_tl(verb: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PUSH.format(verb=verb)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tensorlake {verb} failed: {proc.stderr[-2000:]}")
    return wall


def _aws_down(aws: Path, url: str, dest: Path, endpoint: str, env: dict) -> float:
    cmd = [str(aws), "s3", "sync", url, str(dest), "--endpoint-url", endpoint, "--only-show-errors"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"aws s3 sync failed: {proc.stderr[-2000:]}")
    return wall


def _small(home: Path, name: str, rows: int) -> object:
    import tensorlake as tl

    ds = tl.empty(home / "datasets" / name)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        for i in range(rows):
            ds.append({"images": np.full((32, 32, 3), i % 255, np.uint8), "labels": i % 2})
    ds.commit("rows")
    return ds


def _incremental(tmp: Path, repeats: int) -> None:
    import tensorlake as tl

    seconds, sizes = [], []
    with moto_server(BUCKET) as port:
        os.environ.update(
            TENSORLAKE_HOME=str(tmp / "inc"),
            TENSORLAKE_REMOTE=f"s3://{BUCKET}/inc",
            TENSORLAKE_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
        ds = _small(tmp / "inc", "inc", 2000)
        tl.registry.push("inc", progressbar=False)
        for _ in range(repeats):
            with ds:  # type: ignore[attr-defined]
                ds.append({"images": np.zeros((32, 32, 3), np.uint8), "labels": 1})  # type: ignore[attr-defined]
            ds.commit("one row")  # type: ignore[attr-defined]
            report = tl.registry.push("inc", progressbar=False)
            seconds.append(report.seconds)
            sizes.append(report.uploaded_bytes)
    med = statistics.median(seconds)
    print(
        f"incremental push (2,000-row dataset + 1 row): {med:.3f} s "
        f"(runs {', '.join(f'{s:.3f}' for s in seconds)}; target < 1 s: "
        f"{'met' if med < 1 else 'NOT met'}), {statistics.median(sizes) / 1000:.1f} KB uploaded "
        f"(target < 100 KB: {'met' if statistics.median(sizes) < 100_000 else 'NOT met'})"
    )


def _ls(tmp: Path, repeats: int) -> None:
    import tensorlake as tl

    home = tmp / "many"
    os.environ["TENSORLAKE_HOME"] = str(home)
    started = time.perf_counter()
    for i in range(1000):
        _small(home, f"ds-{i:04d}", 2).close()  # type: ignore[attr-defined]
    made = time.perf_counter() - started
    started = time.perf_counter()
    assert len(tl.registry.ls()) == 1000
    first = time.perf_counter() - started
    inner, outer = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        assert len(tl.registry.ls()) == 1000
        inner.append(time.perf_counter() - started)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "tensorlake.cli.main", "ls", "--json"],
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        outer.append(time.perf_counter() - started)
        assert len(json.loads(proc.stdout)) == 1000, proc.stderr
    med = statistics.median(outer)
    print(
        f"ls_1000: `tensorlake ls --json` {med:.2f} s {_spread(outer)} (target < 1 s: "
        f"{'met' if med < 1 else 'NOT met'}); registry.ls() in process "
        f"{statistics.median(inner) * 1000:.0f} ms; the first listing (summaries cached) "
        f"{first:.1f} s; making the 1,000 datasets {made:.0f} s"
    )


def _spread(values: list[float]) -> str:
    return f"({', '.join(f'{v:.2f}' for v in values)} s)"


if __name__ == "__main__":
    main()
