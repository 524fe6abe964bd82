"""Bar chart of a results JSON, one panel per scenario (run in the tools venv: matplotlib).

<cache>/venvs/tools/bin/python benchmarks/chart.py results.json docs/benchmarks.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {
    "tensorlake": "#1f77b4",
    "deeplake3": "#ff7f0e",
    "litdata": "#2ca02c",
    "ceilings": "#9a9a9a",
}


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def main(src: str, dst: str) -> None:
    with open(src) as f:
        results = json.load(f)
    rows = results["rows"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    cols = 2
    nrows = -(-len(scenarios) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(13, 2.6 * nrows), squeeze=False)
    for ax in axes.flat[len(scenarios) :]:
        ax.axis("off")
    for ax, scenario in zip(axes.flat, scenarios):
        mine = [r for r in rows if r["scenario"] == scenario]
        names = [r["name"] for r in mine][::-1]
        values = [r.get("median", 0.0) if r["status"] == "ok" else 0.0 for r in mine][::-1]
        lo = [v - r.get("min", v) if r["status"] == "ok" else 0 for r, v in zip(mine[::-1], values)]
        hi = [r.get("max", v) - v if r["status"] == "ok" else 0 for r, v in zip(mine[::-1], values)]
        colours = [COLOURS.get(r["system"], "#555555") for r in mine][::-1]
        ax.barh(names, values, xerr=[lo, hi], color=colours, capsize=2)
        top = sorted(values)[-2:] if len(values) > 1 else values
        cap = None
        if len(top) == 2 and top[0] > 0 and top[1] > 4 * top[0]:  # a file-copy ceiling
            cap = 1.35 * top[0]  # would flatten every other bar: cut its bar short
            ax.set_xlim(0, cap)
        for y, r in enumerate(mine[::-1]):
            text = _fmt(r["median"]) if r["status"] == "ok" else r["status"]
            x = values[y]
            if cap is not None and x > cap:
                x, text = cap * 0.72, f"{text} (cut)"
            ax.text(x, y, f" {text}", va="center", fontsize=7)
        unit = mine[0]["unit"]
        better = "lower is better" if unit == "s" else "higher is better"
        ax.set_title(f"{scenario} ({unit}, {better})", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7)
    env = results["environment"]
    fig.suptitle(
        f"python -m benchmarks, {results['date']}: median of {results['repeats']} run(s), each in "
        f"a fresh process (whiskers: min-max); {env['cpus']} cores",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
