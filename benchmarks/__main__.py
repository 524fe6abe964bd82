"""tensorlake against Deep Lake 3.9.52, LitData and the machine's ceilings: one table.

    python -m benchmarks                       # everything (~15 min on 2 cores; installs peers once)
    python -m benchmarks --quick               # tensorlake + ceilings on small data (< 2 min)
    python -m benchmarks --systems tensorlake,deeplake3 --scenarios ingest,read

It generates deterministic synthetic COCO data (``examples/synthetic_coco.py``), installs
each peer into its own venv under the cache directory (once), runs every scenario for
every system, each figure the median of fresh processes, prints one table, writes
``benchmarks/results/<date>.json`` (a partial run: ``<date>-<scenarios>.json``) and, on a
full run, regenerates ``docs/benchmarks.md`` and ``docs/benchmarks.png``. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness, report, runner, venvs
from benchmarks.scenarios import PEERS, SCENARIOS, SYSTEMS

ROOT = harness.ROOT
SEED = 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="small data, tensorlake and ceilings, 1 run"
    )
    p.add_argument(
        "--systems", help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all)"
    )
    p.add_argument("--scenarios", help="comma-separated subset (default: all): "
                   + ",".join(s.name for s in SCENARIOS))  # fmt: skip
    p.add_argument("--images", type=int, help="items for links and reads (default 400)")
    p.add_argument("--ingest-images", type=int,
                   help="items for the local ingest (default 2000: the size its targets name)")  # fmt: skip
    p.add_argument("--s3-images", type=int, help="items for the S3 ingest (default 100)")
    p.add_argument("--crash-images", type=int, help="items for the crash scenario (default 250)")
    p.add_argument("--repeats", type=int, help="fresh-process runs per figure (default 3)")
    p.add_argument("--out", type=Path, help="where the results JSON goes (default "
                   "benchmarks/results; with --quick, the git-ignored benchmarks/.cache/results)")  # fmt: skip
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                   help="regenerate docs/benchmarks.md and .png (default: on for a full run only)")  # fmt: skip
    p.add_argument("--cache", type=Path, default=venvs.default_cache(),
                   help="venvs and generated data (default ~/.cache/tensorlake-bench)")  # fmt: skip
    p.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    p.add_argument("--reinstall", action="store_true", help="recreate the peers' venvs")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per process")
    p.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                   help="run nothing: recompute the ratios and targets of a saved results "
                   "file (after a change to benchmarks/report.py) and rewrite it and the docs")  # fmt: skip
    args = p.parse_args(argv)
    quick = args.quick
    defaults = (48, 48, 24, 60, 1) if quick else (400, 2000, 100, 250, 3)
    sizes = ("images", "ingest_images", "s3_images", "crash_images")
    for name, value in zip((*sizes, "repeats"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.systems = (args.systems or ("tensorlake,ceilings" if quick else ",".join(SYSTEMS))).split(
        ","
    )
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    names = [s.name for s in SCENARIOS]
    args.scenarios = args.scenarios.split(",") if args.scenarios else names
    if set(args.scenarios) - set(names):
        p.error(
            f"unknown scenarios {sorted(set(args.scenarios) - set(names))}; choose from {names}"
        )
    # a full run (every system, scenario and default size) is the one the docs show; a
    # partial one is kept beside it, under its scenarios' names
    args.full = (
        not quick
        and args.systems == list(SYSTEMS)
        and args.scenarios == names
        and all(getattr(args, n) == v for n, v in zip(sizes, defaults[:-1]))
    )
    if args.docs is None:
        args.docs = args.full
    if args.out is None:
        args.out = ROOT / "benchmarks" / (".cache/results" if quick else "results")
    return args


def data_dir(cache: Path, n: int, log) -> Path:
    """Synthetic COCO data for ``n`` images, generated once per size and reused."""
    sys.path.insert(0, str(ROOT / "examples"))
    from synthetic_coco import generate

    path = cache / "data" / f"coco-{n}-seed{SEED}"
    if not (path / "DONE").exists():
        log(f"[data] generating {n} images into {path}")
        generate(path, n, seed=SEED)
        (path / "DONE").touch()
    return path


def environment() -> dict:
    allocator = {
        k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or k in ("LD_PRELOAD", "PYTHONMALLOC")
    }  # fmt: skip
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "allocator": allocator,
        "load_average_at_start": os.getloadavg(),
    }


def tensorlake_version() -> dict:
    try:
        versions = {"tensorlake": importlib.metadata.version("tensorlake")}
    except importlib.metadata.PackageNotFoundError:  # on sys.path, not installed
        import tensorlake

        versions = {"tensorlake": tensorlake.__version__}
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "tensorlake"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        versions["commit"] = commit + ("+dirty" if dirty else "")
    return versions


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    env_at_start = environment()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.report:
        return rereport(args.report, args, log)

    systems: dict[str, dict] = {}
    pythons: dict[str, Path] = {}
    for name in args.systems:
        if name in PEERS:
            env = venvs.ensure(name, args.cache, args.reinstall, log)
            systems[name] = {"versions": env.versions, "ok": env.ok, "reason": env.reason}
            if env.ok:
                pythons[name] = env.python
        else:
            pythons[name] = Path(sys.executable)
            versions = tensorlake_version() if name == "tensorlake" else {
                k: importlib.metadata.version(k) for k in ("numpy", "pillow", "pycocotools")
            }  # fmt: skip
            systems[name] = {"versions": versions, "ok": True, "reason": ""}
    sizes = {
        "images": args.images,
        "ingest_images": args.ingest_images,
        "s3_images": args.s3_images,
        "crash_images": args.crash_images,
    }
    data = data_dir(args.cache, max(sizes.values()), log)

    with contextlib.ExitStack() as stack:
        work = args.work or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="tlbench-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "BUGGER_OFF": "true",
            "TENSORLAKE_BENCH_SCRATCH": str(work / "scratch"),
        }
        ctx = runner.Context(data, work, pythons, env, sizes, log=log, timeout=args.timeout)
        if "ingest_s3" in args.scenarios:
            ctx.s3_port = stack.enter_context(harness.moto_server())
        cells = [
            c
            for s in SCENARIOS
            if s.name in args.scenarios
            for c in s.cells
            if c.system in args.systems
        ]
        has_torch = {name: _has_torch(py) for name, py in pythons.items()}
        runs: dict[str, list[dict]] = {c.key: [] for c in cells}
        for r in range(args.repeats):
            for cell in cells:
                done = runs[cell.key]
                if cell.system not in pythons:
                    if not done:
                        done.append({"status": "failed", "reason": systems[cell.system]["reason"]})
                    continue
                if any(x.get("status") in ("n/a", "skipped") for x in done):
                    continue  # nothing to repeat
                if cell.scenario == "loader" and not has_torch[cell.system]:
                    done.append({"status": "skipped", "reason": "no torch in this environment"})
                    continue
                t = time.perf_counter()
                res = runner.run_cell(ctx, cell, r)
                res["run_s"] = time.perf_counter() - t  # with the crash's victim and inspection
                done.append(res)
                shown = (
                    f"{report.fmt(res['value'])} {res['unit']}" if "value" in res
                    else f"{res.get('status')}: {res.get('reason', '')[:200]}"
                )  # fmt: skip
                log(f"[run {r + 1}/{args.repeats}] {cell.key}: {shown} ({res['run_s']:.1f} s)")

    unit = {s.name: s.unit for s in SCENARIOS}
    rows = [runner.summarize(c, unit[c.scenario], runs[c.key]) for c in cells]
    report.add_ratios(rows)
    total_jpeg = runner.jpeg_bytes(data, args.images)
    targets = report.evaluate_targets(rows, total_jpeg)
    date = datetime.date.today().isoformat()
    if args.quick:
        name = f"{date}-quick.json"
    else:
        name = f"{date}.json" if args.full else f"{date}-{'+'.join(args.scenarios)}.json"
    out_file = (args.out / name).resolve()
    results = {
        "date": date,
        "file": str(out_file.relative_to(ROOT)) if out_file.is_relative_to(ROOT) else str(out_file),
        "quick": args.quick,
        "repeats": args.repeats,
        "sizes": sizes,
        "workers": ctx.workers,
        "environment": {**env_at_start, "load_average_at_end": os.getloadavg()},
        "systems": systems,
        "data": {"images": args.images, "seed": SEED, "jpeg_bytes": total_jpeg},
        "rows": rows,
        "targets": targets,
        "seconds": time.perf_counter() - started,
    }
    print(report.table(rows, targets, total_jpeg))
    env_text = results["environment"]["allocator"] or "default allocator (no MALLOC_* variables)"
    print(
        f"\nenvironment: {env_text}; {os.cpu_count()} cpus; sizes {sizes}; "
        f"{args.repeats} fresh-process run(s) per figure; {results['seconds']:.0f} s in all"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / name).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"results: {args.out / name}")
    if args.docs:
        write_docs(results, args.cache, args.reinstall, log)
    return 0


def _has_torch(python: Path) -> bool:
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    if Path(python) == Path(sys.executable):
        return importlib.util.find_spec("torch") is not None
    return subprocess.run([str(python), "-c", code]).returncode == 0


def rereport(path: Path, args: argparse.Namespace, log) -> int:
    results = json.loads(path.read_text())
    rows, jpeg = results["rows"], results["data"]["jpeg_bytes"]
    report.add_ratios(rows)
    results["targets"] = report.evaluate_targets(rows, jpeg)
    print(report.table(rows, results["targets"], jpeg))
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"results: {path}")
    if args.docs:
        write_docs(results, args.cache, args.reinstall, log)
    return 0


def write_docs(results: dict, cache: Path, reinstall: bool, log) -> None:
    docs = ROOT / "docs"
    (docs / "benchmarks.md").write_text(report.markdown(results))
    print(f"docs: {docs / 'benchmarks.md'}")
    tools = venvs.ensure("tools", cache, reinstall, log)
    if not tools.ok:
        log(f"[chart] skipped: {tools.reason}")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(results, f, default=str)
    proc = subprocess.run(
        [str(tools.python), str(ROOT / "benchmarks" / "chart.py"), f.name, str(docs / "benchmarks.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    os.unlink(f.name)
    if proc.returncode:
        log(f"[chart] failed: {proc.stderr[-500:]}")
    else:
        print(f"chart: {docs / 'benchmarks.png'}")


if __name__ == "__main__":
    sys.exit(main())
