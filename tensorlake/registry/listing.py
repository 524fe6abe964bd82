"""``ls``: the local datasets, or the remote's with their published versions."""

from __future__ import annotations

from typing import Any

from tensorlake.registry.home import local_datasets
from tensorlake.registry.push import open_remote
from tensorlake.registry.remote import version_key

__all__ = ["ls"]


def ls(remote: bool = False, url: str | None = None) -> list[dict[str, Any]]:
    """One entry per dataset. Local (the default): ``name, rows, tensors, bytes, head,
    uncommitted, version, pushed, path``. ``remote=True``: ``name`` and ``versions``
    (each ``version, commit, branch, time, author, rows, tensors, bytes``), from the
    remote in the settings or at ``url``.

    Example::

        [d["name"] for d in tl.registry.ls()]
        tl.registry.ls(remote=True)[0]["versions"][-1]["version"]   # the latest
    """
    if not remote:
        return list(local_datasets())
    source = open_remote(url)
    numbers = source.version_numbers()
    keys = [version_key(name, n) for name, ns in numbers.items() for n in ns]
    by_name: dict[str, list[dict[str, Any]]] = {name: [] for name in numbers}
    for version in source.read_versions(keys):
        by_name[version.name].append(version.describe())
    return [{"name": name, "versions": versions} for name, versions in by_name.items()]
