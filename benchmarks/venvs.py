"""The peers' virtualenvs: each system outside this checkout gets its own, created once.

A venv lives under ``<cache>/venvs/<name>`` (default cache ``~/.cache/tensorlake-bench``)
and is reused while its marker file names the same requirements. A failed install is
remembered the same way (with pip's last lines as the reason) so that a run without
network, or on a Python the peer has no wheel for, records why and goes on; pass
``reinstall=True`` (``--reinstall``) to try again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# What each venv holds. Deep Lake 3 needs numpy<2; torch is installed next to it so that
# its ``ds.pytorch()`` loader can be measured (LitData depends on torch anyway).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "deeplake3": ("deeplake==3.9.52", "numpy<2", "pycocotools", "torch"),
    "litdata": ("litdata", "pycocotools"),
    "tools": ("matplotlib",),
}
# the packages whose installed versions go into the results
REPORTED: dict[str, tuple[str, ...]] = {
    "deeplake3": ("deeplake", "numpy", "pillow", "torch", "libdeeplake"),
    "litdata": ("litdata", "numpy", "pillow", "torch", "torchvision"),
    "tools": ("matplotlib",),
}
MARKER = "tensorlake-bench.json"


@dataclass(frozen=True, slots=True)
class Venv:
    """A ready venv, or the reason there is none."""

    name: str
    python: Path | None
    versions: dict[str, str]
    reason: str = ""  # why ``python`` is None

    @property
    def ok(self) -> bool:
        return self.python is not None


def default_cache() -> Path:
    return Path(os.environ.get("TENSORLAKE_BENCH_CACHE", "~/.cache/tensorlake-bench")).expanduser()


def ensure(name: str, cache: Path, reinstall: bool = False, log=print) -> Venv:
    """The venv ``name`` under ``cache/venvs``, created and pip-installed on first use."""
    requirements = list(REQUIREMENTS[name])
    root = cache / "venvs" / name
    marker = root / MARKER
    if marker.exists() and not reinstall:
        state = json.loads(marker.read_text())
        if state.get("requirements") == requirements:
            if state.get("ok"):
                return Venv(name, root / "bin" / "python", state["versions"])
            return Venv(name, None, {}, state.get("reason", "install failed earlier"))
    log(f"[venv] creating {root} with {' '.join(requirements)} (once; reused after)")
    started = time.perf_counter()
    python = root / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(root)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            reason = f"`{' '.join(step[2:5])} ...` failed: " + " | ".join(tail)
            root.mkdir(parents=True, exist_ok=True)
            marker.write_text(
                json.dumps({"requirements": requirements, "ok": False, "reason": reason})
            )
            log(f"[venv] {name}: {reason}")
            return Venv(name, None, {}, reason)
    versions = installed_versions(python, REPORTED[name])
    marker.write_text(json.dumps({"requirements": requirements, "ok": True, "versions": versions}))
    log(f"[venv] {name} ready in {time.perf_counter() - started:.0f}s: {versions}")
    return Venv(name, python, versions)


def installed_versions(python: Path | str, packages: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)
