"""Uploading a folder to S3: ``tl.upload`` against ``aws s3 sync`` (issue 15).

    .venv/bin/python -m benchmarks.upload_bench [--repeats 3] [--workers N] [--images DIR]

Both upload the benchmark's 2,000 COCO-style JPEGs (``coco-2000-seed0/images`` under
``~/.cache/tensorlake-bench/data``, ~172 MB, 40-120 KB each; made by ``python -m
benchmarks`` or, when missing, here) to the same loopback moto server (``python -m
moto.server``, as ``benchmarks/harness.py`` starts it), each run into a fresh prefix,
checked (2,000 objects) and deleted after. Each run is a fresh process, timed from
outside, start-up included (what a user waits for): tensorlake as ``python -c`` calling
``upload``, which also reports its own seconds (imports excluded); the AWS CLI (v1, in
its own venv under ``<cache>/venvs/awscli``, created once as ``benchmarks/venvs.py``
does for the peers) as ``aws s3 sync DIR s3://... --endpoint-url ... --only-show-errors``.
The two alternate run by run. After each upload the same command runs again on the
same prefix, with nothing to send: tensorlake lists and compares sizes and MD5s (it
reads every file), ``aws s3 sync`` lists and compares sizes and modification times.

Concurrency: each tool's default (tensorlake 8 requests, the AWS CLI 10) unless
``--workers N`` sets both (the AWS CLI's ``max_concurrent_requests`` through a
config file). Target: tensorlake's upload throughput >= 0.8x the AWS CLI's, judged
on the ratio of the medians; the median of the run-by-run ratios is printed beside
it. Don't run it while anything else uses the CPU: moto, the uploader and its
threads share this machine's 2 cores, so the figures are of client and server
together, and they drift with other load.
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

from benchmarks.harness import ROOT, boto3_client, delete_prefix, moto_server
from benchmarks.venvs import default_cache, installed_versions

BUCKET = "bench"
AWSCLI = ("awscli",)
MARKER = "tensorlake-bench.json"
TL_CODE = """
import json, sys
from tensorlake.ingestion.upload import upload
workers = int(sys.argv[4]) if sys.argv[4] != "-" else None
r = upload(sys.argv[1], sys.argv[2], {"endpoint_url": sys.argv[3]}, workers, progressbar=False)
print(json.dumps({"seconds": r.seconds, "uploaded": r.files_uploaded, "skipped": r.files_skipped}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="both tools' concurrency")
    parser.add_argument("--images", type=Path, default=None, help="the folder to upload")
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--reinstall", action="store_true", help="recreate the awscli venv")
    args = parser.parse_args()

    images = args.images or _coco_images(args.cache)
    files = [p for p in images.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    aws, versions = _awscli(args.cache, args.reinstall)
    print(f"{len(files):,} files, {total / 1e6:.1f} MB, under {images}")
    print(f"AWS CLI: {_aws_version(aws)}" if aws else f"AWS CLI: not installed: {versions}")
    print(f"concurrency: {args.workers or 'each default (tensorlake 8, AWS CLI 10)'}\n")

    rows: dict[str, list[float]] = {
        k: [] for k in ("tl", "tl_inner", "tl_noop", "aws", "aws_noop", "ratio")
    }
    with moto_server(BUCKET) as port, tempfile.TemporaryDirectory() as tmp:
        endpoint = f"http://127.0.0.1:{port}"
        env = _env(Path(tmp), args.workers)
        client = boto3_client(port)
        for k in range(args.repeats):
            order = ["tl", "aws"] if k % 2 == 0 else ["aws", "tl"]
            for system in order:
                if system == "aws" and aws is None:
                    continue
                prefix = f"{system}-{k}"
                url = f"s3://{BUCKET}/{prefix}"
                if system == "tl":
                    wall, out = _run_tl(images, url, endpoint, args.workers, env)
                    assert out["uploaded"] == len(files), out
                    rows["tl"].append(wall)
                    rows["tl_inner"].append(out["seconds"])
                    _check(client, prefix, len(files))
                    wall, out = _run_tl(images, url, endpoint, args.workers, env)
                    assert out["skipped"] == len(files), out
                    rows["tl_noop"].append(wall)
                else:
                    assert aws is not None
                    rows["aws"].append(_run_aws(aws, images, url, endpoint, env))
                    _check(client, prefix, len(files))
                    rows["aws_noop"].append(_run_aws(aws, images, url, endpoint, env))
                delete_prefix(port, BUCKET, prefix)
            if rows["aws"] and len(rows["aws"]) == len(rows["tl"]):
                rows["ratio"].append(rows["aws"][-1] / rows["tl"][-1])
            line = ", ".join(
                f"{name} {v[-1]:.2f} s" for name, v in rows.items() if v and name != "ratio"
            )
            print(f"run {k + 1}: {line}", flush=True)

    mb = total / 1e6
    print(f"\nupload of {len(files):,} files ({mb:.1f} MB), median (min-max) of {args.repeats}:")
    _print("tensorlake (tl.upload)", rows["tl"], mb, len(files))
    _print("  its own seconds (no start-up)", rows["tl_inner"], mb, len(files))
    if rows["aws"]:
        _print("aws s3 sync", rows["aws"], mb, len(files))
        ratio = statistics.median(rows["aws"]) / statistics.median(rows["tl"])
        by_run = statistics.median(rows["ratio"])
        verdict = "met" if ratio >= 0.8 else "NOT met"
        print(
            f"tensorlake / aws s3 sync throughput: {ratio:.2f}x (run by run: {by_run:.2f}x); "
            f"target >= 0.8x: {verdict}"
        )
    print("\nagain, nothing to send:")
    print(f"  tensorlake (sizes + MD5s)    {_spread(rows['tl_noop'])}")
    if rows["aws_noop"]:
        print(f"  aws s3 sync (sizes + mtimes) {_spread(rows['aws_noop'])}")


def _coco_images(cache: Path) -> Path:
    images = cache / "data" / "coco-2000-seed0" / "images"
    if len(list(images.glob("*.jpg"))) >= 2000:
        return images
    sys.path.insert(0, str(ROOT / "examples"))
    from synthetic_coco import generate

    print(f"generating 2,000 images under {images.parent} (once)")
    generate(images.parent, 2000, seed=0)
    return images


def _awscli(cache: Path, reinstall: bool) -> tuple[Path | None, dict[str, str] | str]:
    """``(path of aws, versions)``, or ``(None, why)``: the venv made once, as the peers'."""
    root = cache / "venvs" / "awscli"
    marker = root / MARKER
    if marker.exists() and not reinstall:
        state = json.loads(marker.read_text())
        if state.get("requirements") == list(AWSCLI):
            if state.get("ok"):
                return root / "bin" / "aws", state["versions"]
            return None, state.get("reason", "install failed earlier")
    print(f"[venv] creating {root} with {' '.join(AWSCLI)} (once; reused after)")
    python = root / "bin" / "python"
    for step in (
        [sys.executable, "-m", "venv", "--clear", str(root)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *AWSCLI],
    ):
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            reason = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            root.mkdir(parents=True, exist_ok=True)
            marker.write_text(
                json.dumps({"requirements": list(AWSCLI), "ok": False, "reason": reason})
            )
            return None, reason
    versions = installed_versions(python, AWSCLI)
    marker.write_text(json.dumps({"requirements": list(AWSCLI), "ok": True, "versions": versions}))
    return root / "bin" / "aws", versions


def _aws_version(aws: Path) -> str:
    """``aws --version``: the CLI, and the botocore it vendors (awscli 1.4x ships its own)."""
    proc = subprocess.run([str(aws), "--version"], capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip()


def _env(tmp: Path, workers: int | None) -> dict[str, str]:
    """Both tools' environment: the loopback server's keys, no real AWS config."""
    config = tmp / "aws-config"
    text = "[default]\nregion = us-east-1\n"
    if workers:
        text += f"s3 =\n    max_concurrent_requests = {workers}\n"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=str(ROOT),
    )
    return env


def _run_tl(
    images: Path, url: str, endpoint: str, workers: int | None, env: dict
) -> tuple[float, dict]:
    cmd = [sys.executable, "-c", TL_CODE, str(images), url, endpoint, str(workers or "-")]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tensorlake failed: {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def _run_aws(aws: Path, images: Path, url: str, endpoint: str, env: dict) -> float:
    cmd = [
        str(aws),
        "s3",
        "sync",
        str(images),
        url,
        "--endpoint-url",
        endpoint,
        "--only-show-errors",
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"aws s3 sync failed: {proc.stderr[-2000:]}")
    return wall


def _check(client, prefix: str, count: int) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/")
    found = sum(len(page.get("Contents", [])) for page in pages)
    assert found == count, f"{found} objects under {prefix}/, expected {count}"


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def _print(name: str, seconds: list[float], mb: float, files: int) -> None:
    med = statistics.median(seconds)
    rates = sorted(mb / s for s in seconds)
    print(
        f"  {name:<32} {mb / med:6.1f} MB/s ({rates[0]:.1f}-{rates[-1]:.1f}), "
        f"{files / med:5.0f} files/s, {_spread(seconds)}"
    )


if __name__ == "__main__":
    main()
