"""URL-manifest benchmark (issue 16): a generated JSON manifest of ``--urls`` s3:// image
URLs (default 1,000,000), validated, then ingested as ``link[image]`` rows (verify off).

    python -m benchmarks.manifest_bench [--urls 1000000]

Targets: validation alone >= 200,000 rows/s; validation + ingest <= 60 s with <= 1 GB
peak memory (RSS sampled every 10 ms by a thread, and the process's peak RSS from the
kernel; PSS at the end). A manifest may hold 500,000 items (``MAX_ITEMS``, Encord's
limit): the benchmark raises it to ``--urls`` so one manifest reaches the 1,000,000-URL
limit with images alone.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

import psutil


def _write_manifest(path: Path, n: int) -> None:
    """Written in pieces, so generating it adds little to the peak."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"images": [\n')
        step = 50_000
        for start in range(0, n, step):
            f.write(
                ",\n".join(
                    f'{{"objectUrl": "s3://bench-raw/images/{i:07d}.jpg", '
                    f'"title": "image {i}", "clientMetadata": {{"shard": {i % 16}}}}}'
                    for i in range(start, min(n, start + step))
                )
            )
            if start + step < n:
                f.write(",\n")
        f.write('\n], "skip_duplicate_urls": false}\n')


class _Peak:
    """The highest RSS seen by a sampling thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(0.01)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=1_000_000)
    args = parser.parse_args()

    import tensorlake as tl
    from tensorlake.ingestion import manifest_reading as manifest

    manifest.MAX_ITEMS = max(manifest.MAX_ITEMS, args.urls)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "register.json"
        _write_manifest(path, args.urls)
        size = path.stat().st_size
        base = psutil.Process().memory_info().rss
        print(
            f"manifest: {args.urls:,} URLs, {size / 1e6:.0f} MB; RSS before {base / 2**20:.0f} MiB"
        )
        with _Peak() as peak:
            t0 = time.perf_counter()
            found = manifest.read_manifest(path)
            validate_s = time.perf_counter() - t0
            assert len(found) == args.urls and not found.rejected
            del found
            t1 = time.perf_counter()
            ds = tl.ingest_manifest(path, Path(tmp) / "ds", progressbar=False, summary=False)
            ingest_s = time.perf_counter() - t1
            assert len(ds) == args.urls
        pss = psutil.Process().memory_full_info().pss
        kernel_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rate = args.urls / validate_s
    total = validate_s + ingest_s
    print(f"validation alone      {validate_s:6.2f} s  {rate:,.0f} rows/s   (target >= 200,000)")
    print(f"ingest (read+write)   {ingest_s:6.2f} s")
    print(f"validation + ingest   {total:6.2f} s   (target <= 60)")
    print(f"peak RSS (sampled)    {peak.peak / 2**20:6.0f} MiB (target <= 1024)")
    print(f"peak RSS (kernel)     {kernel_peak / 2**20:6.0f} MiB")
    print(f"PSS at the end        {pss / 2**20:6.0f} MiB")


if __name__ == "__main__":
    main()
