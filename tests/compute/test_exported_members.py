"""``tensorlake.compute`` exports its public names, and ``tl`` the same objects."""

from __future__ import annotations

import importlib
import pkgutil

import tensorlake as tl

PUBLIC = {
    "ComputeFunction",
    "EvalReport",
    "SampleOut",
    "Scheduler",
    "SchedulerContext",
    "compose",
    "compute",
    "register_scheduler",
    "scheduler_names",
}


def test_compute_exports_its_public_names():
    # ``tl.compute`` is the decorator, so the package is found by its name
    package = importlib.import_module("tensorlake.compute")
    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(package, name) is not None, name
    for name in ("ComputeFunction", "EvalReport", "SampleOut", "compose", "compute"):
        assert getattr(tl, name) is getattr(package, name), name


def test_every_compute_module_sorts_its_names():
    package = importlib.import_module("tensorlake.compute")
    for info in pkgutil.walk_packages(package.__path__, "tensorlake.compute."):
        module = importlib.import_module(info.name)
        assert module.__all__ == sorted(module.__all__), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"
