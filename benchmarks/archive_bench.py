"""Archive ingest (``ingest_archive``) against its three steps done by hand.

A ``.tar.gz`` of the 2,000 benchmark JPEGs (``jpeg-2000``, made by
``folder_ingest_bench``; the archive is cached beside it) is served over loopback HTTP
by a separate ``http.server`` process. Measured, alternating run by run: one
``ingest_archive(url, ...)`` call, against download (urllib to a file) + ``tar xzf`` +
``ingest_classification`` of the extracted folder. The medians and their ratio are
printed (target: at most 1.3x).

    .venv/bin/python -m benchmarks.archive_bench --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.folder_ingest_bench import DATA, _jpegs
from tensorlake.ingestion.archive import ingest_archive
from tensorlake.ingestion.classification import ingest_classification

ARCHIVE = DATA / "jpeg-2000.tar.gz"


def _archive() -> Path:
    if ARCHIVE.exists():
        return ARCHIVE
    root = _jpegs()
    partial = ARCHIVE.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for path in sorted(root.rglob("*.jpg")):
            tar.add(path, arcname=f"jpeg-2000/{path.relative_to(root).as_posix()}")
    partial.rename(ARCHIVE)
    return ARCHIVE


def _serve(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*args, "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the HTTP server did not start")


def _one_call(url: str, work: Path, workers: int) -> float:
    started = time.perf_counter()
    ingest_archive(
        url,
        str(work / "ds"),
        num_workers=workers,
        progressbar=False,
        summary=False,
        tmp_dir=work,
    )
    return time.perf_counter() - started


def _three_steps(url: str, work: Path, workers: int) -> float:
    started = time.perf_counter()
    path = work / "a.tar.gz"
    with urllib.request.urlopen(url) as response, open(path, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)
    out = work / "x"
    out.mkdir()
    subprocess.run(["tar", "xzf", str(path), "-C", str(out)], check=True)
    ingest_classification(
        str(out / "jpeg-2000"),
        str(work / "ds"),
        num_workers=workers,
        progressbar=False,
        summary=False,
    )
    shutil.rmtree(out)
    path.unlink()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    archive = _archive()
    proc, port = _serve(archive.parent)
    url = f"http://127.0.0.1:{port}/{archive.name}"
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for _ in range(args.repeats):
            for measure, into in ((_one_call, ours), (_three_steps, theirs)):
                with tempfile.TemporaryDirectory(prefix="tl-archive-bench-") as work:
                    into.append(measure(url, Path(work), args.workers))
    finally:
        proc.kill()
        proc.wait()
    a, b = statistics.median(ours), statistics.median(theirs)
    size = os.path.getsize(archive) / 2**20
    print(f"archive: {archive} ({size:.0f} MiB, 2000 JPEGs), workers={args.workers}")
    print(f"ingest_archive (one call):                    {a:.2f}s  runs {_fmt(ours)}")
    print(f"download + tar xzf + ingest_classification:   {b:.2f}s  runs {_fmt(theirs)}")
    print(f"ratio: {a / b:.2f}x (target <= 1.3x)")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
