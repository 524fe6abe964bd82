"""Smoke test: ``python -m benchmarks --quick`` completes and prints the whole table.

Quick mode runs tensorlake and the no-library ceilings on small data, one fresh process
per figure, and installs no peer; the peers (Deep Lake 3, LitData) stay out of CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks", "--quick",
            "--out", str(out), "--work", str(tmp_path / "work"), "--cache", str(tmp_path / "cache"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    (path,) = out.glob("*-quick.json")
    results = json.loads(path.read_text())
    expected = [
        (c.scenario, c.name)
        for s in SCENARIOS
        for c in s.cells
        if c.system in ("tensorlake", "ceilings")
    ]
    rows = results["rows"]
    assert [(r["scenario"], r["name"]) for r in rows] == expected
    # every row measured, or says why not (n/a: not implemented; skipped: no torch)
    assert all(r["status"] in ("ok", "n/a", "skipped") for r in rows), [
        (r["name"], r.get("reason")) for r in rows if r["status"] not in ("ok", "n/a", "skipped")
    ]
    by_key = {(r["scenario"], r["system"], r["variant"]): r for r in rows}
    for scenario in ("ingest", "ingest_s3", "read", "random_rows", "boxes", "crash"):
        row = by_key[(scenario, "tensorlake", "")]
        assert row["status"] == "ok" and row["median"] > 0, row
    crash = by_key[("crash", "tensorlake", "")]
    assert crash["consistent"], crash
    assert by_key[("ingest", "ceilings", "pool")]["tl_ratio"] > 0
    assert results["environment"]["cpus"] and "allocator" in results["environment"]
    assert {t["scenario"] for t in results["targets"]} >= {"ingest", "read", "boxes", "crash"}

    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scenario"))
    table = lines[header + 1 : header + 1 + len(expected)]
    for line, (scenario, name) in zip(table, expected):
        assert line.startswith(scenario) and name in line, (line, name)
    assert "environment:" in proc.stdout
