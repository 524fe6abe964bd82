"""The package's public face: exports, lazy optional imports, one-way layering."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import tensorlake as tl

PACKAGE = Path(tl.__file__).parent
# lower layers first; a module may import only from its own layer or those before it
LAYERS = [
    "errors",
    "config",
    "_version",
    "storage",
    "compression",
    "engine.format",
    "engine.lock",
    "engine.links",
    "engine.htypes",
    "engine.tensor",
    "engine.core",
    "engine.version",
    "engine",
    "api",
    "compute",
    "integrations",
    "ingestion",
    "registry",
    "cli",
]
# modules that import lazily by name (importlib), each for one stated reason
LAZY_IMPORTERS = {
    "tensorlake.storage.url",  # the scheme registry: a provider's module on first use
    "tensorlake.api.hooks",  # the api's one way up, to tensorlake.integrations
}
# function-local imports of tensorlake modules: only to defer a slow optional dependency
DEFERRED_IMPORTS = {("tensorlake.storage", "tensorlake.storage.s3")}  # boto3


def test_all_is_sorted_and_complete():
    assert tl.__all__ == sorted(tl.__all__)
    public = {  # subpackages are reached by their dotted names, not exported
        n
        for n in dir(tl)
        if not n.startswith("_") and not isinstance(getattr(tl, n), types.ModuleType)
    }
    assert public <= set(tl.__all__) | {"annotations"}
    for name in tl.__all__:
        assert hasattr(tl, name), name


def test_import_is_light_and_side_effect_free():
    code = "import sys, tensorlake; print(','.join(m for m in ('torch', 'ray', 'dask', 'pycocotools') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _layer(module: str) -> int | None:
    """The index in ``LAYERS`` of the longest layer name ``module`` is in."""
    parts = module.split(".")
    if parts[0] != "tensorlake" or len(parts) < 2:
        return None
    for depth in (2, 1):
        name = ".".join(parts[1 : 1 + depth])
        if len(parts) > depth and name in LAYERS:
            return LAYERS.index(name)
    return None


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        yield ".".join(parts), ast.parse(path.read_text())


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def test_layers_import_downward_only():
    violations = []
    for module, tree in _modules():
        own = _layer(module)
        if own is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                target = _layer(node.module)
                if target is not None and target > own:
                    violations.append(f"{module} imports {node.module}")
    assert not violations, violations


def test_the_layer_map_knows_every_subpackage():
    """A new subpackage must be placed in ``LAYERS`` (engine's by concept)."""
    for module, _ in _modules():
        parts = module.split(".")
        if len(parts) >= 3 and parts[1] == "engine":
            assert f"engine.{parts[2]}" in LAYERS or parts[2] == "__init__", module
        elif len(parts) >= 2:
            assert parts[1] in LAYERS or parts[1] == "__main__", module


def test_no_import_is_hidden_in_a_function():
    """Imports sit at the top of a module (or under TYPE_CHECKING): a function-local
    import would hide a cycle. Lazy imports by name are confined to ``LAZY_IMPORTERS``."""
    hidden, lazy = [], []
    for module, tree in _modules():
        allowed = {id(n) for n in tree.body}
        for node in tree.body:
            if _is_type_checking(node) or isinstance(node, ast.Try):
                allowed.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("tensorlake")
                and id(node) not in allowed
                and (module, node.module) not in DEFERRED_IMPORTS
            ):
                hidden.append(f"{module}: from {node.module} import ...")
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in ("importlib.import_module", "__import__")
                and module not in LAZY_IMPORTERS
            ):
                lazy.append(module)
    assert not hidden, hidden
    assert not lazy, lazy


def test_the_integrations_hook_imports_lazily_and_names_the_missing_extra(monkeypatch):

    from tensorlake.api import hooks

    fake = types.ModuleType("tensorlake.integrations.fake")
    monkeypatch.setitem(sys.modules, "tensorlake.integrations.fake", fake)
    assert hooks.integration("fake") is fake

    broken = "tensorlake.integrations.needs_extra"

    def find(name, *args, **kwargs):
        if name == broken:
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, *args, **kwargs)

    real_import = hooks.importlib.import_module
    monkeypatch.setattr(hooks.importlib, "import_module", find)
    with pytest.raises(ImportError, match=r"needs torch.*pip install 'tensorlake\[torch\]'"):
        hooks.integration("needs_extra", extra="torch")


def test_every_module_declares_its_public_names():
    missing = [
        m
        for m, tree in _modules()
        if not any(
            isinstance(n, (ast.Assign, ast.AnnAssign))
            and any(
                getattr(t, "id", None) == "__all__"
                for t in getattr(n, "targets", [getattr(n, "target", None)])
            )
            for n in tree.body
        )
    ]
    assert not missing, missing


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
