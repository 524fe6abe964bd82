"""Fuzzed datasets on local disk: one stored object damaged (a chunk, a table segment, a
commit, the staging state, a branch head, ``tensorlake.json``), then the dataset opened
with ``tl.load`` and every row of every tensor read, at the branch and at its commit.

What the user may get is the data itself (for a chunk, damage that changes nothing read;
for the objects without a checksum, a value that still decodes) or a ``FormatError``
naming the damaged object's key; never ``KeyError``, ``IndexError``, ``struct.error``,
a msgpack error, ``ValueError`` or ``MemoryError``. Two typed errors that do not name
the damaged key remain (see docs/reliability.md): a branch head or a commit's parent
damaged into another well-formed commit id gives ``VersionError`` naming the missing
commit, and a manifest's tensor meta damaged into other valid-looking values (an
unknown htype...) a typed error of the tensor it opens (``UnknownHtypeError`` ...).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlake as tl
from tensorlake.engine.format import keys
from tensorlake.errors import FormatError, TensorlakeError, VersionError
from tests.engine.format.fuzzing import STATS, corrupted, fuzz_settings, parse_checked


def _make(root: Path) -> tuple[Path, dict, str]:
    path = root / "source"
    ds = tl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("x", htype="generic", dtype="int64", max_chunk_size=64)
        ds.create_tensor("t", htype="text", max_chunk_size=64)
        ds.create_tensor("m", htype="binary_mask", sample_compression="lz4")
        ds.x.extend(np.arange(40))
        ds.t.extend([f"row {i} " * (i % 4) for i in range(40)])
        ds.m.extend([np.eye(5, dtype=bool)[..., None] & (i % 2 == 0) for i in range(40)])
    commit = ds.commit("first")
    with ds:
        ds.x.extend(np.arange(40, 50))
        ds.t.extend(["late"] * 10)
        ds.m.extend([np.zeros((5, 5, 1), bool)] * 10)
    ds.x[3] = -3
    ds.flush()
    expected = _read(path, None)
    ds.close() if hasattr(ds, "close") else None
    return path, expected, commit


def _read(path: Path, version: str | None) -> dict:
    ds = tl.load(path, read_only=True, version=version)
    out = {name: ds[name].numpy(aslist=True) for name in ds.tensors}
    out["_len"] = len(ds)
    out["_log"] = [c["commit"] if isinstance(c, dict) else str(c) for c in ds.commits]
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("fuzz-dataset"))


def _objects(path: Path) -> list[str]:
    found = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    return sorted(k for k in found if k != keys.LOCK_KEY and not k.startswith("."))


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            if len(x) != len(y) or not all(np.array_equal(p, q) for p, q in zip(x, y)):
                return False
        elif x != y:
            return False
    return True


CHECKSUMMED = ("tensors/",)


@fuzz_settings
@given(data=st.data())
def test_damaged_object_reads_as_data_or_format_error(source, data, tmp_path_factory):
    path, expected, commit = source
    keys_ = _objects(path)
    key = data.draw(st.sampled_from(keys_))
    copy = Path(tmp_path_factory.mktemp("damaged")) / "ds"
    shutil.copytree(path, copy)
    target = copy / key
    bad = data.draw(corrupted(target.read_bytes()))
    target.write_bytes(bad)
    STATS[f"dataset:{key.split('/')[0]}"] += 1
    for version in (None, commit):
        try:
            got = parse_checked(lambda _, v=version: _read(copy, v), bad, None, budget=64 << 20)
        except VersionError as err:
            # a head, or a commit's parent, damaged into another commit id: the commit it
            # names is missing (the error names that commit, not the damaged object)
            assert key.startswith((keys.REFS_PREFIX, keys.COMMITS_PREFIX)), f"{key}: {err!r}"
            continue
        except TensorlakeError as err:
            # a manifest's meta damaged into other valid-looking values (an unknown htype,
            # a shape that says "no rows yet"): refused by the tensor it opens (engine/core,
            # engine/htypes) with a typed error that does not name the manifest (a known gap)
            assert not isinstance(err, FormatError)
            assert key.startswith((keys.COMMITS_PREFIX, keys.STAGING_PREFIX)), f"{key}: {err!r}"
            continue
        if isinstance(got, FormatError) and got.key != key:
            # a manifest (no checksum) damaged into naming another segment or chunk: the
            # error names that missing object (a known gap: not the manifest's key)
            assert key.startswith((keys.COMMITS_PREFIX, keys.STAGING_PREFIX)), f"{key}: {got}"
            assert "missing" in str(got) and got.key is not None, f"{key}: {got}"
            continue
        if isinstance(got, FormatError):
            assert key in str(got), f"FormatError does not name {key!r}: {got}"
        elif key.startswith(CHECKSUMMED) and version is None:
            assert _same(got, expected), f"damage to {key} read as other data"
    shutil.rmtree(copy.parent, ignore_errors=True)
