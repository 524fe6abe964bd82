"""Running the rows: one fresh process per measurement, the crash choreography, medians."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import harness
from benchmarks.scenarios import BY_NAME, MODULES, READS_CHECKPOINTS, Cell, checkpoint_interval

KILL_AT = 0.6  # of the items, for the crash scenario
RANDOM_ROWS = 500


@dataclass(slots=True)
class Context:
    """Everything a run needs that is the same for every row."""

    data: Path  # instances.json + images/
    work: Path  # scratch: datasets, logs
    pythons: dict[str, Path]  # system -> interpreter
    env: dict[str, str]  # the one environment every system runs under
    sizes: dict[str, int]  # images, ingest_images, s3_images, crash_images
    workers: int = 2
    timeout: float = 900.0
    s3_port: int | None = None
    sources: dict[str, str] = field(default_factory=dict)  # system -> dataset for reads
    log: Callable[[str], None] = print

    def base_args(self, cell: Cell) -> dict:
        n = self.sizes[BY_NAME[cell.scenario].size]
        return {
            "scenario": cell.scenario,
            "variant": cell.variant,
            "ann": str(self.data / "instances.json"),
            "image_dir": str(self.data / "images"),
            "n": n,
            "workers": self.workers,
            "interval": checkpoint_interval(n, self.workers),
        }

    def command(self, system: str, args: dict) -> list[str]:
        return [str(self.pythons[system]), "-m", MODULES[system], json.dumps(args)]


def run_cell(ctx: Context, cell: Cell, repeat: int) -> dict:
    """One measurement of ``cell``: a dict with value/unit/cpu_s/peak_pss_mib and extras,
    or status + reason."""
    if cell.na:
        return {"status": "n/a", "reason": cell.na}
    run_dir = ctx.work / "runs" / cell.key.replace("/", "-") / str(repeat)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    args = ctx.base_args(cell)
    if cell.scenario == "crash":
        return _crash(ctx, cell, args, run_dir)
    if cell.scenario in ("ingest", "linked"):
        args["out"] = str(run_dir / "out")
        if cell.scenario == "linked":
            args["link"] = cell.variant
    elif cell.scenario == "ingest_s3":
        if ctx.s3_port is None:
            return {"status": "failed", "reason": "no S3 server"}
        args["out"] = f"s3://bench/{cell.system}-{repeat}-{uuid.uuid4().hex[:8]}"
        args["creds"] = harness.s3_creds(ctx.s3_port)
    elif cell.system != "ceilings":
        source = ensure_source(ctx, cell.system)
        if source is None:
            return {"status": "failed", "reason": "could not build the dataset to read"}
        args["path"] = source
    if cell.scenario == "random_rows":
        n = ctx.sizes["images"]
        args["rows"] = np.random.default_rng(0).integers(0, n, RANDOM_ROWS).tolist()
    run = harness.measure(
        ctx.command(cell.system, args), env=ctx.env, timeout=ctx.timeout, log=run_dir / "stderr"
    )
    if cell.scenario == "ingest_s3":
        harness.delete_prefix(ctx.s3_port, "bench", args["out"].split("/", 3)[3])
    elif cell.scenario in ("ingest", "linked"):
        keep = (
            cell.scenario == "ingest"
            and cell.system != "ceilings"
            and "value" in run.result
            and args["n"] == ctx.sizes["images"]  # the reads' size
        )
        if keep and cell.system not in ctx.sources:  # the first good ingest: read it back later
            ctx.sources[cell.system] = args["out"]
        elif args["out"] not in ctx.sources.values():
            shutil.rmtree(args["out"], ignore_errors=True)
    out = _flatten(run)
    if "bytes" in out:  # what the stored dataset is compared with
        out["jpeg_bytes"] = jpeg_bytes(ctx.data, args["n"])
    return out


def jpeg_bytes(data: Path, n: int) -> int:
    """Bytes of the first ``n`` images' JPEG files (the ones every system ingests)."""
    images = json.loads((data / "instances.json").read_text())["images"]
    names = [i["file_name"] for i in sorted(images, key=lambda i: i["id"])[:n]]
    return sum((data / "images" / name).stat().st_size for name in names)


def ensure_source(ctx: Context, system: str) -> str | None:
    """The dataset the read scenarios use: the first ingest's output, else built now."""
    if system not in ctx.sources:
        cell = Cell("ingest", system)
        path = ctx.work / "sources" / system
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        n = ctx.sizes["images"]
        args = {**ctx.base_args(cell), "n": n, "interval": checkpoint_interval(n, ctx.workers)}
        args["out"] = str(path)
        ctx.log(f"[prepare] {system}: ingest {args['n']} items to read back")
        run = harness.measure(
            ctx.command(system, args),
            env=ctx.env,
            timeout=ctx.timeout,
            log=path.parent / f"{system}.stderr",
        )
        if "value" not in run.result:
            ctx.log(f"[prepare] {system} failed: {run.result.get('reason')}")
            return None
        ctx.sources[system] = str(path)
    return ctx.sources[system]


def _flatten(run: harness.Run) -> dict:
    out = dict(run.result)
    if "value" in out:
        out.update(
            cpu_s=run.cpu_s,
            peak_pss_mib=run.peak_pss_mib,
            peak_parent_pss_mib=run.peak_parent_pss_mib,
        )
    out["process_s"] = run.wall_s
    return out


# -- crash ------------------------------------------------------------------------------


def _logged(log_dir: Path) -> list[int]:
    ids: list[int] = []
    for f in log_dir.glob("*.log"):
        ids += [int(x) for x in f.read_text().split()]
    return ids


def _crash(ctx: Context, cell: Cell, args: dict, run_dir: Path) -> dict:
    """Kill the ingest (its whole process group) once ~60% of the items are done, then
    measure recovery + finishing in a fresh process; count the items done twice."""
    n = args["n"]
    args["out"] = str(run_dir / "out")
    victim_log, recover_log = run_dir / "victim", run_dir / "recover"
    victim_log.mkdir()
    recover_log.mkdir()
    with open(run_dir / "victim.stderr", "w") as err:
        victim = subprocess.Popen(
            ctx.command(cell.system, {**args, "scenario": "crash_victim", "log": str(victim_log)}),
            cwd=harness.ROOT,
            env=ctx.env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        deadline = time.monotonic() + ctx.timeout
        while victim.poll() is None and time.monotonic() < deadline:
            if len(_logged(victim_log)) >= KILL_AT * n:
                break
            time.sleep(0.005)
        finished = victim.poll() is not None
        harness.kill_tree(victim)
    done = _logged(victim_log)
    if finished:
        return {
            "status": "failed",
            "reason": f"the ingest ended before the kill ({len(done)} items)",
        }
    position = {img_id: i for i, img_id in enumerate(_all_ids(args))}
    last = None
    if cell.system in READS_CHECKPOINTS:
        last = harness.measure(
            ctx.command(cell.system, {**args, "scenario": "crash_inspect"}),
            env=ctx.env,
            timeout=ctx.timeout,
            log=run_dir / "inspect.stderr",
        ).result.get("last_checkpoint")
    run = harness.measure(
        ctx.command(cell.system, {**args, "scenario": "crash_recover", "log": str(recover_log)}),
        env=ctx.env,
        timeout=ctx.timeout,
        log=run_dir / "stderr",
    )
    out = _flatten(run)
    if "value" not in out:
        return out
    redo = set(_logged(recover_log))
    out.update(
        done_at_kill=len(set(done)),
        last_checkpoint=last,
        redone=len(set(done) & redo),
        ideal=None if last is None else sum(1 for i in set(done) if position[i] >= last),
    )
    shutil.rmtree(run_dir / "out", ignore_errors=True)
    return out


def _all_ids(args: dict) -> list[int]:
    """Image ids in input order (the peers take the first ``n`` sorted ids)."""
    images = json.loads(Path(args["ann"]).read_text())["images"]
    return sorted(i["id"] for i in images)[: args["n"]]


# -- aggregation ------------------------------------------------------------------------


def summarize(cell: Cell, unit: str, runs: list[dict]) -> dict:
    """Median and range over the successful runs, with the extras that matter."""
    ok = [r for r in runs if "value" in r]
    row: dict = {
        "scenario": cell.scenario,
        "system": cell.system,
        "variant": cell.variant,
        "name": cell.name,
        "unit": unit,
        "runs": runs,
    }
    if not ok:
        bad = next((r for r in runs if r.get("status") in ("n/a", "skipped")), None) or (
            runs[-1] if runs else {"status": "failed", "reason": "not run"}
        )
        row.update(status=bad.get("status", "failed"), reason=bad.get("reason", ""))
        return row
    values = [r["value"] for r in ok]

    def med(key: str) -> float | None:
        xs = [r[key] for r in ok if r.get(key) is not None]
        return statistics.median(xs) if xs else None

    row.update(
        status="ok",
        median=statistics.median(values),
        min=min(values),
        max=max(values),
        n_runs=len(ok),
        cpu_s=med("cpu_s"),
        peak_pss_mib=med("peak_pss_mib"),
        peak_parent_pss_mib=med("peak_parent_pss_mib"),
    )
    if len(ok) < len(runs):
        row["reason"] = f"{len(runs) - len(ok)} of {len(runs)} runs failed: " + next(
            r.get("reason", "") for r in runs if "value" not in r
        )
    for key in (
        "bytes",
        "jpeg_bytes",
        "redone",
        "ideal",
        "done_at_kill",
        "last_checkpoint",
        "resumed_from",
    ):
        if any(r.get(key) is not None for r in ok):
            row[key] = med(key)
    if any("consistent" in r for r in ok):
        row["consistent"] = all(r.get("consistent") for r in ok)
        row["problem"] = next((r["problem"] for r in ok if r.get("problem")), "")
        row["open_calls"] = max(r.get("open_calls", 1) for r in ok)
        row["steps"] = ok[0].get("steps", "")
    return row
