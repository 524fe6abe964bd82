"""from_url: every scheme maps to its provider; bad URLs and misplaced creds fail clearly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tensorlake.storage
from tensorlake.storage import (
    HTTPStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    Storage,
    from_url,
)


def test_memory_urls_share_one_store_per_name() -> None:
    a = from_url("mem://url-test")
    b = from_url("mem://url-test")
    assert isinstance(a, MemoryStorage)
    assert a.url == "mem://url-test"
    a.put("k", b"v")
    assert b.get("k") == b"v"
    assert MemoryStorage("url-test").get("k") == b"v"
    MemoryStorage.drop("url-test")
    assert not from_url("mem://url-test").exists("k")
    MemoryStorage.drop("url-test")
    assert from_url("mem://nested/name").url == "mem://nested/name"
    MemoryStorage.drop("nested/name")


def test_unnamed_memory_storage_is_private() -> None:
    a, b = MemoryStorage(), MemoryStorage()
    a.put("k", b"v")
    assert not b.exists("k")
    assert from_url(a.url).get("k") == b"v"  # reachable by URL while it is alive


@pytest.mark.parametrize("form", ["plain", "path", "file", "file-localhost"])
def test_local_paths_and_file_urls(tmp_path: Path, form: str) -> None:
    url = {
        "plain": str(tmp_path / "ds"),
        "path": tmp_path / "ds",
        "file": f"file://{tmp_path}/ds",
        "file-localhost": f"file://localhost{tmp_path}/ds",
    }[form]
    store = from_url(url)
    assert isinstance(store, LocalStorage)
    assert store.root == tmp_path / "ds"
    assert from_url(store.url).root == store.root


def test_relative_paths_and_percent_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert from_url("rel/ds").root == tmp_path / "rel" / "ds"
    assert from_url("file://rel/ds").root == tmp_path / "rel" / "ds"
    assert from_url(f"file://{tmp_path}/a%20b").root == tmp_path / "a b"
    assert from_url("weird:name").root == tmp_path / "weird:name"  # no "://": a path


def test_s3_urls(s3_creds: dict) -> None:
    store = from_url("s3://bucket-name/some/prefix/", creds=s3_creds)
    assert isinstance(store, S3Storage)
    assert (store.bucket, store.prefix) == ("bucket-name", "some/prefix")
    assert store.url == "s3://bucket-name/some/prefix"
    bare = from_url("s3://bucket-name")
    assert (bare.bucket, bare.prefix, bare.url) == ("bucket-name", "", "s3://bucket-name")
    with pytest.raises(ValueError, match="no bucket"):
        from_url("s3:///prefix")


def test_http_urls_are_read_only() -> None:
    for url in ("http://example.com/data", "https://example.com/data/"):
        store = from_url(url)
        assert isinstance(store, HTTPStorage)
        assert store.read_only
        assert store.url == url


@pytest.mark.parametrize("url", ["mem://ro-test", "LOCAL"])
def test_read_only_flag(url: str, tmp_path: Path) -> None:
    url = str(tmp_path) if url == "LOCAL" else url
    assert from_url(url, read_only=True).read_only
    assert not from_url(url).read_only
    MemoryStorage.drop("ro-test")


def test_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="gs") as info:
        from_url("gs://bucket/x")
    for scheme in ("file://", "http://", "https://", "mem://", "s3://"):
        assert scheme in str(info.value)


@pytest.mark.parametrize("url", ["", "mem://"])
def test_empty_urls(url: str) -> None:
    with pytest.raises(ValueError):
        from_url(url)


def test_creds_only_for_s3(tmp_path: Path) -> None:
    creds = {"aws_access_key_id": "x"}
    for url in ("mem://creds-test", str(tmp_path), "https://example.com/x"):
        with pytest.raises(ValueError, match="only used for s3"):
            from_url(url, creds=creds)
        assert isinstance(from_url(url, creds={}), Storage)
        assert isinstance(from_url(url, creds=None), Storage)
    MemoryStorage.drop("creds-test")


def test_all_is_sorted_and_complete() -> None:
    names = tensorlake.storage.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(tensorlake.storage, name) is not None
    expected = {
        "Storage",
        "ObjectInfo",
        "MemoryStorage",
        "LocalStorage",
        "S3Storage",
        "HTTPStorage",
        "LRUCache",
        "from_url",
    }
    assert set(names) == expected


def test_storage_layer_imports_no_upper_layer() -> None:
    allowed = ("tensorlake.storage", "tensorlake.errors", "tensorlake.config")
    for path in Path(tensorlake.storage.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "tensorlake":
                modules = [f"tensorlake.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] == "tensorlake":
                    assert module.startswith(allowed), f"{path.name} imports {module}"
