"""The package's public face: exports, lazy optional imports, one-way layering."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tensorlake as tl

PACKAGE = Path(tl.__file__).parent
# lower layers first; a module may import only from its own layer or those before it
LAYERS = [
    "errors",
    "config",
    "_version",
    "storage",
    "compression",
    "engine",
    "api",
    "compute",
    "integrations",
    "ingest",
    "cli",
]


def test_all_is_sorted_and_complete():
    assert tl.__all__ == sorted(tl.__all__)
    public = {
        n
        for n in dir(tl)
        if not n.startswith("_")
        and n not in {"api", "engine", "storage", "compression", "errors", "config", "cli"}
    }
    assert public <= set(tl.__all__) | {"annotations"}
    for name in tl.__all__:
        assert hasattr(tl, name), name


def test_import_is_light_and_side_effect_free():
    code = "import sys, tensorlake; print(','.join(m for m in ('torch', 'ray', 'dask', 'pycocotools') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "tensorlake" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def test_layers_import_downward_only():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        own = _layer(module)
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                target = _layer(node.module)
                if target is not None and target > own:
                    violations.append(f"{module} imports {node.module}")
    assert not violations, violations


def test_every_error_is_a_tensorlake_error():
    for name in tl.__all__:
        obj = getattr(tl, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tl.TensorlakeError)
    assert issubclass(tl.KeyNotFoundError, KeyError)
    assert issubclass(tl.SampleError, ValueError)


def test_cli_prints_version_and_info(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("x")
    ds.x.append([1, 2, 3])
    cli = [sys.executable, "-m", "tensorlake.cli.main"]
    out = subprocess.run([*cli, "--version"], capture_output=True, text=True, check=True)
    assert tl.__version__ in out.stdout
    out = subprocess.run(
        [*cli, "info", str(tmp_path / "ds")], capture_output=True, text=True, check=True
    )
    assert "x" in out.stdout and "(1, 3)" in out.stdout
    bad = subprocess.run([*cli, "info", str(tmp_path / "none")], capture_output=True, text=True)
    assert bad.returncode == 1 and "No dataset" in bad.stderr
