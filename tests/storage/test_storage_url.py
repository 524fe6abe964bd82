"""from_url: every scheme maps to its provider; bad URLs and misplaced creds fail clearly.

Also ``register_scheme``/``schemes`` (the public registry) and the storage package's
structure: sorted, complete ``__all__`` everywhere, no upward imports, no calls to
another object's private methods.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import tensorlake.storage
from tensorlake.storage import (
    HTTPStorage,
    LocalStorage,
    LRUCache,
    MemoryStorage,
    S3Storage,
    Storage,
    StorageWrapper,
    from_url,
    register_scheme,
    schemes,
)
from tensorlake.storage import url as url_module

BUILT_IN = {
    "file": "tensorlake.storage.local:LocalStorage",
    "http": "tensorlake.storage.http:HTTPStorage",
    "https": "tensorlake.storage.http:HTTPStorage",
    "mem": "tensorlake.storage.memory:MemoryStorage",
    "s3": "tensorlake.storage.s3:S3Storage",
}
STORAGE_MODULES = sorted(Path(tensorlake.storage.__file__).parent.glob("*.py"))


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
        "StorageWrapper",
        "ObjectInfo",
        "MemoryStorage",
        "LocalStorage",
        "S3Storage",
        "HTTPStorage",
        "LRUCache",
        "from_url",
        "register_scheme",
        "schemes",
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


@pytest.mark.parametrize("path", STORAGE_MODULES, ids=lambda p: p.name)
def test_every_module_has_a_sorted_complete_all(path: Path) -> None:
    name = "tensorlake.storage" if path.stem == "__init__" else f"tensorlake.storage.{path.stem}"
    module = importlib.import_module(name)
    names = module.__dict__.get("__all__")
    assert names is not None, f"{path.name} has no __all__"
    assert list(names) == sorted(names), path.name
    for attr in names:
        assert hasattr(module, attr), f"{path.name}: __all__ names missing {attr!r}"


def test_no_call_to_another_objects_private_method() -> None:
    """``x._hook()`` only on ``self``, ``cls`` or ``super()``: classes talk through public
    methods (namedtuple's ``_replace`` is public API despite its name)."""
    public_underscored = {"_replace", "_asdict", "_make"}
    for path in STORAGE_MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            attr, owner = node.func.attr, node.func.value
            if not attr.startswith("_") or attr.startswith("__") or attr in public_underscored:
                continue
            own = (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) or (
                isinstance(owner, ast.Call)
                and isinstance(owner.func, ast.Name)
                and owner.func.id == "super"
            )
            assert own, f"{path.name}:{node.lineno} calls {ast.unparse(node.func)}()"


# --- register_scheme and schemes ---------------------------------------------------


@pytest.fixture
def registry() -> Iterator[None]:
    """Restore the scheme registry after a test that changes it."""
    providers, names = dict(url_module._providers), dict(url_module._names)
    yield
    url_module._providers.clear()
    url_module._providers.update(providers)
    url_module._names.clear()
    url_module._names.update(names)


class ScratchStorage(StorageWrapper):
    """``scratch://name``: memory storage under its own scheme, opened by the default
    ``Storage.open_url`` (its constructor takes the URL and ``read_only``)."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.name = url.split("://", 1)[1]
        super().__init__(MemoryStorage(self.name, read_only=read_only))

    @property
    def url(self) -> str:
        return f"scratch://{self.name}"


class CachedMemory(LRUCache):
    """``cached+mem://name``: a cache in front of memory storage, with its own parser."""

    @classmethod
    def open_url(cls, url: str, creds: dict | None = None, read_only: bool = False) -> CachedMemory:
        name = url.split("://", 1)[1]
        return cls(MemoryStorage(name, read_only=read_only), int((creds or {}).get("mb", 1)) << 20)


def test_schemes_lists_the_built_in_providers_as_a_copy() -> None:
    assert schemes() == BUILT_IN
    copy = schemes()
    copy["gs"] = "somewhere:Else"
    assert "gs" not in schemes()
    assert dict(url_module.SCHEMES) == BUILT_IN  # still readable, for compatibility
    with pytest.raises(TypeError):
        url_module.SCHEMES["gs"] = "somewhere:Else"  # type: ignore[index]


def test_a_registered_class_opens_through_from_url(registry: None) -> None:
    register_scheme("scratch", ScratchStorage)
    assert schemes()["scratch"] == f"{__name__}:ScratchStorage"
    assert url_module.SCHEMES["scratch"] == f"{__name__}:ScratchStorage"
    store = from_url("scratch://reg-test")
    try:
        assert type(store) is ScratchStorage
        store.put("k", b"v")
        again = from_url(store.url)
        assert again.get("k") == b"v"
        assert from_url("SCRATCH://reg-test").get("k") == b"v"  # schemes ignore case
        assert from_url("scratch://reg-test", read_only=True).read_only
        with pytest.raises(ValueError, match="creds are only used"):
            from_url("scratch://reg-test", creds={"token": "x"})
    finally:
        MemoryStorage.drop("reg-test")


def test_a_provider_may_parse_its_own_urls_and_take_creds(registry: None) -> None:
    register_scheme("Cached+Mem", CachedMemory)
    assert "cached+mem" in schemes()
    store = from_url("cached+mem://reg-cached", creds={"mb": 2})
    try:
        assert type(store) is CachedMemory
        assert store.max_bytes == 2 << 20
        store.put("k", b"v")
        assert store.unwrap().get("k") == b"v"
        assert store.url == "mem://reg-cached"
    finally:
        MemoryStorage.drop("reg-cached")


def test_a_string_provider_is_imported_on_first_open(registry: None) -> None:
    register_scheme("ram", "tensorlake.storage.memory:MemoryStorage")
    store = from_url("ram://reg-ram")
    try:
        assert type(store) is MemoryStorage
        assert store.name == "reg-ram"
    finally:
        MemoryStorage.drop("reg-ram")


def test_re_registering_a_scheme_replaces_it(registry: None) -> None:
    register_scheme("scratch", "tensorlake.storage.memory:MemoryStorage")
    register_scheme("scratch", ScratchStorage)
    store = from_url("scratch://reg-replace")
    assert type(store) is ScratchStorage
    register_scheme("mem", ScratchStorage)  # built-in schemes can be replaced too
    assert type(from_url("mem://reg-replace")) is ScratchStorage
    MemoryStorage.drop("reg-replace")


def test_a_missing_module_gives_the_install_hint(registry: None) -> None:
    register_scheme("nodep", "tensorlake_test_no_such_module.storage:Nothing")  # lazy: no error
    with pytest.raises(ImportError, match=r"pip install") as info:
        from_url("nodep://x")
    assert "nodep://" in str(info.value)
    assert "tensorlake_test_no_such_module" in str(info.value)
    register_scheme("noclass", "tensorlake.storage.memory:NoSuchStorage")
    with pytest.raises(ImportError, match="NoSuchStorage"):
        from_url("noclass://x")


@pytest.mark.parametrize("scheme", ["", "3d", "a b", "s3://", "gs:", "_x", "-x", "é"])
def test_bad_scheme_names_are_rejected(registry: None, scheme: str) -> None:
    with pytest.raises(ValueError, match="invalid URL scheme"):
        register_scheme(scheme, ScratchStorage)
    assert schemes() == BUILT_IN


@pytest.mark.parametrize("provider", ["MemoryStorage", "module:", ":Class", "a b:C", "m:C D"])
def test_bad_provider_strings_are_rejected(registry: None, provider: str) -> None:
    with pytest.raises(ValueError, match="module:Class"):
        register_scheme("custom", provider)
    assert schemes() == BUILT_IN


@pytest.mark.parametrize("provider", [42, None, dict, MemoryStorage()])
def test_providers_that_are_not_storage_classes_are_rejected(
    registry: None, provider: object
) -> None:
    with pytest.raises(TypeError, match="Storage subclass"):
        register_scheme("custom", provider)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheme must be a str"):
        register_scheme(b"custom", ScratchStorage)  # type: ignore[arg-type]
    assert schemes() == BUILT_IN


def test_open_url_is_public_on_every_provider(tmp_path: Path) -> None:
    memory = MemoryStorage.open_url("mem://open-url", read_only=True)
    assert (memory.name, memory.read_only) == ("open-url", True)
    MemoryStorage.drop("open-url")
    local = LocalStorage.open_url(f"file://{tmp_path}/a%20b")
    assert local.root == tmp_path / "a b"
    assert LocalStorage.open_url(str(tmp_path / "a%20b")).root == tmp_path / "a%20b"  # a path
    s3 = S3Storage.open_url("s3://bucket/pre/fix", {"aws_region": "us-east-1"})
    assert (s3.bucket, s3.prefix) == ("bucket", "pre/fix")
    http = HTTPStorage.open_url("https://example.com/x", read_only=False)
    assert http.read_only
    for cls, url in ((MemoryStorage, "mem://x"), (LocalStorage, str(tmp_path))):
        with pytest.raises(ValueError, match="only used for s3"):
            cls.open_url(url, {"aws_access_key_id": "x"})
