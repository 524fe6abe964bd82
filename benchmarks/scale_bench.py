"""The format at scale (issue 21): a simulated dataset of up to 100,000,000 rows.

    python -m benchmarks.scale_bench                      # 1M, 10M, 100M rows; ~3 minutes
    python -m benchmarks.scale_bench --quick              # tiny scales, 1 run (the test's)
    python -m benchmarks.scale_bench --scales 1e6,1e8 --repeats 7 --out results.txt

No row data: each dataset is written directly through the engine's format layer
(``engine/format``: chunk tables cut into segments, manifests, commit objects, the
branch head, ``tensorlake.json``) with random chunk ids and no chunk objects, in exactly
the form the engine stores, so ``tl.load`` opens it as a real dataset. Per scale: 4 int64
tensors of ``rows`` rows in ``rows / 2000`` chunks each (100M rows: 50,000 chunks per
tensor), built by ``--commits`` commits of equal appends (commit ``k`` holds the first
``k / commits`` of every table), so versions far apart exist.

Each figure is the median of ``--repeats`` fresh processes (run-by-run values beside it),
timed inside the process after its imports, through a storage wrapper that counts the
bytes every get returns and every put stores:

  open + len   ``tl.load(path, read_only=True)`` and ``len(ds)``
  locate       the chunk-table lookup of the read path (``locate`` then the entry) for
               2,000 random rows, per row, after a first lookup that loads what it needs
  commit       ``ds.commit()`` after appending one row (one new chunk) to one tensor:
               time and bytes stored (the chunk, table segments, commit object, head)
  checkout     ``ds.checkout(<first commit>)`` from the head
  diff         ``ds.diff(a, b)`` between commits ``d`` apart, for d = 1, 10 and all but
               one: time and bytes read, which should follow ``d``, not the dataset

Targets (issue 21) are judged at the largest scale; a figure that must not grow with the
dataset is also judged on its ratio between the largest and the smallest scale.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "2026-12-04-scale.txt"
ROWS_PER_CHUNK = 2000
TENSORS = 4
HEADER_NBYTES = 96  # a chunk header's size: the entries need one, nothing reads it
LOCATE_ROWS = 2000
SCHEME = "benchcount"

# -- building -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Built:
    """A simulated dataset: where it is and its commits, oldest first."""

    path: Path
    rows: int
    chunks: int
    commits: list[str]
    build_s: float
    stored_bytes: int


def build(path: Path, rows: int, commits: int, tensors: int = TENSORS, seed: int = 0) -> Built:
    """Write a dataset of ``tensors`` int64 tensors of ``rows`` rows in ``rows /
    ROWS_PER_CHUNK`` chunks each, by ``commits`` commits of equal appends, through the
    format layer; the chunks themselves are never written."""
    import tensorlake as tl
    from tensorlake.engine.format import records, root
    from tensorlake.engine.format.changes import Changes
    from tensorlake.engine.format.chunk_table import ChunkTable
    from tensorlake.engine.format.manifest import Manifest, TensorMeta, TensorState
    from tensorlake.engine.format.segments import ManifestStore
    from tensorlake.storage import from_url

    started = time.perf_counter()
    chunks = max(1, rows // ROWS_PER_CHUNK)
    commits = max(1, min(commits, chunks))
    storage = from_url(str(path))
    root.create_dataset(storage, tl.__version__)
    parent: str = records.read_head(storage, records.DEFAULT_BRANCH)
    store = ManifestStore(storage)
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 2**63, size=(tensors, chunks), dtype=np.uint64)
    row_ends = np.minimum(np.arange(1, chunks + 1, dtype=np.int64) * ROWS_PER_CHUNK, rows)
    row_ends[-1] = rows
    nbytes = np.diff(row_ends, prepend=0) * 8 + HEADER_NBYTES
    made: list[str] = []
    for c in range(1, commits + 1):
        k = chunks * c // commits
        manifest = Manifest()
        for t in range(tensors):
            table = ChunkTable(
                {
                    "ids": ids[t, :k].copy(),
                    "row_ends": row_ends[:k].copy(),
                    "nbytes": nbytes[:k].copy(),
                    "header_nbytes": np.full(k, HEADER_NBYTES, dtype=np.int64),
                    "kind": np.zeros(k, dtype=np.uint8),
                    "staged": np.zeros(k, dtype=np.uint8),
                }
            )
            meta = TensorMeta(
                f"t{t}",
                htype="generic",
                dtype="int64",
                max_chunk_size=ROWS_PER_CHUNK * 8,
                length=int(row_ends[k - 1]),
                min_shape=(),
                max_shape=(),
            )
            manifest.tensors[meta.name] = TensorState(meta, table)
        stored = store.save(manifest)
        commit = records.Commit(
            records.new_commit_id(),
            parent,
            f"append {k} chunks per tensor",
            time.time(),
            "scale-bench",
            records.DEFAULT_BRANCH,
        )
        records.write_commit(storage, commit, stored, Changes())
        made.append(commit.id)
        parent = commit.id
    records.write_head(storage, records.DEFAULT_BRANCH, parent)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return Built(path, rows, chunks, made, time.perf_counter() - started, size)


# -- measuring, in a fresh process ----------------------------------------------------


def _counting_storage_class() -> Any:
    """A local storage that counts the bytes gets return and puts store (the scheme
    ``benchcount://<abs path>``, registered in the measured process only)."""
    from tensorlake.storage import LocalStorage

    class CountingLocal(LocalStorage):
        read = 0
        written = 0
        gets = 0
        puts = 0

        @classmethod
        def open_url(cls, url: str, creds: dict | None = None, read_only: bool = False) -> Any:
            return cls(url[len(SCHEME) + 3 :], read_only=read_only)

        def _get(self, key: str) -> bytes:
            data = super()._get(key)
            CountingLocal.read += len(data)
            CountingLocal.gets += 1
            return data

        def _get_range(self, key: str, start: int, end: int) -> bytes:
            data = super()._get_range(key, start, end)
            CountingLocal.read += len(data)
            CountingLocal.gets += 1
            return data

        def _get_many(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
            for key in keys:
                yield key, self.get(key)

        def _put(self, key: str, data: Any) -> None:
            super()._put(key, data)
            CountingLocal.written += len(data)
            CountingLocal.puts += 1

        def _put_parts(self, key: str, parts: Sequence[Any]) -> None:
            super()._put_parts(key, parts)
            CountingLocal.written += sum(len(p) for p in parts)
            CountingLocal.puts += 1

    return CountingLocal


def child(args: dict[str, Any]) -> dict[str, Any]:
    """One measurement (``args["op"]``), in this process; returns its figures."""
    import tensorlake as tl
    from tensorlake.api.dataset import core_of
    from tensorlake.storage.url import register_scheme

    counting = _counting_storage_class()
    register_scheme(SCHEME, counting)
    url = f"{SCHEME}://{args['path']}"
    op = args["op"]

    def counted() -> tuple[int, int, int]:
        return counting.read, counting.written, counting.gets

    if op == "open_len":
        t = time.perf_counter()
        n = len(tl.load(url, read_only=True))
        value = time.perf_counter() - t
        return {"s": value, "rows": n, "read": counting.read, "gets": counting.gets}
    if op == "locate":
        ds = tl.load(url, read_only=True)
        table = core_of(ds).engines["t0"].table
        rows = np.random.default_rng(1).integers(0, len(ds), LOCATE_ROWS).tolist()
        first = time.perf_counter()
        j = table.locate(rows[0])
        table[j]
        first_s = time.perf_counter() - first
        t = time.perf_counter()
        for row in rows:
            j = table.locate(row)
            ref = table[j]
        per_row = (time.perf_counter() - t) / len(rows)
        assert ref.row_end > rows[-1] >= table.row_start(j)
        return {"s": per_row, "first_s": first_s}
    if op == "checkout":
        ds = tl.load(url, read_only=True)
        before = counted()
        t = time.perf_counter()
        ds.checkout(args["commit"])
        value = time.perf_counter() - t
        assert ds.commit_id == args["commit"]
        return {"s": value, "read": counting.read - before[0], "gets": counting.gets - before[2]}
    if op == "diff":
        ds = tl.load(url, read_only=True)
        before = counted()
        t = time.perf_counter()
        d = ds.diff(args["a"], args["b"], as_dict=True)
        value = time.perf_counter() - t
        assert d is not None and d["base"] == args["a"], d
        return {"s": value, "read": counting.read - before[0], "gets": counting.gets - before[2]}
    if op == "commit":
        ds = tl.load(url)
        ds.t0.append(np.int64(7))
        before = counted()
        t = time.perf_counter()
        ds.commit("one chunk")
        value = time.perf_counter() - t
        written = counting.written - before[1]
        ds.close()
        return {"s": value, "written": written}
    raise ValueError(f"unknown op {op!r}")


def run_child(args: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_bench", "--child", json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode:
        raise RuntimeError(f"{args['op']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the run -------------------------------------------------------------------------


@dataclass(slots=True)
class Figure:
    """One figure at one scale: the run-by-run values (seconds or bytes)."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def measure(built: Built, repeats: int, log: Any) -> dict[str, Figure]:
    """Every figure at one scale; the commits come last (they change the dataset)."""
    path, first, last = str(built.path), built.commits[0], built.commits[-1]
    runs: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    n = len(built.commits)
    spans = sorted({d for d in (1, 10, n - 1) if 1 <= d <= n - 1})
    for r in range(repeats):
        res = run_child({"op": "open_len", "path": path})
        assert res["rows"] == built.rows, res
        add("open_len_s", res["s"])
        add("open_len_read", res["read"])
        res = run_child({"op": "locate", "path": path})
        add("locate_s", res["s"])
        add("locate_first_s", res["first_s"])
        res = run_child({"op": "checkout", "path": path, "commit": first})
        add("checkout_s", res["s"])
        add("checkout_read", res["read"])
        for d in spans:
            res = run_child({"op": "diff", "path": path, "a": built.commits[-1 - d], "b": last})
            add(f"diff{d}_s", res["s"])
            add(f"diff{d}_read", res["read"])
        log(f"  [{built.rows:,} rows] run {r + 1}/{repeats} done")
    for _ in range(repeats):
        res = run_child({"op": "commit", "path": path})
        add("commit_s", res["s"])
        add("commit_written", res["written"])
    return {k: Figure(v) for k, v in runs.items()}


@dataclass(frozen=True, slots=True)
class Row:
    """A line of the table: a figure, its unit, and how its target is judged."""

    key: str
    label: str
    unit: str  # "ms", "us", "B"
    limit: float | None = None  # at the largest scale, in the unit
    flat: float | None = None  # largest / smallest scale at most this


def rows_for(spans: list[int]) -> list[Row]:
    out = [
        Row("open_len_s", "open + len", "ms", limit=200),
        Row("open_len_read", "  bytes read by open", "B", flat=3),
        Row("locate_s", "locate a row (per row)", "us", limit=50, flat=3),
        Row("locate_first_s", "  first locate after open", "ms"),
        Row("commit_s", "commit after one new chunk", "ms", limit=200),
        Row("commit_written", "  bytes written by it", "B", flat=2),
        Row("checkout_s", "checkout the first commit", "ms", limit=200),
        Row("checkout_read", "  bytes read by it (that version's manifest)", "B"),
    ]
    for d in spans:
        out.append(Row(f"diff{d}_s", f"diff of commits {d} apart", "ms"))
        out.append(Row(f"diff{d}_read", "  bytes read by it", "B", flat=2))
    return out


def _scaled(value: float, unit: str) -> float:
    return value * {"ms": 1e3, "us": 1e6, "B": 1.0}[unit]


def _fmt(value: float, unit: str) -> str:
    v = _scaled(value, unit)
    if unit == "B":
        return f"{v / 1e3:,.1f} kB" if v >= 1e4 else f"{v:,.0f} B"
    return f"{v:,.1f} {unit}" if v < 1000 else f"{v:,.0f} {unit}"


def report(results: dict[int, dict[str, Figure]], spans: list[int]) -> tuple[str, bool]:
    """The table (one column per scale, then the target and its verdict) and whether
    every target passed."""
    scales = sorted(results)
    lines = []
    head = f"{'figure':46}" + "".join(f"{f'{s:,} rows':>18}" for s in scales)
    lines.append(head + f"  {'target':38}verdict")
    ok = True
    for row in rows_for(spans):
        if not all(row.key in results[s] for s in scales):
            continue
        cells = "".join(f"{_fmt(results[s][row.key].median, row.unit):>18}" for s in scales)
        targets, verdicts = [], []
        big, small = results[scales[-1]][row.key].median, results[scales[0]][row.key].median
        if row.limit is not None:
            targets.append(f"< {row.limit:g} {row.unit}")
            verdicts.append(_scaled(big, row.unit) < row.limit)
        if row.flat is not None and len(scales) > 1:
            ratio = big / small if small else float("inf")
            targets.append(f"x{ratio:.2f} <= x{row.flat:g} over scales")
            verdicts.append(ratio <= row.flat)
        verdict = "" if not verdicts else ("PASS" if all(verdicts) else "FAIL")
        ok = ok and all(verdicts)
        lines.append(f"{row.label:46}{cells}  {'; '.join(targets):38}{verdict}")
    lines.append("")
    lines.append("run by run (in order):")
    for row in rows_for(spans):
        for s in scales:
            fig = results[s].get(row.key)
            if fig is not None:
                shown = ", ".join(_fmt(v, row.unit) for v in fig.values)
                lines.append(f"  {row.key:16} {s:>13,} rows: {shown}")
    return "\n".join(lines), ok


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--scales", help="rows per scale, comma-separated (default 1e6,1e7,1e8)")
    p.add_argument("--commits", type=int, default=100, help="commits per dataset (default 100)")
    p.add_argument("--repeats", type=int, help="fresh processes per figure (default 5)")
    p.add_argument("--quick", action="store_true", help="tiny scales, 1 run, no results file")
    p.add_argument("--out", type=Path, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    p.add_argument("--work", type=Path, help="where the datasets go (default: a temporary folder)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.scales is None:
        args.scales = "20000,200000" if args.quick else "1e6,1e7,1e8"
    args.scales = [int(float(s)) for s in args.scales.split(",")]
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.quick:
        args.commits = min(args.commits, 10)
    if args.out is None and not args.quick:
        args.out = RESULTS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    import tensorlake as tl

    results: dict[int, dict[str, Figure]] = {}
    notes = []
    with tempfile.TemporaryDirectory(prefix="tlscale-", dir=args.work) as tmp:
        for rows in args.scales:
            log(f"[build] {rows:,} rows, {args.commits} commits")
            built = build(Path(tmp) / f"ds-{rows}", rows, args.commits)
            notes.append(
                f"{rows:,} rows: {built.chunks:,} chunks per tensor x {TENSORS} tensors, "
                f"{len(built.commits)} commits, {built.stored_bytes / 1e6:.1f} MB of "
                f"manifests and tables, built in {built.build_s:.1f} s"
            )
            results[rows] = measure(built, args.repeats, log)
    n = min(args.commits, max(1, min(args.scales) // ROWS_PER_CHUNK))
    spans = sorted({d for d in (1, 10, n - 1) if 1 <= d <= n - 1})
    table, ok = report(results, spans)
    text = "\n".join(
        [
            f"scale_bench, {time.strftime('%Y-%m-%d')}: tensorlake {tl.__version__}, "
            f"{os.cpu_count()} cpus, local disk; median of {args.repeats} fresh process(es)",
            *notes,
            "",
            table,
            "",
            "all targets met" if ok else "some targets not met",
        ]
    )
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
