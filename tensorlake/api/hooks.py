"""The one way up: the api layer reaches ``tensorlake.integrations`` only through here.

Features such as ``ds.pytorch()`` and the notebook views live in the integrations layer,
above the api (they import the api, and optional packages such as torch). A facade
method that offers one calls ``integration(name)``, which imports that module on first
use, so ``import tensorlake`` imports neither the integrations nor their extras. The
layer test allows this module, and no other, to reach up.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["integration"]

INTEGRATIONS_PACKAGE = "tensorlake.integrations"


def integration(name: str, extra: str | None = None) -> ModuleType:
    """The module ``tensorlake.integrations.<name>``, imported now if it was not.

    ``extra`` names the ``pip install 'tensorlake[extra]'`` that provides what it needs,
    for the error when that is missing.
    """
    module = f"{INTEGRATIONS_PACKAGE}.{name}"
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name is not None and (err.name == module or module.startswith(err.name + ".")):
            raise  # the integration itself is missing: a bug, not a missing extra
        hint = f"pip install 'tensorlake[{extra}]'" if extra else f"install {err.name}"
        raise ImportError(f"{module} needs {err.name}, which is not installed: {hint}.") from err
