"""Ratios, targets, the printed table, and docs/benchmarks.md."""

from __future__ import annotations

import statistics

from benchmarks.scenarios import SCENARIOS, TARGETS


def add_ratios(rows: list[dict]) -> None:
    """``tl_ratio`` on every other row: tensorlake's speed over that row's, same run."""
    for scenario in SCENARIOS:
        mine = [r for r in rows if r["scenario"] == scenario.name]
        tl = {r["variant"]: r for r in mine if r["system"] == "tensorlake" and r["status"] == "ok"}
        for row in mine:
            base = tl.get(row["variant"]) or tl.get("")
            if row["system"] == "tensorlake" or row["status"] != "ok" or base is None:
                continue
            if scenario.unit == "s":
                row["tl_ratio"] = row["median"] / base["median"]
            else:
                row["tl_ratio"] = base["median"] / row["median"]
            pairs = _paired_ratios(base, row, scenario.unit == "s")
            if pairs:
                row["tl_paired"] = pairs


def _paired_ratios(tl: dict, other: dict, times: bool) -> list[float]:
    """tensorlake over ``other`` run by run: run k of each system ran side by side, so
    each pair saw the same machine (this one's speed drifts within a benchmark)."""
    a = [r.get("value") for r in tl.get("runs", [])]
    b = [r.get("value") for r in other.get("runs", [])]
    if len(a) != len(b) or not a or not all(a) or not all(b):
        return []
    return sorted(y / x if times else x / y for x, y in zip(a, b))


def evaluate_targets(rows: list[dict], jpeg_bytes: int) -> list[dict]:
    by_key = {"/".join(p for p in (r["scenario"], r["system"], r["variant"]) if p): r for r in rows}
    out = []
    for t in TARGETS:
        tl = by_key.get(f"{t.scenario}/tensorlake")
        item = {"scenario": t.scenario, "target": t.text, "measured": "", "met": None}
        if tl is None or tl["status"] != "ok":
            item["measured"] = "not measured"
        elif t.kind == "ratio":
            other = by_key.get(t.other)
            if other is not None and "tl_ratio" in other:
                item["measured"] = f"{other['tl_ratio']:.2f}x"
                item["met"] = other["tl_ratio"] >= t.threshold
                pairs = other.get("tl_paired")
                if pairs and len(pairs) > 1:
                    item["measured"] += (
                        f" (run by run: median {statistics.median(pairs):.2f}x, "
                        f"{pairs[0]:.2f}-{pairs[-1]:.2f}x)"
                    )
            else:
                item["measured"] = "no figure to compare with"
        elif t.kind == "value":
            item["measured"] = f"{fmt(tl['median'])} {tl['unit']}"
            item["met"] = tl["median"] >= t.threshold
        elif t.kind == "storage" and tl.get("bytes"):
            ratio = tl["bytes"] / tl.get("jpeg_bytes", jpeg_bytes)
            item["measured"] = f"{ratio:.3f}x the JPEG bytes"
            item["met"] = ratio <= t.threshold
        elif t.kind == "crash":
            ok = tl.get("consistent") and tl.get("open_calls") == 1
            redone, ideal = tl.get("redone"), tl.get("ideal")
            item["measured"] = (
                f"{tl.get('open_calls')} call to open; redone {fmt_int(redone)} items "
                f"(ideal {fmt_int(ideal)}); {'consistent' if tl.get('consistent') else 'INCONSISTENT'}"
            )
            item["met"] = bool(ok and redone is not None and ideal is not None and redone <= ideal)
        out.append(item)
    return out


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_int(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _mark(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "?"}[met]


def notes(row: dict, targets: list[dict], jpeg_bytes: int) -> str:
    parts = []
    if row["status"] != "ok":
        return f"{row['status']}: {row.get('reason', '')}"
    if row.get("bytes"):
        parts.append(f"storage {row['bytes'] / row.get('jpeg_bytes', jpeg_bytes):.2f}x JPEG bytes")
    if "redone" in row:
        parts.append(
            f"redone {fmt_int(row['redone'])} of {fmt_int(row.get('done_at_kill'))} done at kill "
            f"(ideal {fmt_int(row.get('ideal'))}); "
            + ("consistent" if row.get("consistent") else f"INCONSISTENT: {row.get('problem')}")
            + f"; {row.get('open_calls')} call(s) to reopen: {row.get('steps', '')}"
        )
    if row["system"] == "tensorlake" and row["variant"] == "":
        for t in targets:
            if t["scenario"] == row["scenario"]:
                parts.append(f"target {t['target']}: {t['measured']} ({_mark(t['met'])})")
    if row.get("reason"):
        parts.append(row["reason"])
    return "; ".join(parts)


def _pss(row: dict) -> str:
    """The tree's peak, and the measured process's own where workers did part of it."""
    total, parent = row.get("peak_pss_mib"), row.get("peak_parent_pss_mib")
    if total is None or parent is None or total - parent < 1:
        return fmt(total)
    return f"{fmt(total)} (parent {fmt(parent)})"


def _cells(row: dict) -> list[str]:
    if row["status"] != "ok":
        return [row["status"], "", "", "", ""]
    spread = f"{fmt(row['min'])}-{fmt(row['max'])}" if row.get("n_runs", 1) > 1 else ""
    return [
        fmt(row["median"]),
        spread,
        fmt(row.get("cpu_s")),
        _pss(row),
        f"{row['tl_ratio']:.2f}x" if "tl_ratio" in row else "",
    ]


HEADER = [
    "scenario",
    "system",
    "median",
    "min-max",
    "unit",
    "CPU s",
    "peak PSS MiB",
    "tl/this",
    "notes",
]


def table(rows: list[dict], targets: list[dict], jpeg_bytes: int) -> str:
    lines = []
    for row in rows:
        median, spread, cpu, pss, ratio = _cells(row)
        lines.append(
            [row["scenario"], row["name"], median, spread, row["unit"], cpu, pss, ratio,
             notes(row, targets, jpeg_bytes)]
        )  # fmt: skip
    widths = [max(len(str(x[i])) for x in [HEADER, *lines]) for i in range(len(HEADER) - 1)]
    out = []
    for line in [HEADER, *lines]:
        head = "  ".join(
            str(x).rjust(w) if 2 <= i <= 7 and i != 4 else str(x).ljust(w)
            for i, (x, w) in enumerate(zip(line[:-1], widths))
        )
        out.append(f"{head}  {line[-1]}".rstrip())
    return "\n".join(out)


def markdown_table(rows: list[dict], targets: list[dict], jpeg_bytes: int) -> str:
    out = [
        "| scenario | system | median (min-max) | unit | CPU s | peak PSS MiB | tl/this | notes |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        median, spread, cpu, pss, ratio = _cells(row)
        value = f"{median} ({spread})" if spread else median
        note = notes(row, targets, jpeg_bytes).replace("|", "/")
        out.append(
            f"| {row['scenario']} | {row['name']} | {value} | {row['unit']} | {cpu} | {pss} | "
            f"{ratio} | {note} |"
        )
    return "\n".join(out)


def markdown(results: dict) -> str:
    rows, targets = results["rows"], results["targets"]
    jpeg = results["data"]["jpeg_bytes"]
    env = results["environment"]
    systems = "; ".join(
        f"{name}: {', '.join(f'{k} {v}' for k, v in s['versions'].items()) or s.get('reason', '')}"
        for name, s in results["systems"].items()
    )
    scenario_lines = "\n".join(
        f"- **{s.name}** ({s.unit}, {results['sizes'][s.size]:,} items): {s.title}"
        for s in SCENARIOS
        if any(r["scenario"] == s.name for r in rows)
    )
    target_lines = "\n".join(
        f"- {t['scenario']}: {t['target']}: **{t['measured']}** ({_mark(t['met'])})"
        for t in targets
    )
    banner = ""
    if results["quick"] or results["repeats"] < 3:
        banner = (
            f"\n> **Validation run, not a result to quote**: {results['repeats']} run(s) per "
            "figure. Run `python -m benchmarks` on a quiet machine to replace this page.\n"
        )
    return f"""# Benchmarks
{banner}
Results of `python -m benchmarks` ({results["date"]}, {env["cpus"]} cores,
{env["platform"]}; Python {env["python"]}; allocator: {env["allocator"] or "default (no MALLOC_* variables)"};
the same environment for every system). Raw figures: `{results["file"]}`.
How to run it and what each scenario does: `benchmarks/README.md`.

Every figure is the median of {results["repeats"]} run(s), each in a fresh process (min-max
beside it), with the CPU seconds of the whole process tree (workers included) and the
peak PSS of the tree (sampled every 250 ms; the measured process's own peak beside it as
"parent") over the measured part only. `tl/this` is
tensorlake's speed over that row's, from the same run (for times: that row's seconds
over tensorlake's); a ratio target also gives the median of the run-by-run ratios (run
k of every system ran side by side), which a drift of the machine's speed during the
benchmark moves less. The target is judged on the ratio of medians. Data: {results["data"]["images"]:,} synthetic COCO-style 640x480
JPEGs ({jpeg / results["data"]["images"] / 1024:.0f} KB on average) from
`examples/synthetic_coco.py`, seed {results["data"]["seed"]}.

![benchmarks](benchmarks.png)

## Targets

{target_lines}

## Results

{markdown_table(rows, targets, jpeg)}

## Scenarios

{scenario_lines}

Systems: {systems}.
"""
