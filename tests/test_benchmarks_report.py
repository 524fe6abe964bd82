"""The benchmark report's arithmetic: ratios of medians and run-by-run ratios."""

from __future__ import annotations

from benchmarks import report


def _row(scenario: str, system: str, variant: str, values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "scenario": scenario,
        "system": system,
        "variant": variant,
        "status": "ok",
        "median": ordered[len(ordered) // 2],
        "runs": [{"value": v} for v in values],
    }


def test_ratio_targets_show_run_by_run_ratios_beside_the_ratio_of_medians():
    # the machine slows down during run 3: each pair of runs still compares like with like
    rows = [
        _row("ingest", "tensorlake", "", [90.0, 88.0, 45.0]),
        _row("ingest", "ceilings", "pool", [100.0, 100.0, 50.0]),
        _row("crash", "tensorlake", "", [1.0, 2.0, 1.0]),
        _row("crash", "deeplake3", "", [10.0, 30.0, 5.0]),
    ]
    report.add_ratios(rows)
    pool, dl = rows[1], rows[3]
    assert pool["tl_ratio"] == 88.0 / 100.0
    assert pool["tl_paired"] == [0.88, 0.9, 0.9]
    assert dl["tl_ratio"] == 10.0 / 1.0  # times: that row's seconds over tensorlake's
    assert dl["tl_paired"] == [5.0, 10.0, 15.0]

    (target,) = [t for t in report.evaluate_targets(rows, 1) if "Pool" in t["target"]]
    assert target["measured"] == "0.88x (run by run: median 0.90x, 0.88-0.90x)"
    assert target["met"] is True


def test_no_run_by_run_ratios_when_runs_do_not_pair():
    rows = [
        _row("ingest", "tensorlake", "", [90.0, 88.0]),
        _row("ingest", "ceilings", "pool", [100.0, 100.0, 50.0]),
    ]
    report.add_ratios(rows)
    assert "tl_paired" not in rows[1] and rows[1]["tl_ratio"] == 90.0 / 100.0
