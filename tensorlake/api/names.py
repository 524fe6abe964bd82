"""Registry names where a path is expected: ``tl.load("flower")``.

The rule: a string that is a valid dataset name (lower-case letters, digits, ``-``,
``_``), optionally followed by ``@VERSION``, names ``$TENSORLAKE_HOME/datasets/<name>``
when nothing of that name exists in the current directory and the home holds it.
``VERSION`` is a published version number the local copy knows (``flower@3``), or
anything ``tl.load`` takes after ``@`` (a branch, a commit id). Anything else is a path.

Each local copy keeps what the registry knows of it in one small JSON file,
``RECORD_NAME``, beside its objects (never pushed): the versions published from it or
pulled into it, and a cached summary for ``tensorlake ls``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tensorlake import config
from tensorlake.errors import VersionError

__all__ = ["DATASET_NAME", "MAX_NAME", "RECORD_NAME", "read_record", "resolve_name"]

RECORD_NAME = ".tensorlake-registry.json"
MAX_NAME = 64
DATASET_NAME = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_NAME - 1}}}$")
"""A dataset name: lower-case letters, digits, ``-`` and ``_``, starting with a letter or
digit (``tensorlake.ingestion.naming`` checks it with a message)."""


def read_record(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The registry record of the local copy at ``root`` (empty when it has none)."""
    try:
        with open(Path(root) / RECORD_NAME) as f:
            record = json.load(f)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def resolve_name(path: str) -> tuple[str, str | None] | None:
    """``(local path, version or None)`` when ``path`` is a registry name by the rule
    above, else None."""
    name, _, version = path.partition("@")
    if not DATASET_NAME.match(name) or os.path.lexists(path) or os.path.lexists(name):
        return None
    root = config.home() / "datasets" / name
    if not (root / "tensorlake.json").exists():
        return None
    if version:
        commit = read_record(root).get("versions", {}).get(version)
        if commit is None and version.isdigit():
            known = sorted(read_record(root).get("versions", {}), key=int)
            raise VersionError(
                f"The local copy of {name!r} knows no version {version} (it knows "
                f"{known or 'none'}): `tensorlake pull {name}@{version}` fetches it."
            )
        version = commit or version
    return str(root), version or None
