"""``register``: a directory in etcetera's layout becomes a local dataset, and
``dataset``: a local dataset by name (pulled when missing), seen by partition.

The layout::

    sample/
        data/               required, not empty, holding only folders: the partitions
            train/ ...      the files of one partition (any kind, any depth)
        meta.json           optional: a JSON object, the dataset's metadata
        README.md           optional, kept
        assets/ ...         optional, any other folders or files, kept

Every file of ``data/`` becomes a row (``ingest_files``: its ``path`` under ``data/``,
its exact bytes, decoded images when there are any) with its ``partition`` (a
class_label named after the partition folders). ``meta.json`` goes into
``ds.info["meta"]``; README.md and the other entries are kept as files beside the
dataset, pushed and pulled with it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tensorlake.api.dataset import Dataset
from tensorlake.api.factory import load
from tensorlake.api.names import read_record
from tensorlake.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    IngestError,
    VersionError,
    ViewNotFoundError,
)
from tensorlake.ingestion.classification import split_views
from tensorlake.ingestion.generic import PATH_TENSOR, ingest_files
from tensorlake.registry.home import dataset_root, datasets_dir
from tensorlake.registry.names import parse_name
from tensorlake.registry.pull import pull

__all__ = ["PARTITION_TENSOR", "RegisteredDataset", "check_layout", "dataset", "register"]

PARTITION_TENSOR = "partition"
DATA_DIR = "data"
META_FILE = "meta.json"


def check_layout(directory: str | os.PathLike[str]) -> list[str]:
    """The partitions of the directory, or an ``IngestError`` listing every way it breaks
    the layout."""
    top = Path(directory)
    if not top.is_dir():
        raise IngestError(f"{top} is not a directory.")
    problems = []
    data = top / DATA_DIR
    partitions: list[str] = []
    if not data.is_dir():
        problems.append(f"it has no {DATA_DIR}/ folder (the partitions go in {DATA_DIR}/<name>/)")
    else:
        entries = sorted(os.listdir(data))
        files = [e for e in entries if not (data / e).is_dir()]
        partitions = [e for e in entries if (data / e).is_dir()]
        if files:
            problems.append(
                f"{DATA_DIR}/ holds files ({', '.join(files[:3])}{' ...' if len(files) > 3 else ''}): "
                "it may hold only folders, the partitions; move them into one"
            )
        if not partitions:
            problems.append(f"{DATA_DIR}/ has no partition folder")
        empty = [p for p in partitions if not any(f for _, _, f in os.walk(data / p))]
        if empty:
            problems.append(f"partition(s) without files: {', '.join(empty)}")
    meta = top / META_FILE
    if meta.exists():
        try:
            if not isinstance(json.loads(meta.read_text()), dict):
                problems.append(f"{META_FILE} is not a JSON object")
        except (ValueError, UnicodeDecodeError) as err:
            problems.append(f"{META_FILE} is not valid JSON ({err})")
    if problems:
        raise IngestError(f"{top} is not a dataset directory: " + "; ".join(problems) + ".")
    return partitions


def register(
    directory: str | os.PathLike[str],
    name: str,
    force: bool = False,
    num_workers: int = 0,
    progressbar: bool = True,
) -> Dataset:
    """Validate ``directory`` (the layout above) and make it the local dataset ``name``
    (``force=True`` replaces one of that name). The directory itself is not changed.

    Example::

        ds = tl.registry.register("./sample", "supermnist")
        tl.registry.dataset("supermnist")["train"]      # the train partition's rows
    """
    name, version = parse_name(name)
    if version is not None:
        raise IngestError(f"Register under a name without a version: {name!r}.")
    partitions = check_layout(directory)
    top = Path(directory)
    root = dataset_root(name)
    if root.exists() and not force:
        raise DatasetExistsError(
            f"A local dataset {name!r} exists ({root}): `--force` replaces it."
        )
    work = datasets_dir() / f".register-{name}"
    shutil.rmtree(work, ignore_errors=True)
    ds = ingest_files(
        top / DATA_DIR,
        work,
        num_workers=num_workers,
        progressbar=progressbar,
        summary=False,
        overwrite=True,
        source_name=f"{top}/{DATA_DIR}",
    )
    paths = ds[PATH_TENSOR].numpy(aslist=True)
    ids = np.array([partitions.index(str(p).split("/", 1)[0]) for p in paths], np.uint32)
    with ds:
        ds.create_tensor(PARTITION_TENSOR, htype="class_label", class_names=partitions)
        ds[PARTITION_TENSOR].extend(ids.reshape(-1, 1))
        meta = top / META_FILE
        ds.info["meta"] = json.loads(meta.read_text()) if meta.exists() else {}
        ds.info["registered_from"] = str(top.resolve())
    ds.commit(f"register {top.name} as {name}")
    for entry in sorted(os.listdir(top)):
        if entry in (DATA_DIR, META_FILE):
            continue
        source = top / entry
        if source.is_dir():
            shutil.copytree(source, work / entry)
        else:
            shutil.copy2(source, work / entry)
    if root.exists():
        shutil.rmtree(root)
    os.replace(work, root)
    return load(root)


class RegisteredDataset:
    """A local dataset by name: ``keys()`` its partitions, ``ds["train"]`` one
    partition's rows (a view), ``meta`` its metadata, ``root`` its folder, ``dataset``
    the whole ``Dataset``."""

    def __init__(self, name: str, ds: Dataset) -> None:
        self.name = name
        self.dataset = ds
        self.root = Path(ds.path)

    def _partitions(self) -> dict[str, Dataset]:
        if PARTITION_TENSOR not in self.dataset.tensors:
            return {}
        return split_views(self.dataset, PARTITION_TENSOR)

    def keys(self) -> set[str]:
        """The partitions (empty for a dataset that was not registered from folders)."""
        if PARTITION_TENSOR not in self.dataset.tensors:
            return set()
        return set(self.dataset[PARTITION_TENSOR].info.class_names)

    def __getitem__(self, partition: str) -> Dataset:
        views = self._partitions()
        if partition not in views:
            raise ViewNotFoundError(
                f"{self.name!r} has no partition {partition!r}; it has {sorted(views)}."
            )
        return views[partition]

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.dataset.info.get("meta") or {})

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return f"RegisteredDataset({self.name!r}, partitions={sorted(self.keys())}, root={str(self.root)!r})"


def dataset(
    name: str,
    auto_install: bool = False,
    read_only: bool | None = None,
    progressbar: bool = True,
) -> RegisteredDataset:
    """The local dataset ``name`` (``"name@3"``: that published version, read-only),
    pulled from the remote first when it is missing and ``auto_install=True``
    (etcetera's call).

    Example::

        flower = tl.registry.dataset("flower", auto_install=True)
        flower.keys()          # {'test', 'train'}
        flower["train"].data[0].numpy()
    """
    base, version = parse_name(name)
    root = dataset_root(base)
    if not (root / "tensorlake.json").exists():
        if not auto_install:
            raise DatasetNotFoundError(
                f"No local dataset {base!r}: `tensorlake pull {base}` installs it, or pass "
                "auto_install=True."
            )
        pull(base, version, progressbar=progressbar)
    if version is None:
        return RegisteredDataset(base, load(root, read_only=read_only))
    commit = read_record(root).get("versions", {}).get(str(version))
    if commit is None and auto_install:
        pull(base, version, progressbar=progressbar)
        commit = read_record(root).get("versions", {}).get(str(version))
    if commit is None:
        raise VersionError(
            f"The local copy of {base!r} does not hold version {version}: "
            f"`tensorlake pull {base}@{version}` fetches it."
        )
    return RegisteredDataset(base, load(root, version=commit, read_only=True))
